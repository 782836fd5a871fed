// Tests of Future<T>: values, exceptions, repeated and concurrent get(),
// timed waits, plain threads, and the happens-before edge from a job's
// completion to get().
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "pool_test_util.hpp"

namespace {

using goro::Chan;
using goro::Future;
using goro::Unit;
using goro::WorkerPool;
using goro_test::RuntimeTest;
using goro_test::wait_until;
using namespace std::chrono_literals;

class FutureTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(FutureTest);

TEST_P(FutureTest, GetReturnsTheJobsValue) {
  run([] {
    WorkerPool pool(2);
    Future<int> i = pool.submit([] { return 6 * 7; });
    Future<std::string> s = pool.submit([] { return std::string("gopher"); });
    std::atomic<bool> ran{false};
    Future<void> v = pool.submit([&] { ran = true; });
    EXPECT_EQ(i.get(), 42);
    EXPECT_EQ(s.get(), "gopher");
    v.get();
    EXPECT_TRUE(ran.load());
    EXPECT_TRUE(i.ready() && s.ready() && v.ready());
  });
}

TEST_P(FutureTest, GetRethrowsTheJobsExceptionEveryTime) {
  run([] {
    WorkerPool pool(1);
    Future<int> std_error = pool.submit([]() -> int { throw std::runtime_error("boom"); });
    Future<void> non_std = pool.submit([] { throw 7; });
    Future<void> panic = pool.submit([] { throw goro::Panic("send on closed channel"); });
    for (int round = 0; round < 3; ++round) {
      try {
        std_error.get();
        ADD_FAILURE() << "no exception";
      } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "boom");
      }
      try {
        non_std.get();
        ADD_FAILURE() << "no exception";
      } catch (int v) {
        EXPECT_EQ(v, 7);
      }
      EXPECT_THROW(panic.get(), goro::Panic);
    }
  });
}

TEST_P(FutureTest, CopiesShareOneResult) {
  run([] {
    WorkerPool pool(1);
    Future<int> a = pool.submit([] { return 5; });
    Future<int> b = a;
    Future<int> c;
    c = b;
    Future<int> d = std::move(c);
    EXPECT_FALSE(c.valid());
    EXPECT_EQ(a.get(), 5);
    EXPECT_EQ(b.get(), 5);
    EXPECT_EQ(d.get(), 5);
    EXPECT_EQ(a.get(), 5);
  });
}

TEST_P(FutureTest, MoveOnlyValueIsTakenOnce) {
  run([] {
    WorkerPool pool(1);
    Future<std::unique_ptr<int>> f = pool.submit([] { return std::make_unique<int>(9); });
    Future<std::unique_ptr<int>> g = f;
    std::unique_ptr<int> p = f.get();
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 9);
    try {
      g.get();
      ADD_FAILURE() << "a second get() of a move-only value succeeded";
    } catch (const goro::Panic& e) {
      EXPECT_STREQ(e.what(), "goro: Future value already taken");
    }
  });
}

TEST_P(FutureTest, DefaultConstructedFutureHasNoState) {
  run([] {
    Future<int> f;
    EXPECT_FALSE(f.valid());
    EXPECT_FALSE(f.ready());
    try {
      f.get();
      ADD_FAILURE() << "get() on an empty Future returned";
    } catch (const goro::Panic& e) {
      EXPECT_STREQ(e.what(), "goro: Future has no state");
    }
  });
}

TEST_P(FutureTest, ReadyAndWaitForStayFalseUntilTheJobFinishes) {
  run([] {
    WorkerPool pool(1);
    Chan<Unit> gate(0);
    Chan<Unit> started(1);
    Future<int> f = pool.submit([gate, started] {
      started.send(Unit{});
      gate.recv();  // until closed
      return 1;
    });
    started.recv();
    EXPECT_FALSE(f.ready());
    // The job cannot finish before the gate closes, whatever the timing.
    EXPECT_FALSE(f.wait_for(0ns));
    EXPECT_FALSE(f.wait_for(-5ms));
    EXPECT_FALSE(f.wait_for(1ms));
    EXPECT_FALSE(f.wait_until(std::chrono::steady_clock::now() + 1ms));
    gate.close();
    EXPECT_TRUE(f.wait_for(std::chrono::nanoseconds::max()));
    EXPECT_TRUE(f.ready());
    EXPECT_EQ(f.get(), 1);
    EXPECT_TRUE(f.wait_for(0ns));
  });
}

