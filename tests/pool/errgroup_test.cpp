// Tests of ErrGroup (golang.org/x/sync/errgroup semantics): the first
// exception wins and cancels the context, siblings observe it, wait()
// cancels the context either way, set_limit bounds concurrency (measured
// with an atomic high-water mark), TryGo, plain threads.
#include <algorithm>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "pool_test_util.hpp"

namespace {

using goro::Chan;
using goro::ContextError;
using goro::ErrGroup;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using pool_test::HighWater;

class ErrGroupTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(ErrGroupTest);

std::string what(const std::exception_ptr& e) {
  if (e == nullptr) return "<null>";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "<non-std exception>";
  }
}

TEST_P(ErrGroupTest, WaitReturnsNullWhenNothingFailsAndCancelsTheContext) {
  run([] {
    ErrGroup g;
    std::atomic<int> ran{0};
    for (int i = 0; i < 20; ++i) g.go([&] { ran.fetch_add(1); });
    EXPECT_EQ(g.context().err(), ContextError::none);
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_EQ(ran.load(), 20);
    // x/sync: the context is cancelled when Wait returns, failure or not.
    EXPECT_EQ(g.context().err(), ContextError::canceled);
    EXPECT_TRUE(g.context().done().closed());
  });
}

TEST_P(ErrGroupTest, FirstExceptionWinsCancelsTheContextAndSiblingsObserveIt) {
  run([] {
    ErrGroup g;
    const goro::Context ctx = g.context();
    constexpr int kSiblings = 8;
    std::atomic<int> observed{0};
    for (int i = 0; i < kSiblings; ++i) {
      g.go([&observed, ctx] {
        // A sibling runs until the group's context says stop.
        ctx.done().recv();
        observed.fetch_add(1);
        throw std::runtime_error("sibling stopped");  // later errors are dropped
      });
    }
    g.go([] { throw std::runtime_error("first"); });
    const std::exception_ptr err = g.wait();
    EXPECT_EQ(what(err), "first");
    EXPECT_EQ(observed.load(), kSiblings);
    EXPECT_EQ(ctx.err(), ContextError::canceled);
  });
}

TEST_P(ErrGroupTest, TheEarliestFailureInTimeIsTheOneReported) {
  run([] {
    for (int round = 0; round < 20; ++round) {
      ErrGroup g;
      const goro::Context ctx = g.context();
      Chan<Unit> go_first(0);
      // "second" can only throw after "first" has cancelled the context.
      g.go([ctx] {
        ctx.done().recv();
        throw std::runtime_error("second");
      });
      g.go([go_first] {
        go_first.recv();
        throw std::runtime_error("first");
      });
      go_first.close();
      EXPECT_EQ(what(g.wait()), "first");
    }
  });
}

TEST_P(ErrGroupTest, ExceptionsOfAnyTypeAreCaptured) {
  run([] {
    ErrGroup g;
    g.go([] { throw 42; });
    const std::exception_ptr err = g.wait();
    ASSERT_NE(err, nullptr);
    try {
      std::rethrow_exception(err);
    } catch (int v) {
      EXPECT_EQ(v, 42);
    }
  });
}

TEST_P(ErrGroupTest, ParentCancellationReachesTheGroup) {
  run([] {
    auto [parent, cancel] = goro::with_cancel(goro::background());
    ErrGroup g(parent);
    std::atomic<bool> saw{false};
    const goro::Context ctx = g.context();
    g.go([&saw, ctx] {
      ctx.done().recv();
      saw = true;
    });
    cancel();
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_TRUE(saw.load());
  });
}

TEST_P(ErrGroupTest, SetLimitIsNeverExceeded) {
  run([] {
    constexpr int kLimit = 3;
    const int tasks = static_cast<int>(std::max<std::int64_t>(scaled(60), 10));  // > kLimit at any scale
    ErrGroup g;
    g.set_limit(kLimit);
    HighWater running;
    Chan<Unit> gate(0);
    std::atomic<std::uint64_t> spawner{0};
    goro::WaitGroup spawned;
    spawned.add(1);
    goro::go([&] {
      spawner = goro::goroutine_id();
      for (int i = 0; i < tasks; ++i) {
        g.go([&running, gate] {
          running.enter();
          gate.recv();  // held until the gate closes, then straight through
          goro::yield();
          running.leave();
        });
      }
      spawned.done();
    });
    // kLimit goroutines run; the spawner is parked in go() at the limit.
    EXPECT_TRUE(wait_until([&] {
      return running.current() == kLimit && spawner != 0 && pool_test::parked(spawner, "chan send");
    }));
    EXPECT_EQ(running.current(), kLimit);
    gate.close();
    spawned.wait();
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_EQ(running.current(), 0);
    EXPECT_EQ(running.max(), kLimit) << "more than the limit ran at once";
  });
}

