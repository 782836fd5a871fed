// Tests of goroutine stacks: sizes, reuse, and memory going back to the OS.
#include <fstream>
#include <string>

#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class StackTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(StackTest);

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// use_stack touches about `bytes` of stack through recursion.
__attribute__((noinline)) int use_stack(int bytes) {
  volatile char frame[512];
  frame[0] = static_cast<char>(bytes);
  if (bytes <= 512) return frame[0];
  return use_stack(bytes - 512) + frame[0] - frame[0];
}

TEST_P(StackTest, DefaultStackHoldsFortyEightKilobytesOfFrames) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "sanitizers enlarge frames";
  run([] {
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      use_stack(48 * 1024);
      wg.done();
    });
    wg.wait();
  });
}

TEST_P(StackTest, LargerStacksCanBeConfigured) {
  run(
      [] {
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          use_stack(400 * 1024);
          wg.done();
        });
        wg.wait();
      },
      1 << 20);
}

TEST_P(StackTest, ExitedGoroutinesStacksAreReused) {
  run([] {
    for (int round = 0; round < 20; ++round) {
      goro::WaitGroup wg;
      wg.add(1000);
      for (int i = 0; i < 1000; ++i) goro::go([&] { wg.done(); });
      wg.wait();
    }
    // 20,000 goroutines ran, at most ~1,000 at a time: the records (stack
    // slots) in existence stay near the peak, not the total.
    EXPECT_LT(goro::sched_stats().stacks_in_use, 5000);
  });
}

TEST_P(StackTest, MemoryGoesBackToTheOsAfterABurst) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "sanitizers keep their own shadow memory";
  const std::int64_t n = scaled(100'000);
  run([n] {
    const long before = rss_kb();
    goro::Chan<goro::Unit> gate(0);
    goro::WaitGroup started, exited;
    started.add(n);
    exited.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&, gate]() mutable {
        started.done();
        gate.recv();
        exited.done();
      });
    }
    started.wait();
    const long peak = rss_kb();
    ASSERT_GT(peak - before, n * 3 / 1024) << "each parked goroutine should hold at least a few KiB";
    gate.close();
    exited.wait();
    // The scavenger returns long-unused stacks; RSS falls back near where it was.
    EXPECT_TRUE(wait_until([&] { return rss_kb() < before + (peak - before) / 5; }, std::chrono::seconds(20)))
        << "RSS before " << before << " KiB, parked " << peak << " KiB, now " << rss_kb() << " KiB";
  });
}

}  // namespace
