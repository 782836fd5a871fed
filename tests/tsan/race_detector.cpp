// race_detector.cpp: a deliberate data race between two goroutines. Built
// only in ThreadSanitizer builds; the test passes when TSan reports the
// race (the "race detector works" check Go programmers expect from -race).
//
// The two goroutines take turns incrementing a plain int, passing the turn
// through a relaxed atomic. Relaxed operations create no happens-before
// edge, so every increment races with the other goroutine's previous one,
// and both goroutines are alive and spinning when it happens: TSan finds the
// earlier access in its shadow memory and can still restore its stack.
// (An earlier version let each goroutine run its whole loop after a
// handshake; when one thread finished before the other began, the first
// goroutine had exited by the time the second touched the int, TSan could
// not restore the dead fiber's stack and dropped the report, about one run
// in ten.) Spinning without yielding also forces the two goroutines onto two
// threads at once: races between goroutines sharing one thread are ordered
// by the scheduler's switches and not reported (docs/design.md,
// "Sanitizers").
#include <atomic>
#include <cstdio>

#include "goro/goro.hpp"

int main() {
  int shared = 0;  // the race
  std::atomic<int> turn{0};
  constexpr int kRounds = 1000;
  auto player = [&](int me, goro::WaitGroup& wg) {
    for (int i = 0; i < kRounds; ++i) {
      while (turn.load(std::memory_order_relaxed) != me) {
      }
      ++shared;
      turn.store(1 - me, std::memory_order_relaxed);
    }
    wg.done();
  };
  goro::run(
      [&] {
        goro::WaitGroup wg;
        wg.add(2);
        goro::go([&] { player(0, wg); });
        goro::go([&] { player(1, wg); });
        wg.wait();
      },
      goro::Options{.procs = 2});
  std::printf("shared = %d\n", shared);
  return 0;
}
