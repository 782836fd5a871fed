// Tests of cooperative preemption: sysmon flags a goroutine that has run for
// 10 ms; it yields at its next runtime call. A loop with no runtime call
// cannot be preempted and is counted as a hog.
#include <atomic>
#include <chrono>

#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class PreemptTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(PreemptTest);

// busy_loop makes runtime calls (non-blocking channel operations, which are
// preemption points) until stop is set or 2 s pass; true if stopped.
bool busy_loop(const std::atomic<bool>& stop) {
  goro::Chan<int> ch(1);
  const auto deadline = Clock::now() + 2s;
  while (!stop.load() && Clock::now() < deadline) {
    ch.try_send(1);
    (void)ch.try_recv();
  }
  return stop.load();
}

TEST_P(PreemptTest, ABusyGoroutineYieldsAtItsNextRuntimeCall) {
  // Every P runs a busy goroutine; the last one to start spawns one more
  // goroutine, which lands in its P's runnext. Nothing can run it unless a
  // busy goroutine is preempted (flagged after 10 ms, yielding at its next
  // channel operation), long before the busy ones give up (2 s).
  run([&] {
    std::atomic<bool> other_ran{false};
    std::atomic<int> running{0}, saw_it{0};
    goro::WaitGroup wg;
    wg.add(procs() + 1);
    for (int i = 0; i < procs(); ++i) {
      goro::go([&] {
        if (running.fetch_add(1) + 1 == procs()) {
          goro::go([&] {
            other_ran = true;
            wg.done();
          });
        }
        if (busy_loop(other_ran)) saw_it.fetch_add(1);
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(saw_it.load(), procs()) << "the extra goroutine only ran after the busy ones gave up";
    EXPECT_GT(goro::sched_stats().preempt_requests, 0u);
  });
}

TEST_P(PreemptTest, PreemptionRequestsAreCounted) {
  if (procs() != 1) GTEST_SKIP() << "one P keeps the accounting simple";
  run([] {
    const auto before = goro::sched_stats().preempt_requests;
    goro::WaitGroup wg;
    wg.add(2);
    std::atomic<bool> stop{false};
    goro::go([&] {
      goro::go([&] {  // queued behind us: runs only once we are preempted
        stop = true;
        wg.done();
      });
      EXPECT_TRUE(busy_loop(stop));
      wg.done();
    });
    wg.wait();
    EXPECT_GT(goro::sched_stats().preempt_requests, before);
  });
}

TEST_P(PreemptTest, ACpuLoopWithoutRuntimeCallsIsCountedAsAHog) {
  if (procs() != 1) GTEST_SKIP() << "one P keeps the accounting simple";
  run([] {
    const auto hogs_before = goro::sched_stats().hogs;
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      // 60 ms of pure computation: no runtime call, so it cannot yield.
      volatile std::uint64_t x = 1;
      const auto until = Clock::now() + 60ms;
      while (Clock::now() < until) {
        for (int i = 0; i < 1000; ++i) x = x * 6364136223846793005ULL + 1;
      }
      wg.done();
    });
    wg.wait();
    EXPECT_GT(goro::sched_stats().hogs, hogs_before);
  });
}

}  // namespace
