// Tests of after(), Timer and Ticker (Go's time package semantics, Go 1.23).
#include <atomic>
#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "goro_test.hpp"

namespace {

using goro::Chan;
using goro::TimePoint;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TimeTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(TimeTest);

TEST_P(TimeTest, AfterDeliversTheTimeOnceAfterTheDuration) {
  run([] {
    const auto t0 = Clock::now();
    Chan<TimePoint> c = goro::after(3ms);
    const auto v = c.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(*v - t0, 3ms);
    EXPECT_GE(Clock::now() - t0, 3ms);
    EXPECT_FALSE(c.try_recv().has_value()) << "fires once";
  });
}

TEST_P(TimeTest, AfterZeroOrNegativeFiresAtOnce) {
  run([] {
    EXPECT_TRUE(goro::after(0ns).try_recv().has_value());
    EXPECT_TRUE(goro::after(-1s).try_recv().has_value());
  });
}

TEST_P(TimeTest, AfterMaxNeverFires) {
  run([] {
    Chan<TimePoint> never = goro::after(std::chrono::nanoseconds::max());
    const auto i = goro::select(goro::on_recv(never), goro::on_recv(goro::after(5ms)));
    EXPECT_EQ(i, 1u);
  });
}

TEST_P(TimeTest, TimerStoppedBeforeFiringNeverDelivers) {
  run([] {
    goro::Timer t(20ms);
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.stop()) << "already stopped";
    const auto i = goro::select(goro::on_recv(t.c), goro::on_recv(goro::after(40ms)));
    EXPECT_EQ(i, 1u);
  });
}

TEST_P(TimeTest, StopDiscardsAFiredButUnreceivedValue) {
  // Go 1.23: no stale value after Stop, and a timer whose value was not
  // received counts as active.
  run([] {
    goro::Timer t(1ms);
    ASSERT_TRUE(wait_until([&] { return t.c.size() == 1; }));
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.c.try_recv().has_value());
  });
}

TEST_P(TimeTest, StopAfterTheValueWasReceivedReturnsFalse) {
  run([] {
    goro::Timer t(1ms);
    EXPECT_TRUE(t.c.recv().has_value());
    EXPECT_FALSE(t.stop());
  });
}

TEST_P(TimeTest, ResetRearmsAndDropsAStaleValue) {
  run([] {
    goro::Timer t(1ms);
    ASSERT_TRUE(wait_until([&] { return t.c.size() == 1; }));
    const auto t0 = Clock::now();
    EXPECT_TRUE(t.reset(10ms));
    EXPECT_FALSE(t.c.try_recv().has_value()) << "stale value from before reset";
    const auto v = t.c.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(*v - t0, 10ms);
    EXPECT_FALSE(t.reset(1ms)) << "fired and received: inactive";
    EXPECT_TRUE(t.c.recv().has_value());
  });
}

TEST_P(TimeTest, ATimerOfMaxDurationIsActiveButNeverFires) {
  // Go: NewTimer(maxDuration).Stop() is true: the timer is pending, it is
  // just never due. Likewise after Reset(maxDuration).
  run([] {
    constexpr auto kMax = std::chrono::nanoseconds::max();
    goro::Timer t(kMax);
    EXPECT_EQ(goro::select(goro::on_recv(t.c), goro::on_recv(goro::after(5ms))), 1u) << "it fired";
    EXPECT_TRUE(t.stop()) << "a timer of max duration is active";
    EXPECT_FALSE(t.stop()) << "already stopped";
    EXPECT_FALSE(t.reset(kMax)) << "was stopped";
    EXPECT_TRUE(t.reset(1ms)) << "reset(max) left it active";
    EXPECT_TRUE(t.c.recv().has_value()) << "reset from max to 1ms fires";
    EXPECT_FALSE(t.reset(kMax)) << "fired and received: inactive";
    EXPECT_EQ(goro::select(goro::on_recv(t.c), goro::on_recv(goro::after(5ms))), 1u) << "it fired";
    EXPECT_TRUE(t.stop());
  });
}

TEST_P(TimeTest, ATickerOfMaxPeriodNeverTicks) {
  run([] {
    constexpr auto kMax = std::chrono::nanoseconds::max();
    goro::Ticker tick(kMax);
    EXPECT_EQ(goro::select(goro::on_recv(tick.c), goro::on_recv(goro::after(5ms))), 1u) << "it ticked";
    tick.reset(1ms);
    EXPECT_TRUE(tick.c.recv().has_value());
    tick.reset(kMax);
    EXPECT_EQ(goro::select(goro::on_recv(tick.c), goro::on_recv(goro::after(5ms))), 1u) << "it ticked";
    tick.stop();
  });
}

TEST_P(TimeTest, TickerTicksUntilStopped) {
  run([] {
    goro::Ticker tick(1ms);
    TimePoint last{};
    for (int i = 0; i < 5; ++i) {
      const auto v = tick.c.recv();
      ASSERT_TRUE(v.has_value());
      EXPECT_GT(*v, last);
      last = *v;
    }
    tick.stop();
    EXPECT_FALSE(tick.c.try_recv().has_value()) << "no stale tick after stop";
    const auto i = goro::select(goro::on_recv(tick.c), goro::on_recv(goro::after(10ms)));
    EXPECT_EQ(i, 1u) << "no tick after stop";
  });
}

TEST_P(TimeTest, TickerDropsTicksForASlowReceiver) {
  run([] {
    goro::Ticker tick(1ms);
    goro::sleep_for(30ms);  // ~30 ticks go by unreceived
    EXPECT_LE(tick.c.size(), 1u) << "ticks do not queue up";
    EXPECT_TRUE(tick.c.recv().has_value());
  });
}

