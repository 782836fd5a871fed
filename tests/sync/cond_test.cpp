// Tests of Cond (ports of Go's sync/cond_test.go, plus goro's own: FIFO
// order, plain threads, a consistent Cond after run()'s teardown).
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Cond;
using goro::Mutex;
using goro::Panic;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using sync_test::wait_for_waiters;
using sync_test::waiting_on;

class CondTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(CondTest);

// Port of TestCondSignal: each signal wakes exactly one waiter.
TEST_P(CondTest, SignalWakesOneWaiterAtATime) {
  run([] {
    Mutex m;
    Cond c(m);
    constexpr int n = 4;
    Chan<bool> running(n), awake(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, running, awake]() mutable {
        m.lock();
        running.send(true);
        c.wait();
        awake.send(true);
        m.unlock();
      });
    }
    for (int i = 0; i < n; ++i) running.recv();
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", n));
    for (int left = n; left > 0; --left) {
      EXPECT_FALSE(awake.try_recv().has_value()) << "goroutine not asleep";
      m.lock();
      c.signal();
      m.unlock();
      awake.recv();  // parks forever if no goroutine woke up
      ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", left - 1));
      EXPECT_FALSE(awake.try_recv().has_value()) << "too many goroutines awake";
    }
    c.signal();  // nobody left: a no-op
  });
}

// Port of TestCondSignalGenerations, made strict: waiters queue in a known
// order (waiter i is in wait() before waiter i+1 starts), and signal()
// wakes them in that order.
TEST_P(CondTest, SignalWakesWaitersInFifoOrder) {
  run([] {
    Mutex m;
    Cond c(m);
    constexpr int n = 50;
    Chan<Unit> running(0);
    Chan<int> awake(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, i, running, awake]() mutable {
        std::unique_lock<Mutex> l(m);
        running.send(Unit{});
        c.wait();
        awake.send(i);
      });
      running.recv();
      // The waiter sent while holding m; m is ours again only once its
      // wait() has queued it and unlocked.
      m.lock();
      m.unlock();
    }
    for (int i = 0; i < n; ++i) {
      m.lock();
      c.signal();
      m.unlock();
      EXPECT_EQ(awake.recv(), i) << "wrong goroutine woke up";
    }
  });
}

// Port of TestCondBroadcast: broadcast wakes every waiter, and only those
// that were waiting when it was called.
TEST_P(CondTest, BroadcastWakesEveryWaiterAndNoLaterOne) {
  run([] {
    Mutex m;
    Cond c(m);
    constexpr int n = 20;
    int generation = 0;  // guarded by m
    Chan<int> awake(n + 1);
    goro::WaitGroup queued;
    queued.add(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, awake]() mutable {
        std::unique_lock<Mutex> l(m);
        const int mine = generation;
        queued.done();
        while (generation == mine) c.wait();
        awake.send(mine);
      });
    }
    queued.wait();
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", n));
    {
      std::lock_guard<Mutex> l(m);
      ++generation;
      c.broadcast();
    }
    for (int i = 0; i < n; ++i) EXPECT_EQ(awake.recv(), 0);
    // A waiter arriving after the broadcast stays asleep until the next one.
    goro::go([&, awake]() mutable {
      std::unique_lock<Mutex> l(m);
      c.wait();
      awake.send(-1);
    });
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", 1));
    EXPECT_FALSE(awake.try_recv().has_value());
    c.broadcast();
    EXPECT_EQ(awake.recv(), -1);
  });
}

TEST_P(CondTest, SignalWithNobodyWaitingIsLost) {
  run([] {
    Mutex m;
    Cond c(m);
    c.signal();
    c.broadcast();
    Chan<Unit> awake(1);
    goro::go([&, awake]() mutable {
      std::unique_lock<Mutex> l(m);
      c.wait();
      awake.send(Unit{});
    });
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", 1));
    EXPECT_FALSE(awake.try_recv().has_value()) << "an earlier signal woke a later waiter";
    c.signal();
    awake.recv();
  });
}

