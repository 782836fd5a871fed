// Tests of the scheduler: run(), go(), ids, counts, park/ready, yield,
// plain threads, teardown.
#include <algorithm>
#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/park.hpp"  // park/ready: goro's internal seam
#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class SchedulerTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(SchedulerTest);

TEST_P(SchedulerTest, RunReturnsMainsValue) {
  EXPECT_EQ(run([] { return 7; }), 7);
  EXPECT_EQ(run([] {}), 0);
}

TEST_P(SchedulerTest, MainIsGoroutineOneAndIdsAreNeverReused) {
  run([] {
    EXPECT_EQ(goro::goroutine_id(), 1u);
    const int n = 1000;
    std::vector<std::uint64_t> ids(n);
    goro::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, i] {
        ids[static_cast<std::size_t>(i)] = goro::goroutine_id();
        wg.done();
      });
    }
    wg.wait();
    std::set<std::uint64_t> unique(ids.begin(), ids.end());
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(unique.count(1), 0u);
    EXPECT_EQ(unique.count(0), 0u);
  });
  // And again in a fresh run: main is 1 again.
  run([] { EXPECT_EQ(goro::goroutine_id(), 1u); });
}

TEST_P(SchedulerTest, GoroutineIdIsZeroOutsideGoroutines) {
  EXPECT_EQ(goro::goroutine_id(), 0u);
  run([] {
    std::uint64_t from_thread = 99;
    std::thread t([&] { from_thread = goro::goroutine_id(); });
    t.join();
    EXPECT_EQ(from_thread, 0u);
  });
}

TEST_P(SchedulerTest, GomaxprocsIsTheConfiguredNumberOfPs) {
  run([&] { EXPECT_EQ(goro::gomaxprocs(), procs()); });
  EXPECT_EQ(goro::gomaxprocs(), 0);
}

TEST_P(SchedulerTest, NumGoroutineCountsEveryLiveGoroutineExactly) {
  run([] {
    EXPECT_EQ(goro::num_goroutine(), 1);
    const int n = 500;
    goro::Chan<goro::Unit> gate(0);
    goro::WaitGroup started, exited;
    started.add(n);
    exited.add(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, gate]() mutable {
        started.done();
        gate.recv();
        exited.done();
      });
    }
    started.wait();
    EXPECT_EQ(goro::num_goroutine(), n + 1);
    gate.close();
    exited.wait();
    EXPECT_TRUE(wait_until([] { return goro::num_goroutine() == 1; }));
  });
}

TEST_P(SchedulerTest, GoOutsideRunThrows) {
  try {
    goro::go([] {});
    FAIL() << "go() outside run() did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("outside goro::run()"), std::string::npos) << e.what();
  }
}

TEST_P(SchedulerTest, RunInsideAGoroutineThrows) {
  run([] { EXPECT_THROW(goro::run([] {}), std::logic_error); });
}

TEST_P(SchedulerTest, ASecondConcurrentRunThrows) {
  run([] {
    bool threw = false;
    std::thread t([&] {
      try {
        goro::run([] {});
      } catch (const std::logic_error&) {
        threw = true;
      }
    });
    t.join();
    EXPECT_TRUE(threw);
  });
}

TEST_P(SchedulerTest, InvalidOptionsAreRejectedWithAClearError) {
  EXPECT_THROW(goro::run([] {}, goro::Options{.procs = -1}), std::invalid_argument);
  EXPECT_THROW(goro::run([] {}, goro::Options{.procs = 5000}), std::invalid_argument);
  EXPECT_THROW(goro::run([] {}, goro::Options{.procs = 1, .stack_size = std::size_t{1} << 40}),
               std::invalid_argument);
  // And the runtime is still usable afterwards.
  EXPECT_EQ(run([] { return 3; }), 3);
}

