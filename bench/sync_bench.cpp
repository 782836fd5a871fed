// Micro-benchmarks of the sync primitives, each beside its plain-thread
// baseline (std::mutex, std::shared_mutex on OS threads).
// Refuses to report from sanitizer or unoptimised builds.
#include <benchmark/benchmark.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "goro/goro.hpp"

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#error "benchmarks must be built optimised and without sanitizers"
#endif

// Uncontended: one goroutine (or, for the std baselines, the benchmark
// thread) takes and releases a lock nobody else wants, exclusive or
// shared. goro::Mutex: one CAS in, one out; RWMutex's write lock: the same
// (Go's design makes four atomic RMWs); its read lock: one atomic add in,
// one out.
template <class L, bool kShared>
void lock_unlock_loop(benchmark::State& state) {
  L mu;
  std::int64_t counter = 0;  // guarded by mu
  for (auto _ : state) {
    if constexpr (kShared) {
      mu.lock_shared();
      benchmark::DoNotOptimize(counter);
      mu.unlock_shared();
    } else {
      mu.lock();
      benchmark::DoNotOptimize(++counter);
      mu.unlock();
    }
  }
}

template <class L, bool kShared>
void BM_GoroUncontended(benchmark::State& state) {
  goro::run([&] { lock_unlock_loop<L, kShared>(state); }, goro::Options{.procs = 1});
}

template <class L, bool kShared>
void BM_StdUncontended(benchmark::State& state) {
  lock_unlock_loop<L, kShared>(state);
}

BENCHMARK_TEMPLATE(BM_GoroUncontended, goro::Mutex, false)->Name("BM_MutexUncontended");
BENCHMARK_TEMPLATE(BM_StdUncontended, std::mutex, false)->Name("BM_StdMutexUncontended");
BENCHMARK_TEMPLATE(BM_GoroUncontended, goro::RWMutex, false)->Name("BM_RWMutexUncontendedWrite");
BENCHMARK_TEMPLATE(BM_GoroUncontended, goro::RWMutex, true)->Name("BM_RWMutexUncontendedRead");
BENCHMARK_TEMPLATE(BM_StdUncontended, std::shared_mutex, false)->Name("BM_StdSharedMutexUncontendedWrite");
BENCHMARK_TEMPLATE(BM_StdUncontended, std::shared_mutex, true)->Name("BM_StdSharedMutexUncontendedRead");

// kContenders goroutines (on state.range(0) Ps) each lock, increment and
// unlock a shared counter kBatch times; one iteration is one such round,
// and items/s counts the lock-unlock pairs. (Rounds end with every
// goroutine done, so the benchmark never waits on preemption to switch.)
constexpr int kContenders = 4;
constexpr int kBatch = 1000;

void BM_MutexContended(benchmark::State& state) {
  goro::run(
      [&] {
        goro::Mutex mu;
        std::int64_t counter = 0;  // guarded by mu
        for (auto _ : state) {
          goro::WaitGroup wg;
          wg.add(kContenders);
          for (int c = 0; c < kContenders; ++c) {
            goro::go([&] {
              for (int i = 0; i < kBatch; ++i) {
                mu.lock();
                ++counter;
                mu.unlock();
              }
              wg.done();
            });
          }
          wg.wait();
        }
        benchmark::DoNotOptimize(counter);
      },
      goro::Options{.procs = static_cast<int>(state.range(0))});
  state.SetItemsProcessed(state.iterations() * kContenders * kBatch);
}
BENCHMARK(BM_MutexContended)->Arg(1)->Arg(2)->Arg(4)->UseRealTime();

// Baseline: kContenders OS threads (the benchmark thread among them) on one
// std::mutex, in the same rounds, separated by a barrier.
void BM_StdMutexContended(benchmark::State& state) {
  std::mutex mu;
  std::int64_t counter = 0;  // guarded by mu
  std::atomic<bool> stop{false};
  std::barrier round(kContenders);
  auto batch = [&] {
    for (int i = 0; i < kBatch; ++i) {
      mu.lock();
      ++counter;
      mu.unlock();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < kContenders; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        round.arrive_and_wait();  // start of a round (or of the end)
        if (stop.load()) return;
        batch();
        round.arrive_and_wait();  // end of the round
      }
    });
  }
  for (auto _ : state) {
    round.arrive_and_wait();
    batch();
    round.arrive_and_wait();
  }
  stop = true;
  round.arrive_and_wait();
  for (auto& t : threads) t.join();
  benchmark::DoNotOptimize(counter);
  state.SetItemsProcessed(state.iterations() * kContenders * kBatch);
}
BENCHMARK(BM_StdMutexContended)->UseRealTime();

}  // namespace