TEST_P(CondTest, WaitWithoutTheMutexPanicsAndLeavesNothingQueued) {
  run([] {
    Mutex m;
    Cond c(m);
    EXPECT_THROW(c.wait(), Panic);
    // Had the failed wait stayed queued, this signal would be spent on it.
    Chan<Unit> awake(1);
    goro::go([&, awake]() mutable {
      std::unique_lock<Mutex> l(m);
      c.wait();
      awake.send(Unit{});
    });
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", 1));
    c.signal();
    awake.recv();
  });
}

// A bounded queue: producers and consumers, goroutines and plain threads,
// coordinated by two Conds on one Mutex.
TEST_P(CondTest, ProducersAndConsumersOnGoroutinesAndThreads) {
  const std::int64_t per_producer = scaled(5'000);
  run([per_producer] {
    Mutex m;
    Cond not_empty(m), not_full(m);
    std::deque<std::int64_t> queue;  // guarded by m
    constexpr std::size_t kCapacity = 8;
    constexpr int kProducers = 3, kConsumers = 3;
    std::atomic<std::int64_t> sum{0};
    std::int64_t consumed = 0;  // guarded by m
    const std::int64_t total = kProducers * per_producer;
    goro::WaitGroup wg;
    wg.add(kProducers + kConsumers);
    auto produce = [&] {
      for (std::int64_t i = 1; i <= per_producer; ++i) {
        std::unique_lock<Mutex> l(m);
        while (queue.size() == kCapacity) not_full.wait();
        queue.push_back(i);
        not_empty.signal();
      }
      wg.done();
    };
    auto consume = [&] {
      for (;;) {
        std::unique_lock<Mutex> l(m);
        while (queue.empty() && consumed < total) not_empty.wait();
        if (consumed == total) {
          not_empty.broadcast();  // let the other consumers see the end
          break;
        }
        sum.fetch_add(queue.front());
        queue.pop_front();
        ++consumed;
        not_full.signal();
        if (consumed == total) not_empty.broadcast();
      }
      wg.done();
    };
    std::thread producer_thread(produce), consumer_thread(consume);
    for (int i = 1; i < kProducers; ++i) goro::go(produce);
    for (int i = 1; i < kConsumers; ++i) goro::go(consume);
    wg.wait();
    producer_thread.join();
    consumer_thread.join();
    EXPECT_EQ(sum.load(), kProducers * per_producer * (per_producer + 1) / 2);
  });
}

// Waiters unwound by run()'s teardown (one of them already picked by a
// signal) leave the Cond with nobody queued and the Mutex free.
TEST_P(CondTest, TeardownLeavesTheCondAndItsMutexConsistent) {
  Mutex m;
  Cond c(m);
  Chan<Unit> never(0);
  constexpr int kWaiters = 4;
  const std::int64_t unwound = sync_test::run_and_unwind(procs(), [&] {
    for (int i = 0; i < kWaiters; ++i) {
      goro::go([&] {
        std::unique_lock<Mutex> l(m);
        c.wait();
        l.unlock();
        never.recv();  // a woken one parks here
      });
    }
    ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", kWaiters));
    // With 1 P the signalled waiter has not run yet when main returns: it is
    // unwound out of wait() after the signal picked it, and hands the signal
    // on. With more Ps it may have woken and parked in recv().
    c.signal();
  });
  EXPECT_EQ(unwound, kWaiters);
  goro::run(
      [&] {
        EXPECT_TRUE(m.try_lock()) << "mutex not free after teardown";
        m.unlock();
        Chan<Unit> awake(1);
        goro::go([&, awake]() mutable {
          std::unique_lock<Mutex> l(m);
          c.wait();
          awake.send(Unit{});
        });
        ASSERT_TRUE(wait_for_waiters("sync.Cond.Wait", 1));
        EXPECT_EQ(waiting_on("sync.Cond.Wait"), 1);
        c.signal();  // reaches the new waiter: nobody stale is queued
        awake.recv();
      },
      goro::Options{.procs = procs()});
}

}  // namespace
