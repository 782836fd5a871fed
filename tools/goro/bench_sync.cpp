// bench_sync.cpp: the sync workloads of docs/benchmarks.md (mutex,
// rwmutex), written against goro's public API exactly as the Go reference
// program (mutexBench, rwmutexBench) writes them against Go's sync package.
#include <chrono>
#include <cstdint>
#include <vector>

#include "goro/goro.hpp"
#include "workloads.hpp"

namespace goro_cli {
namespace {

using Clock = std::chrono::steady_clock;

// mutex: 8 goroutines x n/8 of lock(); counter++; unlock().
Result mutex_bench() {
  constexpr std::int64_t g = 8, n = 10'000'000;
  goro::Mutex mu;
  goro::WaitGroup wg;
  std::int64_t counter = 0;  // guarded by mu
  const auto start = Clock::now();
  wg.add(g);
  for (std::int64_t i = 0; i < g; ++i) {
    goro::go([&] {
      for (std::int64_t j = 0; j < n / g; ++j) {
        mu.lock();
        ++counter;
        mu.unlock();
      }
      wg.done();
    });
  }
  wg.wait();
  const auto wall = Clock::now() - start;
  if (counter != n) return {0, {}, "", mismatch("counter", counter, n)};
  return {n, wall, "", ""};
}

// rwmutex: 8 goroutines x n/8 ops on a RWMutex; every 10th op writes under
// lock(), the rest read under lock_shared().
Result rwmutex_bench() {
  constexpr std::int64_t g = 8, n = 10'000'000;
  goro::RWMutex mu;
  goro::WaitGroup wg;
  std::int64_t shared = 0;                                      // guarded by mu
  std::vector<std::int64_t> seen(static_cast<std::size_t>(g));  // keeps the reads observable
  const auto start = Clock::now();
  wg.add(g);
  for (std::int64_t i = 0; i < g; ++i) {
    goro::go([&, i] {
      std::int64_t s = 0;
      for (std::int64_t j = 0; j < n / g; ++j) {
        if (j % 10 == 0) {
          mu.lock();
          ++shared;
          mu.unlock();
        } else {
          mu.lock_shared();
          s += shared;
          mu.unlock_shared();
        }
      }
      seen[static_cast<std::size_t>(i)] = s;
      wg.done();
    });
  }
  wg.wait();
  const auto wall = Clock::now() - start;
  if (const std::int64_t want = g * ((n / g + 9) / 10); shared != want) {
    return {0, {}, "", mismatch("writes", shared, want)};
  }
  return {n, wall, "", ""};
}

}  // namespace

// SPEC.md's order: mutex and rwmutex are the 8th and 9th workloads.
GORO_BENCH_WORKLOAD("mutex", 8, mutex_bench);
GORO_BENCH_WORKLOAD("rwmutex", 9, rwmutex_bench);

}  // namespace goro_cli
