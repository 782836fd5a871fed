// Micro-benchmarks of the pool module, each beside a plain-thread baseline:
// a textbook thread pool (std::thread workers, one std::mutex +
// std::condition_variable queue of std::function, std::promise/std::future
// results).
//   *SubmitGet:  one job's round trip: submit, the worker runs it, get().
//   *Batch:      throughput: submit 1,000 trivial jobs, then get them all.
// Refuses to build optimised-out or sanitized (see below).
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "goro/goro.hpp"

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#error "benchmarks must be built optimised and without sanitizers"
#endif

constexpr int kBatch = 1000;

// ThreadPool is the baseline: what a C++ programmer writes without goro.
class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      closed_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  template <class F>
  std::future<int> submit(F f) {
    auto task = std::make_shared<std::packaged_task<int()>>(std::move(f));
    std::future<int> result = task->get_future();
    {
      std::lock_guard<std::mutex> l(mu_);
      queue_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_one();
    return result;
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [this] { return closed_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool closed_ = false;                      // guarded by mu_
  std::vector<std::thread> threads_;
};

// range(0): Ps; the pool has 2 workers.
void BM_WorkerPoolSubmitGet(benchmark::State& state) {
  goro::run(
      [&] {
        goro::WorkerPool pool(2, 64);
        int i = 0;
        for (auto _ : state) {
          benchmark::DoNotOptimize(pool.submit([i] { return i + 1; }).get());
          ++i;
        }
      },
      goro::Options{.procs = static_cast<int>(state.range(0))});
}
BENCHMARK(BM_WorkerPoolSubmitGet)->Arg(1)->Arg(2)->UseRealTime();

void BM_ThreadPoolSubmitGet(benchmark::State& state) {
  ThreadPool pool(2);
  int i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(pool.submit([i] { return i + 1; }).get());
    ++i;
  }
}
BENCHMARK(BM_ThreadPoolSubmitGet)->UseRealTime();

void BM_WorkerPoolBatch(benchmark::State& state) {
  goro::run(
      [&] {
        goro::WorkerPool pool(2, 256);
        std::vector<goro::Future<int>> futures;
        futures.reserve(kBatch);
        for (auto _ : state) {
          for (int i = 0; i < kBatch; ++i) futures.push_back(pool.submit([i] { return i; }));
          for (auto& f : futures) benchmark::DoNotOptimize(f.get());
          futures.clear();
        }
      },
      goro::Options{.procs = static_cast<int>(state.range(0))});
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_WorkerPoolBatch)->Arg(1)->Arg(2)->UseRealTime();

void BM_ThreadPoolBatch(benchmark::State& state) {
  ThreadPool pool(2);
  std::vector<std::future<int>> futures;
  futures.reserve(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) futures.push_back(pool.submit([i] { return i; }));
    for (auto& f : futures) benchmark::DoNotOptimize(f.get());
    futures.clear();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_ThreadPoolBatch)->UseRealTime();

// ErrGroup: spawn 100 goroutines and wait (the fork-join cost per task).
void BM_ErrGroupGoWait(benchmark::State& state) {
  goro::run(
      [&] {
        std::atomic<int> sink{0};
        for (auto _ : state) {
          goro::ErrGroup g;
          for (int i = 0; i < 100; ++i) g.go([&sink] { sink.fetch_add(1, std::memory_order_relaxed); });
          benchmark::DoNotOptimize(g.wait());
        }
      },
      goro::Options{.procs = static_cast<int>(state.range(0))});
  state.SetItemsProcessed(state.iterations() * 100);
}
BENCHMARK(BM_ErrGroupGoWait)->Arg(1)->Arg(2)->UseRealTime();

}  // namespace