TEST_P(SchedulerTest, SpawnAndJoinManyGoroutines) {
  const std::int64_t n = scaled(100'000);
  run([n] {
    std::atomic<std::int64_t> sum{0};
    goro::WaitGroup wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&, i] {
        sum.fetch_add(i, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  });
}

TEST_P(SchedulerTest, GoroutinesSpawnGoroutinesRecursively) {
  // A binary tree of depth 14: 32767 goroutines, each joining its children.
  struct Tree {
    static std::int64_t grow(int depth) {
      if (depth == 0) return 1;
      std::int64_t left = 0;
      goro::WaitGroup wg;
      wg.add(1);
      goro::go([&] {
        left = grow(depth - 1);
        wg.done();
      });
      const std::int64_t right = grow(depth - 1);
      wg.wait();
      return 1 + left + right;
    }
  };
  run([] { EXPECT_EQ(Tree::grow(14), (1 << 15) - 1); });
}

TEST_P(SchedulerTest, PlainThreadsSpawnGoroutines) {
  const int threads = 4;
  const std::int64_t per = scaled(10'000);
  run([&] {
    std::atomic<std::int64_t> ran{0};
    goro::WaitGroup wg;
    wg.add(threads * per);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&] {
        for (std::int64_t i = 0; i < per; ++i) {
          goro::go([&] {
            ran.fetch_add(1, std::memory_order_relaxed);
            wg.done();
          });
        }
      });
    }
    wg.wait();  // parks goroutine 1 while the threads spawn
    for (auto& t : ts) t.join();
    EXPECT_EQ(ran.load(), threads * per);
  });
}

TEST_P(SchedulerTest, YieldLetsOtherGoroutinesRun) {
  run([] {
    std::atomic<bool> other_ran{false};
    goro::go([&] { other_ran = true; });
    // Even on one P, yielding must eventually run the other goroutine.
    for (int i = 0; i < 100000 && !other_ran; ++i) goro::yield();
    EXPECT_TRUE(other_ran);
  });
}

