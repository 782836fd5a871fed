// Micro-benchmarks of the runtime: spawn, switch, park/ready.
// Refuses to report from sanitizer or unoptimised builds.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "goro/goro.hpp"

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#error "benchmarks must be built optimised and without sanitizers"
#endif

void BM_SpawnJoin(benchmark::State& state) {
  goro::run([&] {
    for (auto _ : state) {
      goro::WaitGroup wg;
      wg.add(1);
      goro::go([&] { wg.done(); });
      wg.wait();
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_SpawnJoin);

void BM_SpawnJoinBatch1000(benchmark::State& state) {
  goro::run([&] {
    for (auto _ : state) {
      goro::WaitGroup wg;
      wg.add(1000);
      for (int i = 0; i < 1000; ++i) goro::go([&] { wg.done(); });
      wg.wait();
    }
  });
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_SpawnJoinBatch1000);

// Baseline: an OS thread per task.
void BM_ThreadSpawnJoin(benchmark::State& state) {
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
  }
}
BENCHMARK(BM_ThreadSpawnJoin);

void BM_Yield(benchmark::State& state) {
  goro::run([&] {
    std::atomic<bool> stop{false};
    goro::WaitGroup other;
    other.add(1);
    goro::go([&] {
      while (!stop.load(std::memory_order_relaxed)) goro::yield();
      other.done();
    });
    for (auto _ : state) goro::yield();
    stop = true;
    other.wait();
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_Yield);

// Baseline: OS threads handing a token back and forth with a condition variable.
void BM_ThreadPingPongCondvar(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;
  bool stop = false;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      cv.wait(l, [&] { return turn == 1 || stop; });
      if (stop) return;
      turn = 0;
      cv.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock<std::mutex> l(mu);
    turn = 1;
    cv.notify_one();
    cv.wait(l, [&] { return turn == 0; });
  }
  {
    std::lock_guard<std::mutex> l(mu);
    stop = true;
  }
  cv.notify_one();
  t.join();
}
BENCHMARK(BM_ThreadPingPongCondvar);

void BM_SleepZeroTimer(benchmark::State& state) {
  goro::run([&] {
    for (auto _ : state) goro::sleep_for(std::chrono::nanoseconds(1));
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_SleepZeroTimer);

}  // namespace
