// Tests of Semaphore (ports of golang.org/x/sync/semaphore's tests, plus
// goro's own: FIFO order, plain threads, consistency after teardown).
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Panic;
using goro::Semaphore;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using sync_test::wait_for_waiters;
using sync_test::waiting_on;
using namespace std::chrono_literals;

class SemaphoreTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(SemaphoreTest);

// Port of TestWeighted/HammerWeighted: goroutines take random weights;
// the weight held never exceeds the size.
TEST_P(SemaphoreTest, HeldWeightNeverExceedsTheSize) {
  const std::int64_t loops = scaled(2'000);
  run([loops] {
    constexpr std::int64_t kSize = 10;
    Semaphore sem(kSize);
    std::atomic<std::int64_t> held{0};
    std::atomic<int> over{0};
    constexpr int kGoroutines = 8;
    goro::WaitGroup wg;
    wg.add(kGoroutines);
    for (int g = 0; g < kGoroutines; ++g) {
      goro::go([&, g] {
        std::mt19937 rng(static_cast<unsigned>(g) + 1);
        for (std::int64_t i = 0; i < loops; ++i) {
          const std::int64_t n = 1 + static_cast<std::int64_t>(rng() % kSize);
          if (i % 3 != 0 || !sem.try_acquire(n)) sem.acquire(n);
          if (held.fetch_add(n) + n > kSize) over.fetch_add(1);
          if (i % 16 == 0) goro::yield();
          held.fetch_sub(n);
          sem.release(n);
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(over.load(), 0);
    EXPECT_TRUE(sem.try_acquire(kSize)) << "units leaked";
    sem.release(kSize);
  });
}

// Waiters are served in arrival order, even when a later, smaller request
// would fit first.
TEST_P(SemaphoreTest, WaitersAreServedInFifoOrder) {
  run([] {
    Semaphore sem(3);
    sem.acquire(3);
    const std::int64_t weights[] = {2, 1, 3, 1, 1};
    constexpr int n = 5;
    Chan<int> served(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, i, served]() mutable {
        sem.acquire(weights[i]);
        served.send(i);
      });
      ASSERT_TRUE(wait_for_waiters("semacquire", i + 1));  // queued in order
    }
    // `free` below is size - held; release() does not care who holds what.
    sem.release(1);  // free 1: the head (2) does not fit, so nobody moves
    EXPECT_FALSE(served.try_recv().has_value()) << "a later request overtook the head";
    sem.release(1);  // free 2: waiter 0 (2) goes; then free 0
    EXPECT_EQ(served.recv(), 0);
    sem.release(2);  // free 2: waiter 1 (1) goes; waiter 2 (3) does not fit
    EXPECT_EQ(served.recv(), 1);
    EXPECT_FALSE(served.try_recv().has_value());
    sem.release(1);  // free 2: waiter 2 (3) still does not fit, and holds back 3 and 4
    EXPECT_FALSE(served.try_recv().has_value());
    sem.release(1);  // free 3: waiter 2 goes; then free 0
    EXPECT_EQ(served.recv(), 2);
    sem.release(1);               // free 1: waiter 3 (1) goes, not 4 (one release may let several go,
    EXPECT_EQ(served.recv(), 3);  // but then their wake-ups may run in either order)
    sem.release(1);
    EXPECT_EQ(served.recv(), 4);
    sem.release(3);
    EXPECT_TRUE(sem.try_acquire(3));
    sem.release(3);
  });
}

// Port of TestWeightedTryAcquire and of the x/sync rule that try_acquire
// fails while others wait, even when its request would fit.
TEST_P(SemaphoreTest, TryAcquireFailsWhileOthersWait) {
  run([] {
    Semaphore sem(2);
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_TRUE(sem.try_acquire(1));
    EXPECT_FALSE(sem.try_acquire(1));
    sem.release(1);
    Chan<Unit> got(1);
    goro::go([&, got]() mutable {
      sem.acquire(2);  // 1 free: waits
      got.send(Unit{});
    });
    ASSERT_TRUE(wait_for_waiters("semacquire", 1));
    EXPECT_FALSE(sem.try_acquire(1)) << "try_acquire jumped the queue";
    sem.release(1);
    got.recv();
    EXPECT_FALSE(sem.try_acquire(1));
    sem.release(2);
    EXPECT_TRUE(sem.try_acquire(2));
    sem.release(2);
  });
}

// Port of TestLargeAcquireDoesntStarve: n goroutines keep the semaphore
// busy with small, overlapping requests; a request for all of it must
// still get through (it holds the small ones back until served).
TEST_P(SemaphoreTest, BigRequestIsNotStarvedBySmallOnes) {
  run([this] {
    const std::int64_t n = procs() + 1;
    Semaphore sem(n);
    std::atomic<bool> running{true};
    goro::WaitGroup wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      sem.acquire(1);
      goro::go([&] {
        while (running.load()) {
          goro::sleep_for(100us);
          sem.release(1);
          sem.acquire(1);
        }
        sem.release(1);
        wg.done();
      });
    }
    Chan<Unit> got(1);
    goro::go([&, got]() mutable {
      sem.acquire(n);
      got.send(Unit{});
    });
    const std::size_t which = goro::select(goro::on_recv(got), goro::on_recv(goro::after(10s)));
    EXPECT_EQ(which, 0u) << "acquire(size) starved for 10 seconds";
    running = false;
    if (which != 0) got.recv();
    sem.release(n);
    wg.wait();
  });
}

// x/sync: a request larger than the size can never succeed; it waits
// forever but must not hold back the requests behind it.
TEST_P(SemaphoreTest, RequestLargerThanTheSizeWaitsForeverWithoutBlockingOthers) {
  Semaphore sem(2);
  const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
    goro::go([&] { sem.acquire(3); });
    ASSERT_TRUE(wait_for_waiters("semacquire", 1));
    EXPECT_FALSE(sem.try_acquire(3));
    EXPECT_TRUE(sem.try_acquire(1)) << "a doomed request holds back try_acquire";
    Chan<Unit> got(1);
    goro::go([&, got]() mutable {
      sem.acquire(2);
      got.send(Unit{});
    });
    ASSERT_TRUE(wait_for_waiters("semacquire", 2));
    sem.release(1);
    got.recv();  // parks forever if the doomed request blocked this one
    sem.release(2);
  });
  EXPECT_EQ(unwound, 1) << "the doomed request should have been the only goroutine left";
  goro::run([&] {
    EXPECT_TRUE(sem.try_acquire(2));
    sem.release(2);
  });
}

