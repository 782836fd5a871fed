// Randomized stress for the pool module (label: stress; scale with
// GORO_STRESS_SCALE). Each test prints its seed; a failure names it.
//   - shutdown storms: submitters on goroutines AND plain threads, graceful
//     and immediate shutdowns racing each other from goroutines and threads;
//     every job accounted for exactly once.
//   - pool churn: many short-lived pools created, fed and torn down at once.
//   - errgroup storms: random limits and failures; the limit is never
//     exceeded and wait() reports one of the exceptions actually thrown.
#include <atomic>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "pool_test_util.hpp"

namespace {

using goro::Cancelled;
using goro::Chan;
using goro::ErrGroup;
using goro::Future;
using goro::PoolClosed;
using goro::Unit;
using goro::WorkerPool;
using goro_test::RuntimeTest;
using goro_test::scaled;
using pool_test::HighWater;

class PoolStressTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(PoolStressTest);

// Outcome of one job, written once by whoever learned it.
enum Outcome : int { kUnknown = 0, kValue, kCancelled, kClosedAtSubmit };

struct Ledger {
  explicit Ledger(int n) : runs(static_cast<std::size_t>(n)), outcome(static_cast<std::size_t>(n)) {}
  std::vector<std::atomic<int>> runs;
  std::vector<std::atomic<int>> outcome;
};

// submit_and_resolve submits job `id` and then learns its outcome (from a
// goroutine or a plain thread: Future::get works from both).
void submit_and_resolve(WorkerPool& pool, Ledger& ledger, int id, bool try_first) {
  std::optional<Future<int>> f;
  try {
    if (try_first) f = pool.try_submit([&ledger, id] { return ledger.runs[id].fetch_add(1), id; });
    if (!f) f = pool.submit([&ledger, id] { return ledger.runs[id].fetch_add(1), id; });
  } catch (const PoolClosed&) {
    ledger.outcome[id] = kClosedAtSubmit;
    return;
  }
  try {
    ledger.outcome[id] = f->get() == id ? kValue : kUnknown;
  } catch (const Cancelled&) {
    ledger.outcome[id] = kCancelled;
  }
}

TEST_P(PoolStressTest, ShutdownStormsLoseNoJobAndRunNoneTwice) {
  const std::uint64_t seed = std::random_device{}();
  std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(seed));
  run([&] {
    std::mt19937_64 rng(seed);
    const int rounds = static_cast<int>(scaled(40));
    for (int round = 0; round < rounds; ++round) {
      const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round);
      const auto workers = 1 + rng() % 6;
      const auto capacity = rng() % 17;
      constexpr int kGoroutines = 6, kThreads = 2;
      const int per = static_cast<int>(scaled(60));
      const int jobs = (kGoroutines + kThreads) * per;
      const int trigger_after = static_cast<int>(rng() % static_cast<std::uint64_t>(per * 2));
      WorkerPool pool(workers, capacity);
      Ledger ledger(jobs);
      std::atomic<int> submitted_so_far{0};
      // Fires once, after the trigger_after-th submission (always reached:
      // trigger_after < 2 * per <= jobs), releasing both closers.
      Chan<Unit> trigger(2);
      auto submitter = [&](int s, bool try_first) {
        for (int i = 0; i < per; ++i) {
          submit_and_resolve(pool, ledger, s * per + i, try_first && i % 2 == 0);
          if (submitted_so_far.fetch_add(1) == trigger_after) {
            trigger.send(Unit{});
            trigger.send(Unit{});
          }
        }
      };
      goro::WaitGroup wg;
      wg.add(kGoroutines + 1);
      for (int s = 0; s < kGoroutines; ++s) {
        goro::go([&, s] {
          submitter(s, s % 2 == 0);
          wg.done();
        });
      }
      std::vector<std::thread> threads;
      for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { submitter(kGoroutines + t, t == 0); });
      // Two shutdowns race: one from a goroutine, one from a plain thread,
      // each graceful or immediate at random.
      const bool goroutine_now = rng() % 2 == 0, thread_now = rng() % 3 == 0;
      goro::go([&] {
        trigger.recv();
        goroutine_now ? pool.shutdown_now() : pool.shutdown();
        wg.done();
      });
      std::thread closer([&] {
        trigger.recv();
        thread_now ? pool.shutdown_now() : pool.shutdown();
      });
      wg.wait();
      goro::blocking([&] {
        for (auto& t : threads) t.join();
      });
      goro::blocking([&] { closer.join(); });

      std::uint64_t values = 0, cancelled = 0;
      for (int id = 0; id < jobs; ++id) {
        const int r = ledger.runs[id].load(), o = ledger.outcome[id].load();
        ASSERT_NE(o, kUnknown) << where << ": job " << id << " has no outcome";
        ASSERT_EQ(r, o == kValue ? 1 : 0)
            << where << ": job " << id << " ran " << r << " times, outcome " << o;
        values += o == kValue;
        cancelled += o == kCancelled;
      }
      if (!goroutine_now && !thread_now) {
        EXPECT_EQ(cancelled, 0u) << where;
      }
      const goro::PoolStats s = pool.stats();
      EXPECT_EQ(s.submitted, values + cancelled) << where;
      EXPECT_EQ(s.completed, values) << where;
      EXPECT_EQ(s.cancelled, cancelled) << where;
      EXPECT_EQ(s.queued + s.active + s.failed, 0u) << where;
      if (::testing::Test::HasFailure()) return;
    }
  });
}

