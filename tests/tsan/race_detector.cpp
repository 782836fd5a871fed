// race_detector.cpp: a deliberate data race between two goroutines. Built
// only in ThreadSanitizer builds; the test passes when TSan reports the
// race (the "race detector works" check Go programmers expect from -race).
//
// The goroutines first meet through two atomic flags, spinning without
// yielding, so they necessarily run on two different threads at once; then
// both increment a plain int. (Races between goroutines that happen to share
// one thread are ordered by the scheduler's switches and not reported: see
// docs/design.md, "Sanitizers".)
#include <atomic>
#include <cstdio>

#include "goro/goro.hpp"

int main() {
  int shared = 0;  // the race
  std::atomic<bool> a_started{false}, b_started{false};
  goro::run(
      [&] {
        goro::WaitGroup wg;
        wg.add(2);
        goro::go([&] {
          a_started = true;
          while (!b_started.load()) {
          }
          for (int i = 0; i < 100000; ++i) ++shared;
          wg.done();
        });
        goro::go([&] {
          b_started = true;
          while (!a_started.load()) {
          }
          for (int i = 0; i < 100000; ++i) ++shared;
          wg.done();
        });
        wg.wait();
      },
      goro::Options{.procs = 2});
  std::printf("shared = %d\n", shared);
  return 0;
}
