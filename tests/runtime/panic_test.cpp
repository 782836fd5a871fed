// Death tests: what is fatal in Go is fatal here, with Go's words.
#include <cstdlib>
#include <stdexcept>

#include "goro_test.hpp"

namespace {

using namespace std::chrono_literals;

class PanicTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void run_and_wait_forever(void (*body)()) {
  goro::run([body] {
    goro::go(body);
    goro::Chan<int> never(0);
    never.recv();
  }, goro::Options{.procs = 2});
}

TEST_F(PanicTest, AnExceptionEscapingAGoroutinePrintsPanicAndAborts) {
  EXPECT_DEATH(run_and_wait_forever([] { throw std::runtime_error("boom"); }),
               "panic: boom\n\ngoroutine [0-9]+ \\[running\\]:\n(.|\n)*\ncreated by .* in goroutine 1\n\t.*panic_test.cpp:[0-9]+");
}

TEST_F(PanicTest, APanicOfTheRuntimeUsesGosText) {
  EXPECT_DEATH(run_and_wait_forever([] {
                 goro::Chan<int> ch(1);
                 ch.close();
                 ch.send(1);
               }),
               "panic: send on closed channel");
}

TEST_F(PanicTest, ANonStandardExceptionIsNamedByItsType) {
  EXPECT_DEATH(run_and_wait_forever([] { throw 42; }), "panic: exception of type int");
}

TEST_F(PanicTest, TheDumpAfterAPanicListsTheOtherGoroutines) {
  EXPECT_DEATH(goro::run([] {
                 goro::Chan<int> never(0);
                 goro::go([never]() mutable { never.recv(); });
                 goro_test::wait_for_waiters("chan receive", 1);  // parked, as the dump must show it
                 throw std::runtime_error("main failed");
               }),
               "panic: main failed(.|\n)*goroutine [0-9]+ \\[chan receive\\]:");
}

// A depth no stack reaches; volatile so the compiler cannot see the
// recursion is (in practice) infinite.
volatile int g_depth_limit = 1 << 30;

__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth > g_depth_limit) return 0;
  return recurse(depth + 1) + frame[0];
}

TEST_F(PanicTest, AStackOverflowOnAGuardPageIsReported) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "the sanitizers report stack overflows themselves";
  EXPECT_DEATH(run_and_wait_forever([] { recurse(0); }),
               "goroutine [0-9]+ stack exceeds its 65536-byte limit \\(created at .*panic_test.cpp:[0-9]+\\)\n"
               "fatal error: stack overflow");
}

__attribute__((noinline)) int recurse_and_yield(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth > g_depth_limit) return 0;
  goro::yield();  // a switch: where the canary is checked
  return recurse_and_yield(depth + 1) + frame[0];
}

TEST_F(PanicTest, AStackOverflowPastACanaryIsReportedAtTheNextSwitch) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "the sanitizers report stack overflows themselves";
  EXPECT_DEATH(
      {
        ::setenv("GORODEBUG", "stackguard=0", 1);  // no guard pages: canaries only
        run_and_wait_forever([] { recurse_and_yield(0); });
      },
      "goroutine [0-9]+ stack exceeds its 65536-byte limit(.|\n)*fatal error: stack overflow");
}

}  // namespace
