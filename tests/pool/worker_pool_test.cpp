// Tests of WorkerPool: distribution, back-pressure, exceptions, try_submit,
// graceful and immediate shutdown (from goroutines, plain threads and the
// pool's own jobs), counters, and run()'s teardown.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "goro_test.hpp"
#include "pool_test_util.hpp"

namespace {

using goro::Cancelled;
using goro::Chan;
using goro::Future;
using goro::PoolClosed;
using goro::Unit;
using goro::WorkerPool;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using pool_test::HighWater;

class WorkerPoolTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(WorkerPoolTest);

// The result type is deduced from the job; void is allowed.
static_assert(std::is_same_v<decltype(std::declval<WorkerPool&>().submit([] { return 1; })), Future<int>>);
static_assert(std::is_same_v<decltype(std::declval<WorkerPool&>().submit([] {})), Future<void>>);
static_assert(std::is_same_v<decltype(std::declval<WorkerPool&>().try_submit([] { return 1.5; })),
                             std::optional<Future<double>>>);

int worker_goroutines() {
  int n = 0;
  for (const auto& g : goro::goroutines()) n += g.name == "goro.WorkerPool worker" ? 1 : 0;
  return n;
}

TEST_P(WorkerPoolTest, EveryWorkerTakesJobs) {
  run([] {
    constexpr int kWorkers = 4;
    WorkerPool pool(kWorkers);
    EXPECT_EQ(pool.workers(), static_cast<std::size_t>(kWorkers));
    EXPECT_TRUE(wait_until([] { return worker_goroutines() == kWorkers; }));
    // Each job waits until kWorkers jobs run at once: only possible if every
    // worker has taken one.
    std::atomic<int> running{0};
    std::vector<Future<std::uint64_t>> futures;
    for (int i = 0; i < kWorkers; ++i) {
      futures.push_back(pool.submit([&] {
        running.fetch_add(1);
        const bool all = wait_until([&] { return running.load() == kWorkers; });
        return all ? goro::goroutine_id() : std::uint64_t{0};
      }));
    }
    std::set<std::uint64_t> ids;
    for (auto& f : futures) ids.insert(f.get());
    EXPECT_EQ(ids.count(0), 0u) << "the jobs never all ran at once";
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(kWorkers));
  });
}

TEST_P(WorkerPoolTest, ExceptionsReachTheirFuturesAndTheWorkerSurvives) {
  run([] {
    WorkerPool pool(1);
    constexpr int kJobs = 100;
    std::vector<Future<std::uint64_t>> futures;
    for (int i = 0; i < kJobs; ++i) {
      futures.push_back(pool.submit([i]() -> std::uint64_t {
        if (i % 2 == 1) throw std::runtime_error("job " + std::to_string(i));
        return goro::goroutine_id();
      }));
    }
    std::set<std::uint64_t> workers;
    for (int i = 0; i < kJobs; ++i) {
      if (i % 2 == 0) {
        workers.insert(futures[i].get());
      } else {
        try {
          futures[i].get();
          ADD_FAILURE() << "job " << i << " did not throw";
        } catch (const std::runtime_error& e) {
          EXPECT_EQ(std::string(e.what()), "job " + std::to_string(i));
        }
      }
    }
    EXPECT_EQ(workers.size(), 1u) << "a throwing job replaced the worker";
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.submitted, 100u);
    EXPECT_EQ(s.completed, 50u);
    EXPECT_EQ(s.failed, 50u);
    EXPECT_EQ(s.cancelled, 0u);
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.active, 0u);
  });
}

