// Micro-benchmarks of the sync primitives, each beside its plain-thread
// baseline (std::mutex on OS threads).
// Refuses to report from sanitizer or unoptimised builds.
#include <benchmark/benchmark.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "goro/goro.hpp"

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#error "benchmarks must be built optimised and without sanitizers"
#endif

// One goroutine locks and unlocks a Mutex nobody else wants: the one-CAS
// fast paths of lock() and unlock().
void BM_MutexUncontended(benchmark::State& state) {
  goro::run(
      [&] {
        goro::Mutex mu;
        std::int64_t counter = 0;
        for (auto _ : state) {
          mu.lock();
          benchmark::DoNotOptimize(++counter);
          mu.unlock();
        }
      },
      goro::Options{.procs = 1});
}
BENCHMARK(BM_MutexUncontended);

// Baseline: std::mutex on the benchmark thread.
void BM_StdMutexUncontended(benchmark::State& state) {
  std::mutex mu;
  std::int64_t counter = 0;
  for (auto _ : state) {
    mu.lock();
    benchmark::DoNotOptimize(++counter);
    mu.unlock();
  }
}
BENCHMARK(BM_StdMutexUncontended);

// kContenders goroutines (on state.range(0) Ps) hammer one Mutex; the
// benchmark measures one lock-increment-unlock of the main goroutine among
// them (items/s counts everyone's).
constexpr int kContenders = 4;

void BM_MutexContended(benchmark::State& state) {
  std::atomic<std::int64_t> others{0};
  goro::run(
      [&] {
        goro::Mutex mu;
        std::int64_t counter = 0;  // guarded by mu
        std::atomic<bool> stop{false};
        goro::WaitGroup wg;
        wg.add(kContenders - 1);
        for (int i = 1; i < kContenders; ++i) {
          goro::go([&] {
            std::int64_t mine = 0;
            while (!stop.load(std::memory_order_relaxed)) {
              mu.lock();
              ++counter;
              mu.unlock();
              ++mine;
            }
            others.fetch_add(mine);
            wg.done();
          });
        }
        for (auto _ : state) {
          mu.lock();
          benchmark::DoNotOptimize(++counter);
          mu.unlock();
        }
        stop = true;
        wg.wait();
      },
      goro::Options{.procs = static_cast<int>(state.range(0))});
  state.SetItemsProcessed(state.iterations() + others.load());
}
BENCHMARK(BM_MutexContended)->Arg(1)->Arg(2)->UseRealTime();

// Baseline: kContenders OS threads (the benchmark thread among them) on one
// std::mutex.
void BM_StdMutexContended(benchmark::State& state) {
  std::mutex mu;
  std::int64_t counter = 0;  // guarded by mu
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> others{0};
  std::vector<std::thread> threads;
  for (int i = 1; i < kContenders; ++i) {
    threads.emplace_back([&] {
      std::int64_t mine = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        mu.lock();
        ++counter;
        mu.unlock();
        ++mine;
      }
      others.fetch_add(mine);
    });
  }
  for (auto _ : state) {
    mu.lock();
    benchmark::DoNotOptimize(++counter);
    mu.unlock();
  }
  stop = true;
  for (auto& t : threads) t.join();
  state.SetItemsProcessed(state.iterations() + others.load());
}
BENCHMARK(BM_StdMutexContended)->UseRealTime();

}  // namespace