TEST_P(TimeTest, TickerResetChangesThePeriod) {
  run([] {
    goro::Ticker tick(1h);
    tick.reset(1ms);
    EXPECT_TRUE(tick.c.recv().has_value());
    tick.stop();
  });
}

TEST_P(TimeTest, NonPositiveTickerIntervalsPanic) {
  run([] {
    try {
      goro::Ticker t(0ns);
      FAIL() << "no panic";
    } catch (const goro::Panic& p) {
      EXPECT_STREQ(p.what(), "non-positive interval for NewTicker");
    }
    goro::Ticker t(1ms);
    try {
      t.reset(-1ms);
      FAIL() << "no panic";
    } catch (const goro::Panic& p) {
      EXPECT_STREQ(p.what(), "non-positive interval for Ticker.Reset");
    }
  });
}

TEST_P(TimeTest, ManyTimersFireInDeadlineOrder) {
  run([] {
    constexpr int n = 50;
    std::vector<Chan<goro::TimePoint>> timers;
    // Armed in reverse deadline order, from one goroutine.
    for (int i = n - 1; i >= 0; --i) timers.push_back(goro::after(std::chrono::milliseconds(2 * i)));
    std::reverse(timers.begin(), timers.end());
    // Each channel holds the time its timer fired (Go's time.After): the
    // firing order is what is checked, not how fast receivers get scheduled.
    // An OS thread descheduled between taking a timer and stamping it
    // (8 Ps on 2 cores) may swap a neighbouring pair, as in Go; a wrong
    // order (reversed: 49 inversions) is what must never pass.
    goro::TimePoint prev{};
    int inversions = 0;
    for (int i = 0; i < n; ++i) {
      const goro::TimePoint fired = *timers[static_cast<std::size_t>(i)].recv();
      inversions += fired < prev;
      prev = fired;
    }
    EXPECT_LE(inversions, n / 10);
  });
}

// Go 1.23 lets the collector take a timer nobody refers to; here the last
// handle of an after() channel takes its timer. The timeout idiom in a loop
// then keeps one timer pending, not one per iteration.
TEST_P(TimeTest, AnAfterChannelDroppedBeforeItFiresTakesItsTimerWithIt) {
  run([] {
    const std::int64_t before = goro::sched_stats().timers;
    Chan<int> c(0);
    constexpr int n = 1000;
    goro::go([c] {
      for (int i = 0; i < n; ++i) c.send(i);
    });
    int sum = 0;
    for (int i = 0; i < n; ++i) {
      const auto k = goro::select(goro::on_recv(c, [&](std::optional<int> v) { sum += *v; }),
                                  goro::on_recv(goro::after(1h)));
      ASSERT_EQ(k, 0u);
    }
    EXPECT_EQ(sum, n * (n - 1) / 2);
    EXPECT_EQ(goro::sched_stats().timers, before);
  });
}

TEST_P(TimeTest, ACopyOfAnAfterChannelKeepsItsTimer) {
  run([] {
    Chan<TimePoint> kept;
    {
      Chan<TimePoint> c = goro::after(2ms);
      kept = c;
    }  // the first handle goes; the copy still receives
    EXPECT_TRUE(kept.recv().has_value());
    Chan<TimePoint> moved = goro::after(1ms);
    Chan<TimePoint> to(std::move(moved));
    EXPECT_TRUE(to.recv().has_value());
  });
}

// Handles dropped while their timers fire, on every P and on plain threads:
// whichever side comes second frees the block, exactly once (ASan and TSan
// builds check the rest), and no timer stays behind.
TEST_P(TimeTest, AfterChannelsDroppedWhileTheirTimersFire) {
  const std::int64_t rounds = scaled(20'000);
  run([rounds] {
    constexpr int kGoroutines = 8, kThreads = 2;
    std::atomic<std::int64_t> received{0};
    const auto churn = [&received, rounds](unsigned seed) {
      std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
      for (std::int64_t i = 0; i < rounds; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Chan<TimePoint> a = goro::after(std::chrono::nanoseconds(x % 20'000));
        switch (x % 5) {
          case 0:
            received.fetch_add(a.recv().has_value());
            break;
          case 1:
            received.fetch_add(a.try_recv().has_value());
            break;
          case 2: {
            Chan<TimePoint> copy = a;  // two handles, dropped in turn
            a = {};
            break;
          }
          default:
            break;  // dropped at once, mostly before it fires
        }
      }
    };
    goro::WaitGroup wg;
    wg.add(kGoroutines);
    for (int g = 0; g < kGoroutines; ++g) {
      goro::go([&, g] {
        churn(static_cast<unsigned>(g));
        wg.done();
      });
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { churn(static_cast<unsigned>(100 + t)); });
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    wg.wait();
    EXPECT_GT(received.load(), 0);
    EXPECT_TRUE(wait_until([] { return goro::sched_stats().timers == 0; }));
  });
}

TEST_P(TimeTest, TimersOutsideRunThrow) {
  EXPECT_THROW(goro::after(1ms), std::logic_error);
}

TEST_P(TimeTest, PlainThreadsReceiveFromTimers) {
  run([] {
    Chan<TimePoint> c = goro::after(2ms);
    std::thread t([c]() mutable { EXPECT_TRUE(c.recv().has_value()); });
    // join() blocks this thread: it must not hold the P the timer needs.
    goro::blocking([&] { t.join(); });
  });
}

}  // namespace
