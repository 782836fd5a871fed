// Tests of Context (ports of Go's context tests).
#include <atomic>
#include <memory>
#include <vector>

#include "goro_test.hpp"

namespace {

using goro::ContextError;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class ContextTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(ContextTest);

bool is_done(const goro::Context& ctx) {
  return goro::select(goro::on_recv(ctx.done()), goro::on_default()) == 0;
}

TEST_P(ContextTest, BackgroundIsNeverDone) {
  run([] {
    const goro::Context bg = goro::background();
    EXPECT_TRUE(bg.done().is_nil()) << "Go's Background().Done() is nil";
    EXPECT_EQ(bg.err(), ContextError::none);
    EXPECT_FALSE(bg.deadline().has_value());
    EXPECT_FALSE(is_done(bg));
    EXPECT_FALSE(is_done(goro::todo()));
  });
}

TEST_P(ContextTest, CancelClosesDoneOnceAndSetsErr) {
  run([] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    EXPECT_FALSE(is_done(ctx));
    EXPECT_EQ(ctx.err(), ContextError::none);
    cancel();
    EXPECT_TRUE(is_done(ctx));
    EXPECT_EQ(ctx.err(), ContextError::canceled);
    EXPECT_STREQ(goro::to_string(ctx.err()), "context canceled");
    cancel();  // a second cancel is harmless
    EXPECT_EQ(ctx.err(), ContextError::canceled);
    EXPECT_FALSE(ctx.done().recv().has_value()) << "done is closed, not sent on";
  });
}

TEST_P(ContextTest, CancellingAParentCancelsEveryDescendant) {
  run([] {
    auto [root, cancel_root] = goro::with_cancel(goro::background());
    auto [a, cancel_a] = goro::with_cancel(root);
    auto [b, cancel_b] = goro::with_timeout(a, 1h);
    auto [c, cancel_c] = goro::with_cancel(b);
    auto [sibling, cancel_sibling] = goro::with_cancel(root);
    cancel_root();
    for (const goro::Context* ctx : {&a, &b, &c, &sibling}) {
      EXPECT_TRUE(is_done(*ctx));
      EXPECT_EQ(ctx->err(), ContextError::canceled);
    }
    cancel_a();
    cancel_b();
    cancel_c();
    cancel_sibling();
  });
}

TEST_P(ContextTest, CancellingAChildLeavesTheParentAlone) {
  run([] {
    auto [parent, cancel_parent] = goro::with_cancel(goro::background());
    auto [child, cancel_child] = goro::with_cancel(parent);
    cancel_child();
    EXPECT_TRUE(is_done(child));
    EXPECT_FALSE(is_done(parent));
    cancel_parent();
  });
}

TEST_P(ContextTest, AChildOfACancelledParentIsBornCancelled) {
  run([] {
    auto [parent, cancel] = goro::with_cancel(goro::background());
    cancel();
    auto [child, cancel_child] = goro::with_cancel(parent);
    EXPECT_TRUE(is_done(child));
    EXPECT_EQ(child.err(), ContextError::canceled);
    cancel_child();
  });
}

TEST_P(ContextTest, TimeoutExpiresWithDeadlineExceeded) {
  run([] {
    const auto t0 = Clock::now();
    auto [ctx, cancel] = goro::with_timeout(goro::background(), 5ms);
    ASSERT_TRUE(ctx.deadline().has_value());
    EXPECT_GE(*ctx.deadline(), t0 + 5ms);
    EXPECT_FALSE(ctx.done().recv().has_value());
    EXPECT_GE(Clock::now() - t0, 5ms);
    EXPECT_EQ(ctx.err(), ContextError::deadline_exceeded);
    EXPECT_STREQ(goro::to_string(ctx.err()), "context deadline exceeded");
    cancel();  // after expiry: changes nothing
    EXPECT_EQ(ctx.err(), ContextError::deadline_exceeded);
  });
}

TEST_P(ContextTest, ADeadlineInThePastIsAlreadyExceeded) {
  run([] {
    auto [ctx, cancel] = goro::with_deadline(goro::background(), Clock::now() - 1s);
    EXPECT_TRUE(is_done(ctx));
    EXPECT_EQ(ctx.err(), ContextError::deadline_exceeded);
    cancel();
  });
}

TEST_P(ContextTest, AChildInheritsAnEarlierParentDeadline) {
  run([] {
    auto [parent, cancel_parent] = goro::with_timeout(goro::background(), 5ms);
    auto [child, cancel_child] = goro::with_timeout(parent, 1h);
    ASSERT_TRUE(child.deadline().has_value());
    EXPECT_EQ(*child.deadline(), *parent.deadline());
    EXPECT_FALSE(child.done().recv().has_value());
    EXPECT_EQ(child.err(), ContextError::deadline_exceeded);
    // A child with an earlier deadline keeps its own.
    auto [late_parent, cancel_late] = goro::with_timeout(goro::background(), 1h);
    auto [early_child, cancel_early] = goro::with_timeout(late_parent, 1ms);
    EXPECT_LT(*early_child.deadline(), *late_parent.deadline());
    cancel_parent();
    cancel_child();
    cancel_late();
    cancel_early();
  });
}

TEST_P(ContextTest, AChildReleasesItsResourcesWhenItsOwnCancelRuns) {
  run([] {
    auto [parent, cancel_parent] = goro::with_cancel(goro::background());
    std::weak_ptr<goro::detail::ContextState> watch;
    {
      auto [child, cancel_child] = goro::with_timeout(parent, 1h);
      watch = child.state();
      cancel_child();
    }
    EXPECT_TRUE(watch.expired()) << "the parent still holds a cancelled child";
    EXPECT_FALSE(is_done(parent));
    cancel_parent();
  });
}

TEST_P(ContextTest, CancelWakesEveryGoroutineWaitingOnDone) {
  const int n = static_cast<int>(scaled(1000));
  run([n] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    goro::WaitGroup wg;
    wg.add(n);
    std::atomic<int> woke{0};
    goro::Chan<int> never(0);
    for (int i = 0; i < n; ++i) {
      goro::go([&, ctx = ctx, never] {
        goro::select(goro::on_recv(ctx.done(), [&](auto) { woke.fetch_add(1); }), goro::on_recv(never));
        wg.done();
      });
    }
    cancel();
    wg.wait();
    EXPECT_EQ(woke.load(), n);
  });
}

TEST_P(ContextTest, ConcurrentCancelsCloseDoneExactlyOnce) {
  const int rounds = static_cast<int>(scaled(500));
  run([rounds] {
    for (int r = 0; r < rounds; ++r) {
      auto [ctx, cancel] = goro::with_cancel(goro::background());
      goro::WaitGroup wg;
      wg.add(4);
      for (int k = 0; k < 4; ++k) {
        goro::go([&, cancel = cancel] {
          cancel();  // a double close would panic
          wg.done();
        });
      }
      wg.wait();
      EXPECT_EQ(ctx.err(), ContextError::canceled);
    }
  });
}

}  // namespace