TEST_P(WorkerPoolTest, BackPressureParksSubmittersAtTheBound) {
  run([] {
    constexpr int kWorkers = 2, kCapacity = 4, kSubmitters = 3;
    // Enough jobs to fill the pool at any GORO_STRESS_SCALE.
    const int per_submitter = static_cast<int>(std::max<std::int64_t>(scaled(40), 10));
    WorkerPool pool(kWorkers, kCapacity);
    Chan<Unit> gate(0);
    HighWater in_flight;  // created by a submitter and not yet finished
    std::vector<std::uint64_t> submitter_ids(kSubmitters);
    goro::WaitGroup wg;
    wg.add(kSubmitters);
    for (int s = 0; s < kSubmitters; ++s) {
      goro::go([&, s] {
        submitter_ids[s] = goro::goroutine_id();
        for (int i = 0; i < per_submitter; ++i) {
          in_flight.enter();
          pool.submit([&in_flight, gate] {
            gate.recv();
            in_flight.leave();
          });
        }
        wg.done();
      });
    }
    // With the workers held at the gate, the pool fills: 2 running, 4
    // queued, and each submitter parked in send holding one more.
    constexpr int kBound = kWorkers + kCapacity + kSubmitters;
    EXPECT_TRUE(wait_until([&] {
      if (in_flight.current() < kBound) return false;
      for (std::uint64_t id : submitter_ids) {
        if (id == 0 || !pool_test::parked(id, "chan send")) return false;
      }
      return true;
    })) << "submitters did not all park; in flight: "
        << in_flight.current();
    EXPECT_EQ(in_flight.current(), kBound);
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.active, static_cast<std::uint64_t>(kWorkers));
    EXPECT_EQ(s.queued, static_cast<std::uint64_t>(kCapacity));
    EXPECT_EQ(s.submitted, static_cast<std::uint64_t>(kBound))
        << "a parked submitter's job counts as submitted";
    gate.close();
    wg.wait();
    pool.shutdown();
    EXPECT_EQ(in_flight.current(), 0);
    EXPECT_LE(in_flight.max(), kBound) << "submit() did not park on a full queue";
    EXPECT_EQ(pool.stats().completed, static_cast<std::uint64_t>(kSubmitters * per_submitter));
  });
}

TEST_P(WorkerPoolTest, UnbufferedPoolHandsEachJobToAFreeWorker) {
  run([] {
    WorkerPool pool(1, 0);
    Chan<Unit> gate(0);
    Future<int> first = pool.submit([gate] {
      gate.recv();
      return 1;
    });
    // The only worker is busy: the next submit parks until it is free.
    std::atomic<std::uint64_t> submitter{0};
    std::atomic<bool> submitted{false};
    goro::WaitGroup wg;
    wg.add(1);
    Future<int> second;
    goro::go([&] {
      submitter = goro::goroutine_id();
      second = pool.submit([] { return 2; });
      submitted = true;
      wg.done();
    });
    EXPECT_TRUE(wait_until([&] { return submitter != 0 && pool_test::parked(submitter, "chan send"); }));
    EXPECT_FALSE(submitted.load());
    EXPECT_FALSE(pool.try_submit([] { return 3; }).has_value()) << "no worker is free";
    gate.close();
    wg.wait();
    EXPECT_EQ(first.get(), 1);
    EXPECT_EQ(second.get(), 2);
  });
}

TEST_P(WorkerPoolTest, TrySubmitReturnsNulloptWhenTheQueueIsFull) {
  run([] {
    WorkerPool pool(1, 2);
    Chan<Unit> gate(0);
    Chan<Unit> started(1);
    Future<int> running = pool.submit([gate, started] {
      started.send(Unit{});
      gate.recv();
      return 0;
    });
    started.recv();
    std::optional<Future<int>> a = pool.try_submit([] { return 1; });
    std::optional<Future<int>> b = pool.try_submit([] { return 2; });
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(b.has_value());
    std::atomic<bool> ran{false};
    EXPECT_FALSE(pool.try_submit([&ran] {
      ran = true;
      return 3;
    }));
    EXPECT_EQ(pool.stats().queued, 2u);
    gate.close();
    EXPECT_EQ(running.get(), 0);
    EXPECT_EQ(a->get(), 1);
    EXPECT_EQ(b->get(), 2);
    pool.shutdown();
    EXPECT_FALSE(ran.load()) << "a job that try_submit refused ran anyway";
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.submitted, 3u);
    EXPECT_EQ(s.completed, 3u);
  });
}