TEST_P(SchedulerTest, YieldAlternatesBetweenGoroutinesOnOneP) {
  if (procs() != 1) GTEST_SKIP() << "ordering is only defined on one P";
  run([] {
    std::vector<int> trace;
    goro::WaitGroup wg;
    wg.add(2);
    for (int id = 0; id < 2; ++id) {
      goro::go([&, id] {
        for (int i = 0; i < 3; ++i) {
          trace.push_back(id);
          goro::yield();
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(trace, (std::vector<int>{1, 0, 1, 0, 1, 0}));
  });
}

// park/ready through the seam: a goroutine parks with its record in a
// shared slot; another party readies it. The unlock function runs after the
// switch, so the readier may run immediately without losing the wake-up.
struct Slot {
  goro::detail::Lock lock;
  goro::Goroutine* waiter = nullptr;
  bool signalled = false;
};

void wait_on(Slot& s) {
  s.lock.lock();
  if (s.signalled) {
    s.lock.unlock();
    return;
  }
  s.waiter = goro::self();
  goro::park_releasing(s.lock, goro::WaitReason::semacquire);
}

void signal(Slot& s) {
  s.lock.lock();
  s.signalled = true;
  goro::Goroutine* g = std::exchange(s.waiter, nullptr);
  s.lock.unlock();
  if (g != nullptr) goro::ready(g);
}

TEST_P(SchedulerTest, ParkAndReadyNeverLoseAWakeUp) {
  const std::int64_t n = scaled(20'000);
  run([n] {
    std::vector<Slot> slots(static_cast<std::size_t>(n));
    goro::WaitGroup wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&, i] {
        wait_on(slots[static_cast<std::size_t>(i)]);
        wg.done();
      });
      // The readier races with the parker.
      goro::go([&, i] { signal(slots[static_cast<std::size_t>(i)]); });
    }
    wg.wait();
  });
}

TEST_P(SchedulerTest, PlainThreadsReadyGoroutinesAndGoroutinesReadyThreads) {
  const std::int64_t n = scaled(2'000);
  run([n] {
    for (std::int64_t i = 0; i < n; ++i) {
      Slot to_thread, to_goroutine;
      std::thread t([&] {
        wait_on(to_thread);  // a plain thread parks through the same seam
        signal(to_goroutine);
      });
      signal(to_thread);
      wait_on(to_goroutine);
      t.join();
    }
  });
}

TEST_P(SchedulerTest, ParkCancelledByTheUnlockFunctionResumesAtOnce) {
  run([] {
    int calls = 0;
    goro::park([](goro::Goroutine*, void* c) {
      ++*static_cast<int*>(c);
      return false;  // cancel
    }, &calls, goro::WaitReason::semacquire);
    EXPECT_EQ(calls, 1);
  });
}

TEST_P(SchedulerTest, GoroutinesStillAliveAtExitAreUnwound) {
  struct Flag {
    std::atomic<int>* count;
    ~Flag() { count->fetch_add(1); }
  };
  std::atomic<int> destroyed{0};
  const int n = 50;
  goro::run(
      [&] {
        goro::Chan<int> never(0);
        goro::WaitGroup started;
        started.add(n);
        for (int i = 0; i < n; ++i) {
          goro::go([&, never]() mutable {
            Flag f{&destroyed};
            started.done();
            never.recv();  // blocks forever
          });
        }
        started.wait();
        // Some that never even started:
        for (int i = 0; i < 10; ++i) goro::go([&, f = std::make_shared<Flag>(Flag{&destroyed})] {});
      },
      goro::Options{.procs = procs()});
  // The 10 trivial goroutines may or may not have run before main returned.
  EXPECT_GE(goro::last_run_unwound(), n);
  EXPECT_LE(goro::last_run_unwound(), n + 10);
  EXPECT_EQ(destroyed.load(), n + 10 + 10) << "every destructor ran (the shared_ptr temporaries count too)";
}

TEST_P(SchedulerTest, RunCanBeRepeatedManyTimes) {
  for (int i = 0; i < 100; ++i) {
    const int rc = run([i] {
      goro::WaitGroup wg;
      wg.add(10);
      for (int k = 0; k < 10; ++k) goro::go([&] { wg.done(); });
      wg.wait();
      return i;
    });
    ASSERT_EQ(rc, i);
  }
}

// run() returning while an M is still being started: a plain thread's go()
// calls wake idle Ps (new Ms) just as main returns. An M that stopped
// before run() told every M to exit, but was not yet listed, slept forever
// (run() hung, about one run in 200 under TSan).
TEST_P(SchedulerTest, RunReturnsWhileNewThreadsAreStillStarting) {
  for (int i = 0; i < scaled(200); ++i) {
    run([] {
      // Owned by the goroutines too: some run after main has returned.
      auto ran = std::make_shared<std::atomic<int>>(0);
      std::thread t([ran] {
        for (int k = 0; k < 16; ++k) goro::go([ran] { ran->fetch_add(1); });
      });
      goro::blocking([&] { t.join(); });
    });
  }
}

// A goroutine that spawns in a loop yields once its P's queue has
// overflowed into a long global queue: the goroutines it queued run before
// it adds more. (Without that, on one P nothing else would run until the
// 10 ms time slice ran out.)
TEST_P(SchedulerTest, ASpawningLoopYieldsOnceTheQueueIsFlooded) {
  if (procs() != 1) GTEST_SKIP() << "on more Ps the other Ps run the children anyway";
  run([] {
    constexpr int n = 20000;
    std::atomic<int> ran{0};
    goro::WaitGroup wg;
    wg.add(n);
    int backlog = 0;  // the most goroutines spawned and not yet run
    for (int i = 0; i < n; ++i) {
      goro::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
      backlog = std::max(backlog, i + 1 - ran.load(std::memory_order_relaxed));
    }
    // The global queue's 1024, the local queue's 256 and runnext, and the
    // batch moved at the overflow that crossed the line.
    EXPECT_LE(backlog, 1024 + 256 + 1 + 129) << "the loop did not yield when the queue was flooded";
    wg.wait();
  });
}

TEST_P(SchedulerTest, SchedStatsDescribeTheRuntime) {
  run([&] {
    const goro::SchedStats s = goro::sched_stats();
    EXPECT_EQ(s.gomaxprocs, procs());
    EXPECT_EQ(static_cast<int>(s.local_runq.size()), procs());
    EXPECT_GE(s.threads, 1);
    EXPECT_EQ(s.goroutines, 1);
    EXPECT_GE(s.created, 1u);
  });
  EXPECT_EQ(goro::sched_stats().gomaxprocs, 0);
}

TEST_P(SchedulerTest, GomaxprocsEnvironmentVariableIsHonoured) {
  ::setenv("GOMAXPROCS", "3", 1);
  goro::run([] { EXPECT_EQ(goro::gomaxprocs(), 3); });
  ::setenv("GOMAXPROCS", "bogus", 1);  // ignored, as Go does
  goro::run([] { EXPECT_GE(goro::gomaxprocs(), 1); });
  ::unsetenv("GOMAXPROCS");
  // An explicit Options::procs wins over the environment.
  ::setenv("GOMAXPROCS", "3", 1);
  goro::run([] { EXPECT_EQ(goro::gomaxprocs(), 2); }, goro::Options{.procs = 2});
  ::unsetenv("GOMAXPROCS");
}

}  // namespace

// Every status change is checked against the state machine (Go's
// casgstatus): readying a goroutine that is not parked, here one already
// readied and sitting in the run queue, is fatal instead of queueing it
// twice (two Ms would then run one stack).
TEST(StatusDeathTest, ReadyingAGoroutineThatIsNotParkedIsFatal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(goro::run(
                   [] {
                     Slot s;
                     goro::go([&s] { wait_on(s); });
                     goro::Goroutine* g = nullptr;
                     while (g == nullptr) {  // parked: its record is out once the lock is free
                       goro::yield();
                       s.lock.lock();
                       g = s.waiter;
                       s.lock.unlock();
                     }
                     goro::ready(g);
                     goro::ready(g);  // runnable now, with one P nobody ran it: fatal
                   },
                   goro::Options{.procs = 1}),
               "runtime: casgstatus: goroutine [0-9]+ is runnable, not waiting, on its way to runnable\n"
               "fatal error: casgstatus: bad incoming values");
}

// The C++ runtime keeps the exceptions being handled and the count of
// exceptions in flight per thread; goroutines share threads, so each must
// see only its own (switch.cpp swaps them at every switch). Goroutines
// park inside a catch block, or in a destructor run by unwinding, while
// others run on the same threads and look.
TEST_P(SchedulerTest, EachGoroutineKeepsItsOwnExceptionState) {
  run([] {
    constexpr int kEach = 40;
    std::atomic<int> wrong{0};
    goro::WaitGroup wg;
    wg.add(3 * kEach);
    auto check_clean = [&] {
      if (std::current_exception() != nullptr || std::uncaught_exceptions() != 0) wrong.fetch_add(1);
    };
    for (int i = 0; i < kEach; ++i) {
      // Parks inside a catch block, then rethrows what it caught.
      goro::go([&, i] {
        try {
          throw i;
        } catch (int) {
          for (int k = 0; k < 5; ++k) goro::yield();
          if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
          try {
            throw;
          } catch (int v) {
            if (v != i) wrong.fetch_add(1);
          }
        }
        check_clean();
        wg.done();
      });
      // Parks in a destructor while its exception is in flight.
      goro::go([&, i] {
        struct Parker {
          std::atomic<int>* wrong;
          ~Parker() {
            for (int k = 0; k < 5; ++k) goro::yield();
            if (std::uncaught_exceptions() != 1) wrong->fetch_add(1);
          }
        };
        try {
          Parker p{&wrong};
          throw std::runtime_error(std::to_string(i));
        } catch (const std::runtime_error& e) {
          if (e.what() != std::to_string(i)) wrong.fetch_add(1);
        }
        check_clean();
        wg.done();
      });
      // Looks between switches: never sees another goroutine's exception.
      goro::go([&] {
        for (int k = 0; k < 10; ++k) {
          check_clean();
          goro::yield();
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(wrong.load(), 0);
  });
}
