// Tests of RWMutex (ports of Go's sync/rwmutex_test.go, plus goro's own:
// plain threads, wait reasons, a consistent RWMutex after run()'s teardown).
#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Panic;
using goro::RWMutex;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using sync_test::wait_for_waiters;
using sync_test::waiting_on;

class RWMutexTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(RWMutexTest);

// Port of TestParallelReaders: n readers hold the read lock at the same
// time (each waits, holding it, until all are in).
TEST_P(RWMutexTest, ReadersHoldTheLockTogether) {
  run([] {
    RWMutex mu;
    constexpr int kReaders = 8;
    goro::WaitGroup in, out;
    in.add(kReaders);
    out.add(kReaders);
    Chan<Unit> gate(0);
    for (int i = 0; i < kReaders; ++i) {
      goro::go([&, gate]() mutable {
        std::shared_lock<RWMutex> l(mu);
        in.done();
        gate.recv();
        out.done();
      });
    }
    in.wait();  // never returns unless all readers are inside at once
    EXPECT_FALSE(mu.try_lock()) << "a writer got in past readers";
    gate.close();
    out.wait();
    EXPECT_TRUE(wait_until([&] { return mu.try_lock(); }));
    mu.unlock();
  });
}

// Port of TestRWMutex / HammerRWMutex: readers add 1 to an activity count
// and must see no writer; writers add 10000 and must see nobody else.
TEST_P(RWMutexTest, WriterExcludesReadersAndWriters) {
  const std::int64_t iters = scaled(5'000);
  run([iters] {
    RWMutex mu;
    std::atomic<std::int64_t> activity{0};
    std::atomic<int> violations{0};
    constexpr int kReaders = 6, kWriters = 2;
    goro::WaitGroup wg;
    wg.add(kReaders + kWriters);
    for (int r = 0; r < kReaders; ++r) {
      goro::go([&, r] {
        for (std::int64_t i = 0; i < iters; ++i) {
          if (r % 2 == 1 && mu.try_lock_shared()) {
          } else {
            mu.lock_shared();
          }
          const std::int64_t n = activity.fetch_add(1) + 1;
          if (n < 1 || n >= 10000) violations.fetch_add(1);
          if (i % 100 == 0) goro::yield();
          activity.fetch_sub(1);
          mu.unlock_shared();
        }
        wg.done();
      });
    }
    for (int w = 0; w < kWriters; ++w) {
      goro::go([&, w] {
        for (std::int64_t i = 0; i < iters / 10; ++i) {
          if (w == 1 && mu.try_lock()) {
          } else {
            mu.lock();
          }
          const std::int64_t n = activity.fetch_add(10000) + 10000;
          if (n != 10000) violations.fetch_add(1);
          if (i % 10 == 0) goro::yield();
          activity.fetch_sub(10000);
          mu.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(violations.load(), 0);
    EXPECT_EQ(activity.load(), 0);
  });
}

// Writer priority (Go's doc: "If any goroutine calls Lock while the lock is
// already held by one or more readers, concurrent calls to RLock will block
// until the writer has acquired (and released) the lock"):
//   1. reader A holds the read lock;
//   2. writer W calls lock() and parks ("sync.RWMutex.Lock");
//   3. reader B: try_lock_shared() fails, lock_shared() parks
//      ("sync.RWMutex.RLock") although only readers hold the lock;
//   4. A leaves: W gets in before B; W leaves: B gets in.
TEST_P(RWMutexTest, WaitingWriterBlocksNewReaders) {
  run([] {
    RWMutex mu;
    Chan<int> order(2);
    // Both goroutines use mu until their last unlock returns: main waits
    // for that too, since mu dies with main's frame.
    goro::WaitGroup done;
    done.add(2);
    mu.lock_shared();  // A is main
    goro::go([&, order]() mutable {
      mu.lock();
      order.send(1);
      mu.unlock();
      done.done();
    });
    ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", 1));
    EXPECT_FALSE(mu.try_lock_shared()) << "a new reader overtook a waiting writer";
    goro::go([&, order]() mutable {
      mu.lock_shared();
      order.send(2);
      mu.unlock_shared();
      done.done();
    });
    ASSERT_TRUE(wait_for_waiters("sync.RWMutex.RLock", 1));
    EXPECT_EQ(waiting_on("sync.RWMutex.Lock"), 1);
    mu.unlock_shared();
    EXPECT_EQ(order.recv(), 1);
    EXPECT_EQ(order.recv(), 2);
    done.wait();
  });
}

// Writers queued behind a writer go in one at a time, in arrival order, and
// a reader that came during the first writer's tenure goes in before the
// next writer does:
//   1. main holds the write lock;
//   2. writer W1 parks, waiting to be handed the lock; writer W2 parks
//      behind it; reader R parks behind main;
//   3. main unlocks: R reads, then W1 writes, then W2 writes.
TEST_P(RWMutexTest, QueuedWritersGoInTurnAfterTheReadersTheyFound) {
  run([] {
    RWMutex mu;
    Chan<int> order(3);
    goro::WaitGroup done;  // as above: mu dies with main's frame
    done.add(3);
    mu.lock();
    for (int w = 1; w <= 2; ++w) {
      goro::go([&, order, w]() mutable {
        mu.lock();
        order.send(w);
        mu.unlock();
        done.done();
      });
      ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", w));
    }
    goro::go([&, order]() mutable {
      mu.lock_shared();
      order.send(0);
      mu.unlock_shared();
      done.done();
    });
    ASSERT_TRUE(wait_for_waiters("sync.RWMutex.RLock", 1));
    EXPECT_FALSE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock_shared());
    mu.unlock();
    EXPECT_EQ(order.recv(), 0);
    EXPECT_EQ(order.recv(), 1);
    EXPECT_EQ(order.recv(), 2);
    done.wait();
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// A stream of readers that always overlap must not keep a writer out.
TEST_P(RWMutexTest, ReadersCannotStarveAWriter) {
  run([] {
    RWMutex mu;
    std::atomic<bool> stop{false};
    constexpr int kReaders = 4;
    goro::WaitGroup readers;
    readers.add(kReaders);
    for (int r = 0; r < kReaders; ++r) {
      goro::go([&] {
        while (!stop.load()) {
          std::shared_lock<RWMutex> l(mu);
          goro::yield();  // hold across a switch, so readers overlap
        }
        readers.done();
      });
    }
    Chan<Unit> wrote(1);
    goro::go([&, wrote]() mutable {
      for (int i = 0; i < 10; ++i) {
        std::lock_guard<RWMutex> l(mu);
      }
      wrote.send(Unit{});
    });
    using namespace std::chrono_literals;
    const std::size_t which = goro::select(goro::on_recv(wrote), goro::on_recv(goro::after(10s)));
    EXPECT_EQ(which, 0u) << "writer starved by readers for 10 seconds";
    stop = true;
    readers.wait();
    if (which != 0) wrote.recv();
  });
}

TEST_P(RWMutexTest, TryLockAndTryLockShared) {
  run([] {
    RWMutex mu;
    ASSERT_TRUE(mu.try_lock_shared());
    ASSERT_TRUE(mu.try_lock_shared());
    EXPECT_FALSE(mu.try_lock());
    mu.unlock_shared();
    EXPECT_FALSE(mu.try_lock());
    mu.unlock_shared();
    ASSERT_TRUE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock());
    EXPECT_FALSE(mu.try_lock_shared());
    mu.unlock();
    EXPECT_TRUE(mu.try_lock_shared());
    mu.unlock_shared();
  });
}

TEST_P(RWMutexTest, UnlockingWhatIsNotLockedPanicsAndChangesNothing) {
  run([] {
    RWMutex mu;
    try {
      mu.unlock();
      FAIL() << "no panic";
    } catch (const Panic& p) {
      EXPECT_STREQ(p.what(), "sync: Unlock of unlocked RWMutex");
    }
    try {
      mu.unlock_shared();
      FAIL() << "no panic";
    } catch (const Panic& p) {
      EXPECT_STREQ(p.what(), "sync: RUnlock of unlocked RWMutex");
    }
    // Write-locked: a reader's unlock is still a misuse.
    mu.lock();
    EXPECT_THROW(mu.unlock_shared(), Panic);
    mu.unlock();
    // Read-locked: a writer's unlock is a misuse.
    mu.lock_shared();
    EXPECT_THROW(mu.unlock(), Panic);
    mu.unlock_shared();
    // Nothing changed: both kinds of lock still work.
    ASSERT_TRUE(mu.try_lock());
    mu.unlock();
    ASSERT_TRUE(mu.try_lock_shared());
    mu.unlock_shared();
  });
}

TEST_P(RWMutexTest, AnotherGoroutineMayUnlock) {
  run([] {
    RWMutex mu;
    mu.lock();
    Chan<Unit> done(0);
    goro::go([&, done]() mutable {
      mu.unlock();
      mu.lock_shared();
      done.send(Unit{});
    });
    done.recv();
    mu.unlock_shared();  // main releases the read lock the goroutine took
    mu.lock();
    mu.unlock();
  });
}

TEST_P(RWMutexTest, StandardLockAdaptersWork) {
  run([] {
    RWMutex mu;
    {
      std::shared_lock<RWMutex> r1(mu);
      std::shared_lock<RWMutex> r2(mu, std::try_to_lock);
      EXPECT_TRUE(r2.owns_lock());
      std::unique_lock<RWMutex> w(mu, std::try_to_lock);
      EXPECT_FALSE(w.owns_lock());
    }
    {
      std::unique_lock<RWMutex> w(mu);
      std::shared_lock<RWMutex> r(mu, std::try_to_lock);
      EXPECT_FALSE(r.owns_lock());
    }
    goro::Mutex other;
    std::scoped_lock both(mu, other);
  });
}

TEST_P(RWMutexTest, PlainThreadsAndGoroutinesMix) {
  const std::int64_t n = scaled(5'000);
  run([n] {
    RWMutex mu;
    std::int64_t value = 0;  // guarded by mu
    std::atomic<int> bad{0};
    goro::WaitGroup wg;
    constexpr int kThreads = 2, kGoroutines = 6;
    wg.add(kThreads + kGoroutines);
    auto work = [&](int who) {
      for (std::int64_t i = 0; i < n; ++i) {
        if ((i + who) % 8 == 0) {
          std::lock_guard<RWMutex> l(mu);
          value += 2;
        } else {
          std::shared_lock<RWMutex> l(mu);
          if (value % 2 != 0) bad.fetch_add(1);
        }
      }
      wg.done();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
    for (int g = 0; g < kGoroutines; ++g) goro::go([&work, g] { work(kThreads + g); });
    wg.wait();
    for (auto& t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
    std::int64_t writes = 0;
    for (int who = 0; who < kThreads + kGoroutines; ++who) {
      for (std::int64_t i = 0; i < n; ++i) writes += (i + who) % 8 == 0 ? 1 : 0;
    }
    EXPECT_EQ(value, 2 * writes);
  });
}

// Goroutines unwound by run()'s teardown while parked as readers (behind a
// writer), as a writer waiting for readers, and as a writer queued behind
// another writer, must leave the RWMutex free and usable. Teardown unwinds
// parked goroutines in an order of its own; rounds 3 and 4 hand the held
// lock to a goroutine created after the waiters, so that (with the
// runtime's current order) the waiters are unwound before the holder
// releases: a writer that gives up waiting for readers, readers that give
// up waiting for a writer.
TEST_P(RWMutexTest, TeardownLeavesAParkedRWMutexConsistent) {
  for (int round = 0; round < 5; ++round) {
    RWMutex mu;
    Chan<Unit> never(0);
    std::int64_t parked = 0;
    const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
      Chan<Unit> in(0);
      if (round == 0) {
        // A reader inside, a writer waiting for it, readers behind the writer.
        goro::go([&, in]() mutable {
          std::shared_lock<RWMutex> l(mu);
          in.send(Unit{});
          never.recv();
        });
        in.recv();
        goro::go([&] {
          std::lock_guard<RWMutex> l(mu);
          never.recv();
        });
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", 1));
        for (int i = 0; i < 3; ++i) {
          goro::go([&] {
            std::shared_lock<RWMutex> l(mu);
            never.recv();
          });
        }
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.RLock", 3));
        parked = 5;
      } else if (round == 1) {
        // A writer inside, writers and readers waiting.
        goro::go([&, in]() mutable {
          std::lock_guard<RWMutex> l(mu);
          in.send(Unit{});
          never.recv();
        });
        in.recv();
        for (int i = 0; i < 2; ++i) {
          goro::go([&] {
            std::lock_guard<RWMutex> l(mu);
            never.recv();
          });
        }
        for (int i = 0; i < 3; ++i) {
          goro::go([&] {
            std::shared_lock<RWMutex> l(mu);
            never.recv();
          });
        }
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", 2));
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.RLock", 3));
        parked = 6;
      } else if (round == 3) {
        // A reader inside (main's read lock, adopted by the last goroutine),
        // a writer waiting for it.
        mu.lock_shared();
        goro::go([&] {
          std::lock_guard<RWMutex> l(mu);
          never.recv();
        });
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", 1));
        goro::go([&] {
          std::shared_lock<RWMutex> l(mu, std::adopt_lock);
          never.recv();
        });
        ASSERT_TRUE(wait_for_waiters("chan receive", 1));
        parked = 2;
      } else if (round == 4) {
        // A writer inside (main's, adopted by the last goroutine), readers
        // waiting for it.
        mu.lock();
        for (int i = 0; i < 3; ++i) {
          goro::go([&] {
            std::shared_lock<RWMutex> l(mu);
            never.recv();
          });
        }
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.RLock", 3));
        goro::go([&] {
          std::lock_guard<RWMutex> l(mu, std::adopt_lock);
          never.recv();
        });
        ASSERT_TRUE(wait_for_waiters("chan receive", 1));
        parked = 4;
      } else {
        // Two readers inside, one writer waiting for both; main leaves as
        // one of the readers, so the writer waits for the other only.
        mu.lock_shared();
        goro::go([&, in]() mutable {
          std::shared_lock<RWMutex> l(mu);
          in.send(Unit{});
          never.recv();
        });
        in.recv();
        goro::go([&] {
          std::lock_guard<RWMutex> l(mu);
          never.recv();
        });
        ASSERT_TRUE(wait_for_waiters("sync.RWMutex.Lock", 1));
        mu.unlock_shared();
        parked = 2;
      }
    });
    EXPECT_EQ(unwound, parked) << "round " << round;
    goro::run(
        [&] {
          EXPECT_TRUE(mu.try_lock()) << "round " << round << ": not free after teardown";
          mu.unlock();
          EXPECT_TRUE(mu.try_lock_shared()) << "round " << round;
          mu.unlock_shared();
          goro::WaitGroup wg;
          int value = 0;  // guarded by mu
          wg.add(4);
          for (int i = 0; i < 4; ++i) {
            goro::go([&, i] {
              for (int j = 0; j < 500; ++j) {
                if ((i + j) % 4 == 0) {
                  std::lock_guard<RWMutex> l(mu);
                  ++value;
                } else {
                  std::shared_lock<RWMutex> l(mu);
                }
              }
              wg.done();
            });
          }
          wg.wait();
          EXPECT_EQ(value, 500);
        },
        goro::Options{.procs = procs()});
  }
}

}  // namespace