TEST_P(WorkerPoolTest, ShutdownRunsEveryQueuedJobAndRejectsNewOnes) {
  run([] {
    constexpr int kJobs = 100;
    WorkerPool pool(2, kJobs);
    Chan<Unit> gate(0);
    std::atomic<int> ran{0};
    std::vector<Future<int>> futures;
    for (int i = 0; i < kJobs; ++i) {
      futures.push_back(pool.submit([&ran, gate, i] {
        gate.recv();
        ran.fetch_add(1);
        return i;
      }));
    }
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      pool.shutdown();
      EXPECT_EQ(ran.load(), kJobs) << "shutdown() returned before the queue was drained";
      wg.done();
    });
    EXPECT_TRUE(wait_until([&] { return pool.closed(); }));
    EXPECT_THROW(pool.submit([] { return -1; }), PoolClosed);
    EXPECT_THROW((void)pool.try_submit([] { return -1; }), PoolClosed);
    gate.close();
    wg.wait();
    for (int i = 0; i < kJobs; ++i) EXPECT_EQ(futures[i].get(), i);
    // A worker's done() is its last act; its goroutine ends right after.
    EXPECT_TRUE(wait_until([] { return worker_goroutines() == 0; }));
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.submitted, static_cast<std::uint64_t>(kJobs));
    EXPECT_EQ(s.completed, static_cast<std::uint64_t>(kJobs));
    EXPECT_EQ(s.cancelled, 0u);
  });
}

TEST_P(WorkerPoolTest, ShutdownNowCancelsQueuedJobsAndLetsRunningOnesFinish) {
  run([] {
    constexpr int kQueued = 10;
    WorkerPool pool(1, kQueued);
    Chan<Unit> gate(0);
    Chan<Unit> started(1);
    Future<int> running = pool.submit([gate, started] {
      started.send(Unit{});
      gate.recv();
      return 7;
    });
    started.recv();
    std::atomic<int> ran{0};
    std::vector<Future<void>> queued;
    for (int i = 0; i < kQueued; ++i) queued.push_back(pool.submit([&ran] { ran.fetch_add(1); }));
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      pool.shutdown_now();
      wg.done();
    });
    // The queued jobs are cancelled while the running one still runs.
    for (auto& f : queued) {
      EXPECT_THROW(f.get(), Cancelled);
    }
    EXPECT_FALSE(running.ready());
    EXPECT_THROW(pool.submit([] {}), PoolClosed);
    gate.close();
    wg.wait();
    EXPECT_EQ(running.get(), 7);
    EXPECT_EQ(ran.load(), 0);
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.submitted, static_cast<std::uint64_t>(kQueued + 1));
    EXPECT_EQ(s.completed, 1u);
    EXPECT_EQ(s.cancelled, static_cast<std::uint64_t>(kQueued));
    EXPECT_EQ(s.queued, 0u);
    EXPECT_EQ(s.active, 0u);
  });
}

TEST_P(WorkerPoolTest, ShutdownNowDuringAGracefulShutdownCancelsTheRest) {
  run([] {
    constexpr int kQueued = 20;
    WorkerPool pool(1, kQueued);
    Chan<Unit> gate(0);
    Chan<Unit> started(1);
    Future<void> running = pool.submit([gate, started] {
      started.send(Unit{});
      gate.recv();
    });
    started.recv();
    std::vector<Future<void>> queued;
    for (int i = 0; i < kQueued; ++i) queued.push_back(pool.submit([] {}));
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      pool.shutdown();
      wg.done();
    });
    EXPECT_TRUE(wait_until([&] { return pool.closed(); }));
    wg.add(1);
    goro::go([&] {
      pool.shutdown_now();
      wg.done();
    });
    // shutdown_now cancels what the graceful shutdown had not started,
    // while the running job still runs.
    for (auto& f : queued) EXPECT_THROW(f.get(), Cancelled);
    EXPECT_FALSE(running.ready());
    gate.close();
    wg.wait();
    EXPECT_TRUE(running.ready());
    EXPECT_NO_THROW(running.get());
    EXPECT_EQ(pool.stats().cancelled, static_cast<std::uint64_t>(kQueued));
  });
}