TEST_P(ErrGroupTest, SetLimitWhileGoroutinesAreActivePanicsWithXSyncsText) {
  run([] {
    ErrGroup g;
    Chan<Unit> gate(0);
    g.go([gate] { gate.recv(); });
    g.go([gate] { gate.recv(); });
    try {
      g.set_limit(4);
      ADD_FAILURE() << "no panic";
    } catch (const goro::Panic& p) {
      EXPECT_STREQ(p.what(), "errgroup: modify limit while 2 goroutines in the group are still active");
    }
    gate.close();
    EXPECT_EQ(g.wait(), nullptr);
    g.set_limit(4);  // fine once they are done
    g.set_limit(-1);
  });
}

TEST_P(ErrGroupTest, TryGoRespectsTheLimit) {
  run([] {
    ErrGroup g;
    g.set_limit(1);
    Chan<Unit> gate(0);
    EXPECT_TRUE(g.try_go([gate] { gate.recv(); }));
    std::atomic<bool> ran{false};
    EXPECT_FALSE(g.try_go([&ran] { ran = true; }));
    gate.close();
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_FALSE(ran.load());
    EXPECT_TRUE(g.try_go([&ran] { ran = true; }));
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_TRUE(ran.load());
    g.set_limit(0);  // as in Go: nothing can start
    EXPECT_FALSE(g.try_go([] {}));
    g.set_limit(-1);  // no limit
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(g.try_go([] {}));
    EXPECT_EQ(g.wait(), nullptr);
  });
}

TEST_P(ErrGroupTest, GroupIsReusableAfterWaitAndKeepsItsFirstError) {
  run([] {
    ErrGroup g;
    g.go([] { throw std::runtime_error("round 1"); });
    EXPECT_EQ(what(g.wait()), "round 1");
    std::atomic<int> ran{0};
    g.go([&] { ran.fetch_add(1); });
    g.go([] { throw std::runtime_error("round 2"); });
    EXPECT_EQ(what(g.wait()), "round 1");
    EXPECT_EQ(ran.load(), 1);
  });
}

TEST_P(ErrGroupTest, DestructorWaitsForTheGroup) {
  run([] {
    std::atomic<int> finished{0};
    Chan<Unit> gate(0);
    {
      ErrGroup g;
      for (int i = 0; i < 8; ++i) {
        g.go([&finished, gate] {
          gate.recv();
          finished.fetch_add(1);
        });
      }
      gate.close();
    }
    EXPECT_EQ(finished.load(), 8);
  });
}

TEST_P(ErrGroupTest, PlainThreadsStartAndWait) {
  run([] {
    ErrGroup g;
    std::atomic<int> ran{0};
    std::exception_ptr err;
    std::thread t([&] {
      for (int i = 0; i < 16; ++i) g.go([&ran] { ran.fetch_add(1); });
      g.go([] { throw std::runtime_error("from a thread's group"); });
      err = g.wait();
    });
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(ran.load(), 16);
    EXPECT_EQ(what(err), "from a thread's group");
  });
}

TEST_P(ErrGroupTest, AGoroutineOfTheGroupCanStartMore) {
  run([] {
    ErrGroup g;
    std::atomic<int> leaves{0};
    // A tree: each node starts two children until depth 5 (x/sync allows
    // Go from inside the group).
    std::function<void(int)> node = [&](int depth) {
      if (depth == 5) {
        leaves.fetch_add(1);
        return;
      }
      g.go([&node, depth] { node(depth + 1); });
      g.go([&node, depth] { node(depth + 1); });
    };
    g.go([&node] { node(0); });
    EXPECT_EQ(g.wait(), nullptr);
    EXPECT_EQ(leaves.load(), 32);
  });
}

}  // namespace
