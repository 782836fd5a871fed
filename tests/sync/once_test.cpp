// Tests of Once (ports of Go's sync/once_test.go, plus goro's own).
#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Once;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using sync_test::wait_for_waiters;

class OnceTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(OnceTest);

// Port of TestOnce: 10 goroutines call once.call(increment); each must see
// the increment done when its call returns, and it is done only once.
TEST_P(OnceTest, CallRunsTheFunctionExactlyOnce) {
  run([] {
    for (int round = 0; round < 50; ++round) {
      Once once;
      int value = 0;  // written by f only; read after call() returns
      constexpr int kCallers = 10;
      std::atomic<int> saw_wrong{0};
      goro::WaitGroup wg;
      wg.add(kCallers);
      for (int i = 0; i < kCallers; ++i) {
        goro::go([&] {
          once.call([&] { ++value; });
          if (value != 1) saw_wrong.fetch_add(1);
          wg.done();
        });
      }
      wg.wait();
      EXPECT_EQ(value, 1);
      EXPECT_EQ(saw_wrong.load(), 0);
      EXPECT_TRUE(once.done());
    }
  });
}

// The callers that come while f runs park (on the Once's Mutex) and return
// only after f has finished.
TEST_P(OnceTest, ConcurrentCallersWaitUntilTheFunctionFinished) {
  run([] {
    Once once;
    Chan<Unit> started(0), release(0);
    std::atomic<bool> finished{false};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&, started, release]() mutable {
      once.call([&] {
        started.send(Unit{});
        release.recv();  // f parks: it may take as long as it likes
        finished = true;
      });
      wg.done();
    });
    started.recv();
    constexpr int kWaiters = 5;
    std::atomic<int> returned_early{0};
    wg.add(kWaiters);
    for (int i = 0; i < kWaiters; ++i) {
      goro::go([&] {
        once.call([] { ADD_FAILURE() << "f ran twice"; });
        if (!finished.load()) returned_early.fetch_add(1);
        wg.done();
      });
    }
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", kWaiters));
    EXPECT_FALSE(once.done());
    release.send(Unit{});
    wg.wait();
    EXPECT_EQ(returned_early.load(), 0);
  });
}

// Port of TestOncePanic: if f throws, the exception reaches its caller and
// the Once counts as done; f is not called again.
TEST_P(OnceTest, ThrowingFunctionCountsAsDone) {
  run([] {
    Once once;
    try {
      once.call([] { throw std::runtime_error("failed"); });
      FAIL() << "the exception did not reach the caller";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "failed");
    }
    EXPECT_TRUE(once.done());
    bool ran = false;
    once.call([&] { ran = true; });
    EXPECT_FALSE(ran) << "f ran again after a throwing first call";
  });
}

// The callers waiting while f throws return normally, without running f.
TEST_P(OnceTest, WaitersReturnNormallyWhenTheFunctionThrows) {
  run([] {
    Once once;
    Chan<Unit> started(0), release(0);
    std::atomic<int> exceptions{0}, reruns{0};
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&, started, release]() mutable {
      try {
        once.call([&] {
          started.send(Unit{});
          release.recv();
          throw std::logic_error("init failed");
        });
      } catch (const std::logic_error&) {
        exceptions.fetch_add(1);
      }
      wg.done();
    });
    started.recv();
    constexpr int kWaiters = 4;
    wg.add(kWaiters);
    for (int i = 0; i < kWaiters; ++i) {
      goro::go([&] {
        try {
          once.call([&] { reruns.fetch_add(1); });
        } catch (...) {
          exceptions.fetch_add(1);
        }
        wg.done();
      });
    }
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", kWaiters));
    release.send(Unit{});
    wg.wait();
    EXPECT_EQ(exceptions.load(), 1) << "only the caller that ran f sees its exception";
    EXPECT_EQ(reruns.load(), 0);
  });
}

TEST_P(OnceTest, AcceptsLvalueConstAndMoveOnlyCallables) {
  run([] {
    Once a, b, c;
    int calls = 0;
    auto f = [&] { ++calls; };
    a.call(f);
    const auto g = [&] { ++calls; };
    b.call(g);
    auto owned = std::make_unique<int>(1);
    c.call([&calls, p = std::move(owned)]() mutable { calls += *p; });
    EXPECT_EQ(calls, 3);
  });
}

TEST_P(OnceTest, PlainThreadsAndGoroutinesShareOneOnce) {
  const std::int64_t rounds = scaled(200);
  run([rounds] {
    for (std::int64_t round = 0; round < rounds; ++round) {
      Once once;
      std::atomic<int> runs{0};
      std::atomic<int> early{0};
      goro::WaitGroup wg;
      wg.add(4);
      auto caller = [&] {
        once.call([&] { runs.fetch_add(1); });
        if (runs.load() != 1) early.fetch_add(1);
        wg.done();
      };
      std::thread t1(caller), t2(caller);
      goro::go(caller);
      goro::go(caller);
      wg.wait();
      t1.join();
      t2.join();
      EXPECT_EQ(runs.load(), 1);
      EXPECT_EQ(early.load(), 0);
    }
  });
}

}  // namespace