TEST_P(WorkerPoolTest, ASubmitterParkedAtShutdownStillGetsItsJobRun) {
  run([] {
    WorkerPool pool(1, 1);
    Chan<Unit> gate(0);
    Chan<Unit> started(1);
    pool.submit([gate, started] {
      started.send(Unit{});
      gate.recv();
    });
    started.recv();
    pool.submit([] {});  // fills the queue
    std::atomic<std::uint64_t> submitter{0};
    Future<int> parked_job;
    goro::WaitGroup submitted;
    submitted.add(1);
    goro::go([&] {
      submitter = goro::goroutine_id();
      parked_job = pool.submit([] { return 5; });
      submitted.done();
    });
    EXPECT_TRUE(wait_until([&] { return submitter != 0 && pool_test::parked(submitter, "chan send"); }));
    goro::WaitGroup shut;
    shut.add(1);
    goro::go([&] {
      pool.shutdown();
      shut.done();
    });
    EXPECT_TRUE(wait_until([&] { return pool.closed(); }));
    EXPECT_THROW(pool.submit([] { return 0; }), PoolClosed);
    gate.close();
    submitted.wait();
    shut.wait();
    EXPECT_EQ(parked_job.get(), 5) << "the parked submitter passed the door before shutdown";
  });
}

TEST_P(WorkerPoolTest, DestructorShutsDownGracefully) {
  run([] {
    std::atomic<int> ran{0};
    constexpr int kJobs = 64;
    {
      WorkerPool pool(3, kJobs);
      for (int i = 0; i < kJobs; ++i) {
        pool.submit([&ran] {
          goro::yield();
          ran.fetch_add(1);
        });
      }
    }
    EXPECT_EQ(ran.load(), kJobs);
    EXPECT_TRUE(wait_until([] { return worker_goroutines() == 0; }));
  });
}

TEST_P(WorkerPoolTest, ConcurrentShutdownsFromGoroutinesAndThreadsAllReturnAfterTheWorkers) {
  run([] {
    WorkerPool pool(3, 16);
    std::atomic<int> ran{0};
    for (int i = 0; i < 16; ++i) pool.submit([&ran] { ran.fetch_add(1); });
    constexpr int kCallers = 6;
    std::atomic<int> returned{0};
    goro::WaitGroup wg;
    wg.add(kCallers);
    for (int i = 0; i < kCallers; ++i) {
      goro::go([&, i] {
        if (i % 2 == 0) {
          pool.shutdown();
        } else {
          pool.shutdown_now();
        }
        returned.fetch_add(1);
        wg.done();
      });
    }
    std::thread t([&] {
      pool.shutdown();
      returned.fetch_add(1);
    });
    wg.wait();
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(returned.load(), kCallers + 1);
    EXPECT_TRUE(wait_until([] { return worker_goroutines() == 0; }));
    const goro::PoolStats s = pool.stats();
    EXPECT_EQ(s.completed + s.cancelled, 16u);
    EXPECT_EQ(static_cast<std::uint64_t>(ran.load()), s.completed);
  });
}

TEST_P(WorkerPoolTest, ShutdownFromAPlainThread) {
  run([] {
    WorkerPool pool(2, 8);
    std::atomic<int> ran{0};
    for (int i = 0; i < 8; ++i) pool.submit([&ran] { ran.fetch_add(1); });
    std::thread t([&] { pool.shutdown(); });
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(ran.load(), 8);
    EXPECT_THROW(pool.submit([] {}), PoolClosed);
  });
}

TEST_P(WorkerPoolTest, ShutdownFromInsideAJobDoesNotWaitForItself) {
  run([] {
    WorkerPool pool(2, 4);
    Future<bool> f = pool.submit([&pool] {
      pool.shutdown();  // would deadlock if it joined its own worker
      return pool.closed();
    });
    EXPECT_TRUE(f.get());
    EXPECT_THROW(pool.submit([] {}), PoolClosed);
    pool.shutdown();  // joins for real
    EXPECT_TRUE(wait_until([] { return worker_goroutines() == 0; }));
  });
}

