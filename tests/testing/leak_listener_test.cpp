// A test binary with every test leak-checked by goro::testing's listener,
// run by CTest as a whole. Built three ways (tests/testing/CMakeLists.txt):
//   leak_listener_test         GORO_TEST_MAIN_WITH_LEAK_CHECK(), clean tests
//                              only: must pass, exit 0.
//   leak_listener_leaky_test   the same plus GORO_LEAKY_TEST: the Leaky test
//                              leaves a goroutine behind in its run(), so it
//                              must fail with the report, the others pass,
//                              and the binary exit non-zero.
//   leak_listener_in_run_test  GORO_LISTENER_IN_RUN: RUN_ALL_TESTS() is
//                              goroutine 1 of one run(), so the listener
//                              waits for live goroutines; leaky as above.
// expect_leak_report.cmake checks the leaky runs; each leaky test prints
// where its leak is, so the check can find it in the report.
#include <chrono>
#include <cstdio>

#include "goro/goro.hpp"
#include "goro/testing.hpp"

// blocked_receiving is where the leaked goroutines wait: the report must
// show it, and the line of the receive (this binary is built with -g).
[[maybe_unused]] constexpr int kBlockedLine = __LINE__ + 3;  // the leaky builds print it
__attribute__((noinline)) void blocked_receiving(goro::Chan<int> never) {
  asm volatile("");
  const int v = never.recv().value_or(0);
  asm volatile("" ::"r"(v));
}

namespace {

using namespace std::chrono_literals;

#ifdef GORO_LISTENER_IN_RUN

TEST(Listener, GoroutinesThatEndWithinTheGracePeriodAreNotLeaks) {
  goro::go([] { goro::sleep_for(30ms); });
}

#ifdef GORO_LEAKY_TEST
TEST(Listener, LeakyTestLeavesAReceiverBlocked) {
  goro::Chan<int> never(0);
  goro::Chan<std::uint64_t> ids(1);
  const int line = __LINE__ + 1;
  goro::go([never, ids] {
    ids.send(goro::goroutine_id());
    blocked_receiving(never);
  });
  std::printf("leak: goroutine %llu at leak_listener_test.cpp:%d blocked at leak_listener_test.cpp:%d\n",
              static_cast<unsigned long long>(*ids.recv()), line, kBlockedLine);
}
#endif

TEST(Listener, ALaterTestIsNotBlamedForAnEarlierLeak) {
  goro::WaitGroup wg;
  wg.add(1);
  goro::go([&wg] { wg.done(); });
  wg.wait();
}

#else  // one run() per test

TEST(Listener, RunWaitsForItsGoroutines) {
  goro::run([] {
    goro::WaitGroup wg;
    for (int i = 0; i < 4; ++i) {
      wg.add(1);
      goro::go([&wg] {
        goro::sleep_for(1ms);
        wg.done();
      });
    }
    wg.wait();
  });
}

#ifdef GORO_LEAKY_TEST
TEST(Listener, LeakyTestLeavesAReceiverBlocked) {
  goro::run([] {
    goro::Chan<int> never(0);
    goro::Chan<std::uint64_t> ids(1);
    const int line = __LINE__ + 1;
    goro::go([never, ids] {
      ids.send(goro::goroutine_id());
      blocked_receiving(never);
    });
    std::printf("leak: goroutine %llu at leak_listener_test.cpp:%d blocked at leak_listener_test.cpp:%d\n",
                static_cast<unsigned long long>(*ids.recv()), line, kBlockedLine);
    // Let it park, so the report says what it waits for.
    while (goro::goroutines().size() > 1 && goro::goroutines().back().state != goro::GoroutineState::waiting) {
      goro::yield();
    }
  });
}
#endif

TEST(Listener, ALaterTestIsNotBlamedForAnEarlierLeak) {
  goro::run([] {
    goro::Chan<int> c(0);
    goro::go([c] { c.send(1); });
    (void)c.recv();
    while (goro::num_goroutine() > 1) goro::yield();
  });
}

#endif

}  // namespace

#ifdef GORO_LISTENER_IN_RUN
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  goro::testing::install_leak_check(500ms);
  return goro::run([] { return RUN_ALL_TESTS(); }, goro::Options{.procs = 2});
}
#else
GORO_TEST_MAIN_WITH_LEAK_CHECK()
#endif