TEST_P(SemaphoreTest, ReleasingMoreThanHeldPanicsAndChangesNothing) {
  run([] {
    Semaphore sem(3);
    try {
      sem.release(1);
      FAIL() << "no panic";
    } catch (const Panic& p) {
      EXPECT_STREQ(p.what(), "semaphore: released more than held");
    }
    sem.acquire(2);
    EXPECT_THROW(sem.release(3), Panic);
    EXPECT_FALSE(sem.try_acquire(2)) << "the failed release freed units";
    sem.release(2);
    EXPECT_TRUE(sem.try_acquire(3));
    sem.release(3);
  });
}

TEST_P(SemaphoreTest, PlainThreadsAndGoroutinesShareOneSemaphore) {
  const std::int64_t n = scaled(5'000);
  run([n] {
    Semaphore sem(2);
    std::atomic<int> inside{0}, over{0};
    goro::WaitGroup wg;
    constexpr int kThreads = 2, kGoroutines = 4;
    wg.add(kThreads + kGoroutines);
    auto work = [&] {
      for (std::int64_t i = 0; i < n; ++i) {
        sem.acquire();
        if (inside.fetch_add(1) + 1 > 2) over.fetch_add(1);
        inside.fetch_sub(1);
        sem.release();
      }
      wg.done();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(work);
    for (int g = 0; g < kGoroutines; ++g) goro::go(work);
    wg.wait();
    for (auto& t : threads) t.join();
    EXPECT_EQ(over.load(), 0);
    EXPECT_TRUE(sem.try_acquire(2));
    sem.release(2);
  });
}

// Waiters unwound by run()'s teardown: one granted but not yet run, one at
// the head still queued, one behind it. The units come back and the queue
// is empty afterwards.
TEST_P(SemaphoreTest, TeardownLeavesTheSemaphoreConsistent) {
  Semaphore sem(4);
  Chan<Unit> never(0);
  const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
    sem.acquire(4);
    const std::int64_t weights[] = {1, 4, 2};
    for (int i = 0; i < 3; ++i) {
      goro::go([&, w = weights[i]] {
        sem.acquire(w);
        struct GiveBack {
          Semaphore& sem;
          std::int64_t n;
          ~GiveBack() { sem.release(n); }
        } give_back{sem, w};
        never.recv();  // a granted one that ran parks here; its unwinding gives the units back
      });
      ASSERT_TRUE(wait_for_waiters("semacquire", i + 1));
    }
    sem.release(1);  // grants the first waiter (1); the head is now the 4
  });
  EXPECT_EQ(unwound, 3);
  goro::run(
      [&] {
        // Main still holds 3; the waiters gave theirs back, or never had any.
        EXPECT_FALSE(sem.try_acquire(2));
        EXPECT_TRUE(sem.try_acquire(1));
        sem.release(4);
        EXPECT_TRUE(sem.try_acquire(4));
        sem.release(4);
        EXPECT_EQ(waiting_on("semacquire"), 0);
      },
      goro::Options{.procs = procs()});
}

}  // namespace