TEST_P(WorkerPoolTest, PlainThreadsSubmitAndGet) {
  run([] {
    WorkerPool pool(2, 4);
    constexpr int kThreads = 3;
    const int per_thread = static_cast<int>(scaled(200));
    std::atomic<std::int64_t> sum{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::vector<Future<int>> futures;
        for (int i = 0; i < per_thread; ++i) futures.push_back(pool.submit([i, t] { return i + t; }));
        for (auto& f : futures) sum.fetch_add(f.get());
      });
    }
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    std::int64_t want = 0;
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < per_thread; ++i) want += i + t;
    }
    EXPECT_EQ(sum.load(), want);
  });
}

TEST_P(WorkerPoolTest, ZeroWorkersIsRejected) {
  run([] { EXPECT_THROW(WorkerPool(0), std::invalid_argument); });
}

// The shutdown race: many submitters, one shutdown (graceful or not) from a
// goroutine or a plain thread at a random moment. Every job must end up in
// exactly one of: value (ran once), Cancelled (never ran), PoolClosed at
// submit (no Future, never ran).
void shutdown_race_round(std::mt19937_64& rng, std::uint64_t seed, int round) {
  const int workers = 1 + static_cast<int>(rng() % 4);
  const int capacity = static_cast<int>(rng() % 9);
  const bool now = rng() % 2 == 0;
  const bool from_thread = rng() % 2 == 0;
  constexpr int kSubmitters = 4;
  const int per = static_cast<int>(scaled(100));
  const int jobs = kSubmitters * per;
  const int trigger_after = static_cast<int>(rng() % static_cast<std::uint64_t>(per));
  // Not SCOPED_TRACE: GoogleTest keeps its trace stack per thread, and a
  // goroutine may resume on another thread than the one that pushed it.
  const std::string where =
      ("seed " + std::to_string(seed) + ", round " + std::to_string(round) + ": workers " +
       std::to_string(workers) + ", capacity " + std::to_string(capacity) +
       (now ? ", shutdown_now" : ", shutdown") + (from_thread ? " from a thread" : " from a goroutine"));

  WorkerPool pool(static_cast<std::size_t>(workers), static_cast<std::size_t>(capacity));
  std::vector<std::atomic<int>> runs(static_cast<std::size_t>(jobs));
  std::vector<Future<int>> futures(static_cast<std::size_t>(jobs));
  std::vector<char> closed_at_submit(static_cast<std::size_t>(jobs), 0);
  Chan<Unit> trigger(1);
  goro::WaitGroup wg;
  wg.add(kSubmitters);
  for (int s = 0; s < kSubmitters; ++s) {
    goro::go([&, s] {
      for (int i = 0; i < per; ++i) {
        const int id = s * per + i;
        try {
          futures[id] = pool.submit([&runs, id] {
            runs[id].fetch_add(1);
            if (id % 3 == 0) goro::yield();
            return id;
          });
        } catch (const PoolClosed&) {
          closed_at_submit[id] = 1;
        }
        if (i == trigger_after) trigger.try_send(Unit{});
      }
      wg.done();
    });
  }
  auto do_shutdown = [&] {
    trigger.recv();
    if (now) {
      pool.shutdown_now();
    } else {
      pool.shutdown();
    }
  };
  if (from_thread) {
    std::thread t(do_shutdown);
    wg.wait();
    goro::blocking([&] { t.join(); });
  } else {
    goro::WaitGroup shut;
    shut.add(1);
    goro::go([&] {
      do_shutdown();
      shut.done();
    });
    wg.wait();
    shut.wait();
  }
  std::uint64_t values = 0, cancelled = 0, closed = 0;
  for (int id = 0; id < jobs; ++id) {
    const int r = runs[id].load();
    ASSERT_LE(r, 1) << where << ": job " << id << " ran " << r << " times";
    if (closed_at_submit[id]) {
      ++closed;
      EXPECT_EQ(r, 0) << where << ": job " << id << " was refused but ran";
      EXPECT_FALSE(futures[id].valid());
      continue;
    }
    ASSERT_TRUE(futures[id].valid()) << where << ": job " << id;
    ASSERT_TRUE(futures[id].ready()) << where << ": job " << id << " unresolved after shutdown returned";
    try {
      EXPECT_EQ(futures[id].get(), id);
      EXPECT_EQ(r, 1) << where << ": job " << id << " has a value but did not run";
      ++values;
    } catch (const Cancelled&) {
      EXPECT_EQ(r, 0) << where << ": job " << id << " was cancelled but ran";
      ++cancelled;
    }
  }
  EXPECT_EQ(values + cancelled + closed, static_cast<std::uint64_t>(jobs)) << where;
  if (!now) {
    EXPECT_EQ(cancelled, 0u) << where << ": a graceful shutdown cancelled jobs";
  }
  const goro::PoolStats st = pool.stats();
  EXPECT_EQ(st.submitted, values + cancelled) << where;
  EXPECT_EQ(st.completed, values) << where;
  EXPECT_EQ(st.cancelled, cancelled) << where;
  EXPECT_EQ(st.failed, 0u) << where;
  EXPECT_EQ(st.queued, 0u) << where;
  EXPECT_EQ(st.active, 0u) << where;
}

