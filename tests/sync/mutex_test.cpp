// Tests of Mutex (ports of Go's sync/mutex_test.go, plus goro's own: plain
// threads, wait reasons, and a consistent Mutex after run()'s teardown).
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Mutex;
using goro::Panic;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using sync_test::wait_for_waiters;
using namespace std::chrono_literals;

class MutexTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(MutexTest);

// Port of TestMutex/HammerMutex: goroutines increment a plain counter under
// the lock; a second, atomic "inside" count catches two holders at once.
TEST_P(MutexTest, LockExcludesEveryOtherHolder) {
  const std::int64_t iters = scaled(20'000);
  run([iters] {
    Mutex mu;
    std::int64_t counter = 0;  // guarded by mu
    std::atomic<int> inside{0};
    std::atomic<int> overlaps{0};
    constexpr int kGoroutines = 10;
    goro::WaitGroup wg;
    wg.add(kGoroutines);
    for (int g = 0; g < kGoroutines; ++g) {
      goro::go([&, g] {
        for (std::int64_t i = 0; i < iters; ++i) {
          if (g % 2 == 0 || !mu.try_lock()) mu.lock();
          if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
          ++counter;
          if (i % 64 == 0) goro::yield();  // hold it across a switch now and then
          inside.fetch_sub(1);
          mu.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(overlaps.load(), 0);
    EXPECT_EQ(counter, kGoroutines * iters);
  });
}

TEST_P(MutexTest, TryLockFailsWhileHeldAndSucceedsOnceReleased) {
  run([] {
    Mutex mu;
    ASSERT_TRUE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock());
    Chan<bool> got(1);
    goro::go([&, got]() mutable { got.send(mu.try_lock()); });
    EXPECT_EQ(got.recv(), false) << "another goroutine took a held mutex";
    mu.unlock();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// Go: "fatal error: sync: unlock of unlocked mutex"; goro throws Panic and
// leaves the Mutex usable.
TEST_P(MutexTest, UnlockOfUnlockedMutexPanicsAndChangesNothing) {
  run([] {
    Mutex mu;
    try {
      mu.unlock();
      FAIL() << "no panic";
    } catch (const Panic& p) {
      EXPECT_STREQ(p.what(), "sync: unlock of unlocked mutex");
    }
    mu.lock();
    mu.unlock();
    EXPECT_THROW(mu.unlock(), Panic) << "a second unlock after a proper one";
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

TEST_P(MutexTest, AnotherGoroutineMayUnlock) {
  run([] {
    Mutex mu;
    mu.lock();
    Chan<Unit> unlocked(0);
    goro::go([&, unlocked]() mutable {
      mu.unlock();
      unlocked.send(Unit{});
    });
    unlocked.recv();
    mu.lock();  // parks forever if the other goroutine's unlock did not count
    mu.unlock();
  });
}

TEST_P(MutexTest, StandardLockAdaptersWork) {
  run([] {
    Mutex a, b;
    {
      std::lock_guard<Mutex> l(a);
      EXPECT_FALSE(a.try_lock());
    }
    {
      std::unique_lock<Mutex> l(a, std::try_to_lock);
      EXPECT_TRUE(l.owns_lock());
      l.unlock();
      EXPECT_TRUE(a.try_lock());
      a.unlock();
    }
    // std::scoped_lock of two mutexes uses lock()/try_lock() to avoid
    // deadlock; two goroutines locking them in opposite orders both finish.
    goro::WaitGroup wg;
    wg.add(2);
    const std::int64_t n = scaled(2'000);
    goro::go([&] {
      for (std::int64_t i = 0; i < n; ++i) std::scoped_lock l(a, b);
      wg.done();
    });
    goro::go([&] {
      for (std::int64_t i = 0; i < n; ++i) std::scoped_lock l(b, a);
      wg.done();
    });
    wg.wait();
    EXPECT_TRUE(a.try_lock());
    EXPECT_TRUE(b.try_lock());
    a.unlock();
    b.unlock();
  });
}

TEST_P(MutexTest, ParkedLockerReportsSyncMutexLock) {
  run([] {
    Mutex mu;
    mu.lock();
    Chan<Unit> done(0);
    goro::go([&, done]() mutable {
      mu.lock();
      mu.unlock();
      done.send(Unit{});
    });
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", 1));
    mu.unlock();
    done.recv();
  });
}

// Port of TestMutexFairness: one goroutine holds the lock almost all the
// time, re-locking at once; the other must still get it (starvation mode
// hands it over) well within 10 seconds.
TEST_P(MutexTest, FairnessLetsAStarvedWaiterIn) {
  run([] {
    Mutex mu;
    std::atomic<bool> stop{false};
    goro::WaitGroup hog_done;
    hog_done.add(1);
    goro::go([&] {
      while (!stop.load()) {
        mu.lock();
        goro::sleep_for(100us);
        mu.unlock();
      }
      hog_done.done();
    });
    Chan<Unit> done(1);
    goro::go([&, done]() mutable {
      for (int i = 0; i < 10; ++i) {
        goro::sleep_for(100us);
        mu.lock();
        mu.unlock();
      }
      done.send(Unit{});
    });
    const std::size_t which = goro::select(goro::on_recv(done), goro::on_recv(goro::after(10s)));
    EXPECT_EQ(which, 0u) << "can't acquire Mutex in 10 seconds";
    stop = true;
    hog_done.wait();
    if (which != 0) done.recv();
  });
}

// Many waiters that each wait for more than 1 ms switch the mutex to
// starvation mode and back; every one of them must get the lock, and the
// mutex must end up free with no waiter left behind.
TEST_P(MutexTest, LongHoldsCycleThroughStarvationModeWithoutLosingWaiters) {
  run([] {
    Mutex mu;
    constexpr int kWaiters = 16;
    std::atomic<int> served{0};
    goro::WaitGroup wg;
    wg.add(kWaiters);
    mu.lock();
    for (int i = 0; i < kWaiters; ++i) {
      goro::go([&] {
        mu.lock();
        goro::sleep_for(1500us);  // hold past the starvation threshold
        served.fetch_add(1);
        mu.unlock();
        wg.done();
      });
    }
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", kWaiters));
    goro::sleep_for(2ms);  // let every waiter pass the starvation threshold
    mu.unlock();
    wg.wait();
    EXPECT_EQ(served.load(), kWaiters);
    EXPECT_TRUE(mu.try_lock()) << "mutex left locked or starving with nobody waiting";
    mu.unlock();
  });
}

TEST_P(MutexTest, PlainThreadsAndGoroutinesShareOneMutex) {
  const std::int64_t n = scaled(20'000);
  run([n] {
    Mutex mu;
    std::int64_t counter = 0;  // guarded by mu
    goro::WaitGroup wg;
    constexpr int kGoroutines = 4, kThreads = 2;
    wg.add(kGoroutines + kThreads);
    auto work = [&] {
      for (std::int64_t i = 0; i < n; ++i) {
        std::lock_guard<Mutex> l(mu);
        ++counter;
      }
      wg.done();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(work);
    for (int g = 0; g < kGoroutines; ++g) goro::go(work);
    wg.wait();
    for (auto& t : threads) t.join();
    EXPECT_EQ(counter, (kGoroutines + kThreads) * n);
  });
}

TEST_P(MutexTest, PlainThreadWaitsUntilAGoroutineUnlocks) {
  run([] {
    Mutex mu;
    mu.lock();
    std::atomic<bool> trying{false}, got{false};
    std::thread t([&] {
      trying = true;
      mu.lock();
      got = true;
      mu.unlock();
    });
    ASSERT_TRUE(wait_until([&] { return trying.load(); }));
    EXPECT_FALSE(got.load());
    goro::go([&] { mu.unlock(); });
    goro::blocking([&] { t.join(); });  // the P goes to the unlocking goroutine meanwhile
    EXPECT_TRUE(got.load());
  });
}

// A goroutine unwound by run()'s teardown while parked in lock() (or while
// holding the lock in a lock_guard) must leave the Mutex consistent: free,
// with no waiter counted, usable by the next run.
TEST_P(MutexTest, TeardownLeavesAParkedMutexConsistent) {
  for (int round = 0; round < 4; ++round) {
    Mutex mu;
    Chan<Unit> never(0), cycle(0), cycled(0);
    constexpr int kWaiters = 5;
    const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
      Chan<Unit> holding(0);
      goro::go([&, holding]() mutable {
        std::lock_guard<Mutex> l(mu);
        holding.send(Unit{});
        if (round % 2 == 1) {
          // After the waiters have waited past 1 ms: let go and re-take at
          // once, so the woken waiter loses and switches to starvation mode.
          cycle.recv();
          mu.unlock();
          mu.lock();
          cycled.send(Unit{});
        }
        never.recv();  // parked with the lock held
      });
      holding.recv();
      for (int i = 0; i < kWaiters; ++i) {
        goro::go([&] {
          std::lock_guard<Mutex> l(mu);
          never.recv();
        });
      }
      ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", kWaiters));
      if (round % 2 == 1) {
        goro::sleep_for(2ms);
        cycle.send(Unit{});
        cycled.recv();
        ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", kWaiters));
      }
    });
    EXPECT_EQ(unwound, 1 + kWaiters) << "round " << round;
    goro::run(
        [&] {
          EXPECT_TRUE(mu.try_lock()) << "round " << round << ": mutex not free after teardown";
          mu.unlock();
          // And it still works under contention.
          goro::WaitGroup wg;
          int counter = 0;  // guarded by mu
          wg.add(4);
          for (int i = 0; i < 4; ++i) {
            goro::go([&] {
              for (int j = 0; j < 1000; ++j) {
                std::lock_guard<Mutex> l(mu);
                ++counter;
              }
              wg.done();
            });
          }
          wg.wait();
          EXPECT_EQ(counter, 4000);
        },
        goro::Options{.procs = procs()});
  }
}

}  // namespace
