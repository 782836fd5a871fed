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

// One goroutine takes and releases a RWMutex's write lock, nobody else
// wants it: one CAS in, one CAS out (Go's design makes four atomic RMWs).
void BM_RWMutexUncontendedWrite(benchmark::State& state) {
  goro::run(
      [&] {
        goro::RWMutex mu;
        std::int64_t counter = 0;
        for (auto _ : state) {
          mu.lock();
          benchmark::DoNotOptimize(++counter);
          mu.unlock();
        }
      },
      goro::Options{.procs = 1});
}
BENCHMARK(BM_RWMutexUncontendedWrite);

// The same with the read lock: one atomic add in, one out.
void BM_RWMutexUncontendedRead(benchmark::State& state) {
  goro::run(
      [&] {
        goro::RWMutex mu;
        std::int64_t counter = 0;
        for (auto _ : state) {
          mu.lock_shared();
          benchmark::DoNotOptimize(counter);
          mu.unlock_shared();
        }
      },
      goro::Options{.procs = 1});
}
BENCHMARK(BM_RWMutexUncontendedRead);

// Baselines: std::shared_mutex (pthread_rwlock) on the benchmark thread.
void BM_StdSharedMutexUncontendedWrite(benchmark::State& state) {
  std::shared_mutex mu;
  std::int64_t counter = 0;
  for (auto _ : state) {
    mu.lock();
    benchmark::DoNotOptimize(++counter);
    mu.unlock();
  }
}
BENCHMARK(BM_StdSharedMutexUncontendedWrite);

void BM_StdSharedMutexUncontendedRead(benchmark::State& state) {
  std::shared_mutex mu;
  std::int64_t counter = 0;
  for (auto _ : state) {
    mu.lock_shared();
    benchmark::DoNotOptimize(counter);
    mu.unlock_shared();
  }
}
BENCHMARK(BM_StdSharedMutexUncontendedRead);

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