TEST_P(WorkerPoolTest, ShutdownRacesLoseNoJobAndRunNoneTwice) {
  const std::uint64_t seed = std::random_device{}();
  run([&] {
    std::mt19937_64 rng(seed);
    const int rounds = static_cast<int>(scaled(12));
    for (int round = 0; round < rounds && !::testing::Test::HasFatalFailure(); ++round) {
      shutdown_race_round(rng, seed, round);
    }
  });
}

// run() ending with a job parked inside the pool: teardown unwinds the job
// (its Future says Cancelled, its destructors run) and the worker, and
// nothing is left blocked. The pool itself outlives run() here and is
// destroyed afterwards, when its workers are already gone.
TEST_P(WorkerPoolTest, TeardownUnwindsAParkedJobAndCancelsItsFuture) {
  std::optional<WorkerPool> pool;
  Future<void> job;
  std::atomic<bool> job_unwound{false};
  ::testing::internal::CaptureStderr();
  goro::run(
      [&] {
        pool.emplace(1);
        Chan<Unit> started(1);
        job = pool->submit([&job_unwound, started] {
          struct Flag {
            std::atomic<bool>& f;
            ~Flag() { f = true; }
          } flag{job_unwound};
          started.send(Unit{});
          Chan<int>().recv();  // a nil channel: parks forever
        });
        started.recv();
      },
      goro::Options{.procs = procs()});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(goro::last_run_unwound(), 1);
  EXPECT_EQ(err.find("blocked again"), std::string::npos) << err;
  EXPECT_TRUE(job_unwound.load());
  ASSERT_TRUE(job.ready());
  EXPECT_THROW(job.get(), Cancelled);
  EXPECT_EQ(pool->stats().active, 1u) << "the unwound job never finished, so it stays counted as running";
  pool.reset();  // the workers are gone: shutdown() returns at once
}

// The pool's owner is parked too, so teardown unwinds it: ~WorkerPool parks
// in shutdown() while its goroutine is unwinding, and every goroutine unwound
// after that must still see its own exception state, not the owner's
// (exception state is per goroutine, not per thread).
TEST_P(WorkerPoolTest, TeardownUnwindsAPoolWhoseOwnerIsParked) {
  Future<void> job;
  std::atomic<bool> job_unwound{false};
  ::testing::internal::CaptureStderr();
  goro::run(
      [&] {
        Chan<Unit> started(1);
        goro::go([&, started] {
          WorkerPool pool(1);
          Chan<Unit> job_running(1);
          job = pool.submit([&job_unwound, job_running] {
            struct Flag {
              std::atomic<bool>& f;
              ~Flag() { f = true; }
            } flag{job_unwound};
            job_running.send(Unit{});
            Chan<int>().recv();
          });
          // Only now is `job` assigned: main may end the run from here on.
          job_running.recv();
          started.send(Unit{});
          Chan<int>().recv();  // the owner parks forever too
        });
        started.recv();
      },
      goro::Options{.procs = procs()});
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(goro::last_run_unwound(), 2);
  EXPECT_EQ(err.find("blocked again"), std::string::npos) << err;
  EXPECT_TRUE(job_unwound.load());
  ASSERT_TRUE(job.ready());
  EXPECT_THROW(job.get(), Cancelled);
}

}  // namespace
