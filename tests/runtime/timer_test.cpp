// Tests of sleeping and of the runtime's timers.
#include <atomic>
#include <thread>
#include <vector>

#include "goro/runtime_timer.hpp"
#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TimerTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(TimerTest);

TEST_P(TimerTest, SleepForSleepsAtLeastTheDuration) {
  run([] {
    for (auto d : {1ms, 5ms, 20ms}) {
      const auto t0 = Clock::now();
      goro::sleep_for(d);
      EXPECT_GE(Clock::now() - t0, d);
    }
  });
}

TEST_P(TimerTest, SleepUntilAPastTimeReturnsAtOnce) {
  run([] {
    goro::sleep_until(Clock::now() - 1s);
    goro::sleep_for(0ns);
    goro::sleep_for(-5ms);
  });
}

TEST_P(TimerTest, ManySleepersAllWakeAfterTheirDeadlines) {
  const std::int64_t n = scaled(10'000);
  run([n] {
    std::atomic<std::int64_t> early{0};
    goro::WaitGroup wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&, i] {
        const auto d = std::chrono::microseconds(100 * (i % 50));
        const auto t0 = Clock::now();
        goro::sleep_for(d);
        if (Clock::now() - t0 < d) early.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(early.load(), 0);
  });
}

TEST_P(TimerTest, SleepParksOnlyTheGoroutine) {
  // On one P as well: while one goroutine sleeps, others keep running.
  run([] {
    std::atomic<bool> sleeper_done{false};
    std::atomic<std::int64_t> ticks{0};
    goro::go([&] {
      goro::sleep_for(30ms);
      sleeper_done = true;
    });
    while (!sleeper_done) {
      ticks.fetch_add(1);
      goro::yield();
    }
    EXPECT_GT(ticks.load(), 1);
  });
}

TEST_P(TimerTest, SleepOnAPlainThreadSleepsTheThread) {
  run([] {
    std::thread t([] {
      const auto t0 = Clock::now();
      goro::sleep_for(5ms);
      EXPECT_GE(Clock::now() - t0, 5ms);
    });
    t.join();
  });
}

// As Go's time.Sleep: any positive duration parks, even one that is over
// before the timer could be armed (so sleep_for(1ns) is a scheduling
// point, and GORODEBUG=migrate=1 moves the sleeper). Counted by the parks
// statistic, which only this goroutine adds to here.
TEST_P(TimerTest, APositiveSleepAlwaysParks) {
  run([] {
    for (int i = 0; i < 100; ++i) {
      const std::uint64_t before = goro::sched_stats().parks;
      goro::sleep_for(1ns);
      EXPECT_GE(goro::sched_stats().parks, before + 1) << "round " << i;
    }
    const std::uint64_t before = goro::sched_stats().parks;
    goro::sleep_for(0ns);
    goro::sleep_for(-5ms);
    EXPECT_EQ(goro::sched_stats().parks, before) << "a zero or negative sleep returns at once";
  });
}

TEST_P(TimerTest, RuntimeTimerFiresOnceAndCanBeStoppedBeforeIt) {
  run([] {
    struct Box {
      std::atomic<int> fired{0};
      goro::Goroutine* waiter = nullptr;
      static void cb(void* self, std::int64_t) { static_cast<Box*>(self)->fired.fetch_add(1); }
    };
    Box fires, never;
    goro::RuntimeTimer t1(&Box::cb, &fires);
    goro::RuntimeTimer t2(&Box::cb, &never);
    t1.start(goro::monotonic_now_ns() + 2'000'000);
    t2.start(goro::monotonic_now_ns() + 2'000'000'000);
    EXPECT_TRUE(t2.pending());
    EXPECT_TRUE(t2.stop());
    EXPECT_FALSE(t2.pending());
    EXPECT_FALSE(t2.stop()) << "stopping twice";
    EXPECT_TRUE(wait_until([&] { return fires.fired.load() == 1; }));
    EXPECT_FALSE(t1.stop()) << "already fired";
    goro::sleep_for(5ms);
    EXPECT_EQ(fires.fired.load(), 1);
    EXPECT_EQ(never.fired.load(), 0);
    EXPECT_THROW(
        {
          t1.start(goro::monotonic_now_ns() + 1'000'000'000);
          t1.start(goro::monotonic_now_ns() + 1'000'000'000);
        },
        std::logic_error);
    t1.stop();
  });
}

TEST_P(TimerTest, PeriodicRuntimeTimerKeepsFiringUntilStopped) {
  run([] {
    std::atomic<int> fired{0};
    goro::RuntimeTimer t([](void* f, std::int64_t) { static_cast<std::atomic<int>*>(f)->fetch_add(1); }, &fired);
    t.start(goro::monotonic_now_ns() + 1'000'000, 1'000'000);
    EXPECT_TRUE(wait_until([&] { return fired.load() >= 5; }));
    EXPECT_TRUE(t.stop());
    const int after_stop = fired.load();
    goro::sleep_for(10ms);
    EXPECT_EQ(fired.load(), after_stop) << "no callback after stop() returned";
  });
}

TEST_P(TimerTest, TimersArmedFromPlainThreadsFire) {
  run([] {
    std::atomic<int> fired{0};
    goro::RuntimeTimer t([](void* f, std::int64_t) { static_cast<std::atomic<int>*>(f)->fetch_add(1); }, &fired);
    std::thread th([&] { t.start(goro::monotonic_now_ns() + 1'000'000); });
    th.join();
    EXPECT_TRUE(wait_until([&] { return fired.load() == 1; }));
  });
}

TEST_P(TimerTest, AnIdleRuntimeWakesForItsNextTimer) {
  // Every goroutine but main is parked; main sleeps. Nothing polls: the
  // timer sleeper must wake exactly for the deadline.
  run([] {
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      goro::sleep_for(2ms);
      EXPECT_GE(Clock::now() - t0, 2ms);
    }
  });
}

}  // namespace