TEST_P(FutureTest, ManyParkedGettersAllWakeWithTheValue) {
  run([] {
    WorkerPool pool(1);
    Chan<Unit> gate(0);
    Future<int> f = pool.submit([gate] {
      gate.recv();
      return 11;
    });
    constexpr int kGoroutines = 32;
    constexpr int kThreads = 2;
    constexpr int kTimed = 8;
    std::atomic<int> got{0};
    goro::WaitGroup wg;
    wg.add(kGoroutines + kTimed);
    for (int i = 0; i < kGoroutines; ++i) {
      goro::go([&] {
        if (f.get() == 11) got.fetch_add(1);
        wg.done();
      });
    }
    for (int i = 0; i < kTimed; ++i) {
      goro::go([&] {
        if (f.wait_for(std::chrono::hours(1)) && f.get() == 11) got.fetch_add(1);
        wg.done();
      });
    }
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&] {
        if (f.get() == 11) got.fetch_add(1);
      });
    }
    // Every goroutine is parked in get(), with Go-style wait reason.
    EXPECT_TRUE(pool_test::wait_for_waiters("goro.Future.Get", kGoroutines + kTimed));
    EXPECT_EQ(got.load(), 0);
    gate.close();
    wg.wait();
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_EQ(got.load(), kGoroutines + kThreads + kTimed);
  });
}

TEST_P(FutureTest, TimedWaitersThatGiveUpLeaveNothingBehind) {
  run([] {
    WorkerPool pool(1);
    Chan<Unit> gate(0);
    Future<int> f = pool.submit([gate] {
      gate.recv();
      return 3;
    });
    goro::WaitGroup wg;
    constexpr int kWaiters = 16;
    wg.add(kWaiters);
    std::atomic<int> timed_out{0};
    for (int i = 0; i < kWaiters; ++i) {
      goro::go([&, i] {
        if (!f.wait_for(std::chrono::microseconds(50 * (i + 1)))) timed_out.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(timed_out.load(), kWaiters);
    // The unlinked waiters are gone: completing readies nobody stale.
    gate.close();
    EXPECT_EQ(f.get(), 3);
  });
}

TEST_P(FutureTest, PlainThreadsGetAndWaitFor) {
  run([] {
    WorkerPool pool(2);
    Chan<Unit> gate(0);
    Future<int> f = pool.submit([gate] {
      gate.recv();
      return 8;
    });
    std::atomic<int> result{0};
    std::atomic<bool> timed_out_first{false};
    std::thread t([&] {
      timed_out_first = !f.wait_for(1ms);  // the gate is still shut
      result = f.get();
    });
    EXPECT_TRUE(wait_until([&] { return timed_out_first.load(); }));
    gate.close();
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(result.load(), 8);
    // A plain thread can also submit and get.
    std::thread t2([&] { result = pool.submit([] { return 21; }).get() * 2; });
    goro::blocking([&] { t2.join(); });
    EXPECT_EQ(result.load(), 42);
  });
}

TEST_P(FutureTest, CompletionHappensBeforeGetReturns) {
  run([] {
    WorkerPool pool(4);
    // Plain (non-atomic) data written by the job and read after get(): a
    // missing happens-before edge is a data race ThreadSanitizer reports.
    constexpr int kJobs = 200;
    std::vector<std::vector<int>> out(kJobs);
    std::vector<Future<void>> futures;
    auto token = std::make_shared<int>(0);
    for (int i = 0; i < kJobs; ++i) {
      futures.push_back(pool.submit([&out, i, token] { out[i].assign(64, i); }));
    }
    for (int i = 0; i < kJobs; ++i) {
      futures[i].get();
      ASSERT_EQ(out[i].size(), 64u);
      EXPECT_EQ(out[i][63], i);
    }
    // Each job's function object (and the token it captured) is destroyed
    // before its Future becomes ready.
    EXPECT_EQ(token.use_count(), 1);
  });
}

}  // namespace
