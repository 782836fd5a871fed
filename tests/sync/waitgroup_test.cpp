// Tests of WaitGroup (ports of Go's sync/waitgroup_test.go).
#include <atomic>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class WaitGroupTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(WaitGroupTest);

// Port of TestWaitGroup: two groups, n goroutines; the second can only
// finish once the first has been waited for.
TEST_P(WaitGroupTest, WaitReturnsOnlyAfterEveryDone) {
  run([] {
    for (int round = 0; round < 8; ++round) {
      goro::WaitGroup wg1, wg2;
      constexpr int n = 16;
      wg1.add(n);
      wg2.add(n);
      goro::Chan<bool> exited(n);
      for (int i = 0; i < n; ++i) {
        goro::go([&, exited]() mutable {
          wg1.done();
          wg2.wait();
          exited.send(true);
        });
      }
      wg1.wait();
      for (int i = 0; i < n; ++i) {
        EXPECT_FALSE(exited.try_recv().has_value()) << "a goroutine left wg2.wait() before done";
        wg2.done();
      }
      for (int i = 0; i < n; ++i) exited.recv();
    }
  });
}

TEST_P(WaitGroupTest, NegativeCounterPanics) {
  run([] {
    goro::WaitGroup wg;
    wg.add(1);
    wg.done();
    try {
      wg.done();
      FAIL() << "no panic";
    } catch (const goro::Panic& p) {
      EXPECT_STREQ(p.what(), "sync: negative WaitGroup counter");
    }
  });
}

// Port of TestWaitGroupMisuse, and what goro adds: the failed add() leaves
// the counter where it was, so the group goes on working.
TEST_P(WaitGroupTest, NegativeCounterLeavesTheGroupAsItWas) {
  run([] {
    goro::WaitGroup wg;
    wg.add(2);
    EXPECT_THROW(wg.add(-3), goro::Panic);
    goro::Chan<bool> waited(1);
    goro::go([&, waited]() mutable {
      wg.wait();
      waited.send(true);
    });
    ASSERT_TRUE(sync_test::wait_for_waiters("sync.WaitGroup.Wait", 1));
    wg.done();
    EXPECT_FALSE(waited.try_recv().has_value()) << "the counter lost the failed add's history";
    wg.done();
    EXPECT_TRUE(waited.recv().value());
  });
}

TEST_P(WaitGroupTest, WaitOnAZeroCounterReturnsAtOnce) {
  run([] {
    goro::WaitGroup wg;
    wg.wait();
    wg.add(3);
    wg.add(-3);
    wg.wait();
  });
}

TEST_P(WaitGroupTest, ManyWaitersAreAllReleasedAndTheGroupIsReusable) {
  run([] {
    goro::WaitGroup wg;
    for (int round = 0; round < 20; ++round) {
      wg.add(1);
      std::atomic<int> released{0};
      goro::WaitGroup waiters;
      waiters.add(10);
      for (int i = 0; i < 10; ++i) {
        goro::go([&] {
          wg.wait();
          released.fetch_add(1);
          waiters.done();
        });
      }
      ASSERT_TRUE(wait_until([&] {
        for (const auto& g : goro::goroutines()) {
          if (g.wait_reason == "sync.WaitGroup.Wait") return true;
        }
        return false;
      }));
      wg.done();
      waiters.wait();
      EXPECT_EQ(released.load(), 10);
    }
  });
}

TEST_P(WaitGroupTest, PlainThreadsAndGoroutinesMix) {
  const std::int64_t n = scaled(2'000);
  run([n] {
    goro::WaitGroup wg;
    wg.add(2 * n);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&] {
        for (std::int64_t i = 0; i < n; ++i) wg.done();
      });
    }
    std::thread waiter([&] { wg.wait(); });  // a plain thread waits too
    wg.wait();
    waiter.join();
    for (auto& t : threads) t.join();
  });
}

TEST_P(WaitGroupTest, StressManyGoroutinesOnOneGroup) {
  const std::int64_t n = scaled(100'000);
  run([n] {
    goro::WaitGroup wg;
    std::atomic<std::int64_t> ran{0};
    for (std::int64_t i = 0; i < n; ++i) {
      wg.add(1);
      goro::go([&] {
        ran.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ran.load(), n);
  });
}

// Waiters unwound by run()'s teardown must take themselves out of the
// group's waiter count: otherwise the next round's last done() would release
// a unit nobody waits for, and a later wait() would return too early.
TEST_P(WaitGroupTest, TeardownLeavesTheGroupReusable) {
  goro::WaitGroup wg;
  const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
    wg.add(1);
    for (int i = 0; i < 3; ++i) goro::go([&] { wg.wait(); });
    ASSERT_TRUE(sync_test::wait_for_waiters("sync.WaitGroup.Wait", 3));
  });
  EXPECT_EQ(unwound, 3);
  goro::run(
      [&] {
        wg.done();  // the counter from the last run reaches zero: no waiter left to release
        wg.add(1);
        goro::Chan<bool> waited(1);
        goro::go([&, waited]() mutable {
          wg.wait();
          waited.send(true);
        });
        ASSERT_TRUE(sync_test::wait_for_waiters("sync.WaitGroup.Wait", 1));
        EXPECT_FALSE(waited.try_recv().has_value()) << "a stale unit let wait() through";
        wg.done();
        EXPECT_TRUE(waited.recv().value());
      },
      goro::Options{.procs = procs()});
}

}  // namespace