TEST_P(PoolStressTest, PoolChurn) {
  const std::uint64_t seed = std::random_device{}();
  std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(seed));
  run([&] {
    const int owners = 8;
    const int pools_each = static_cast<int>(scaled(30));
    std::atomic<std::int64_t> ran{0}, expected{0};
    goro::WaitGroup wg;
    wg.add(owners);
    for (int o = 0; o < owners; ++o) {
      goro::go([&, o] {
        std::mt19937_64 rng(seed + static_cast<std::uint64_t>(o));
        for (int p = 0; p < pools_each; ++p) {
          WorkerPool pool(1 + rng() % 3, rng() % 4);
          const int n = static_cast<int>(rng() % 20);
          std::vector<Future<void>> futures;
          for (int i = 0; i < n; ++i) futures.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
          switch (rng() % 3) {
            case 0:
              break;  // the destructor shuts down
            case 1:
              pool.shutdown();
              break;
            default:
              pool.shutdown_now();
              break;
          }
          for (auto& f : futures) {
            try {
              f.get();
              expected.fetch_add(1);
            } catch (const Cancelled&) {
            }
          }
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ran.load(), expected.load()) << "seed " << seed;
  });
}

TEST_P(PoolStressTest, ErrGroupStormsRespectLimitsAndReportAThrownError) {
  const std::uint64_t seed = std::random_device{}();
  std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(seed));
  run([&] {
    std::mt19937_64 rng(seed);
    const int rounds = static_cast<int>(scaled(60));
    for (int round = 0; round < rounds; ++round) {
      const std::string where = "seed " + std::to_string(seed) + " round " + std::to_string(round);
      const int limit = static_cast<int>(rng() % 5);  // 0: no limit
      const int tasks = 1 + static_cast<int>(rng() % 40);
      const int fail_every = 1 + static_cast<int>(rng() % 8);
      ErrGroup g;
      if (limit > 0) g.set_limit(limit);
      HighWater running;
      std::atomic<int> thrown{0};
      const goro::Context ctx = g.context();
      for (int i = 0; i < tasks; ++i) {
        auto body = [&, i, ctx] {
          running.enter();
          goro::yield();
          const bool cancelled = ctx.err() != goro::ContextError::none;
          running.leave();
          if (!cancelled && i % fail_every == fail_every - 1) {
            thrown.fetch_add(1);
            throw std::runtime_error("task " + std::to_string(i));
          }
        };
        if (i % 3 == 0 && g.try_go(body)) continue;
        g.go(body);
      }
      const std::exception_ptr err = g.wait();
      EXPECT_EQ(err != nullptr, thrown.load() > 0) << where;
      if (err != nullptr) {
        try {
          std::rethrow_exception(err);
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()).rfind("task ", 0), 0u) << where;
        }
      }
      if (limit > 0) {
        EXPECT_LE(running.max(), limit) << where;
      }
      if (::testing::Test::HasFailure()) return;
    }
  });
}

}  // namespace
