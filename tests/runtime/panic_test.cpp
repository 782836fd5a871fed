// Death tests: what is fatal in Go is fatal here, with Go's words.
#include <sys/mman.h>
#include <unistd.h>

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

// Whether this kernel has guard markers (MADV_GUARD_INSTALL, Linux 6.13):
// with them every stack gets a guard page, however many goroutines there
// are; without, PROT_NONE guards cover the first ~28,000 stacks (each
// splits the mapping, and vm.max_map_count bounds the splits).
bool kernel_has_guard_markers() {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  const bool ok = madvise(mem, page, 102 /* MADV_GUARD_INSTALL */) == 0;
  munmap(mem, 2 * page);
  return ok;
}

// Beyond the ~28,000 stacks PROT_NONE guards can cover.
constexpr int kManyParked = 40000;

// with_many_parked runs body in a goroutine while kManyParked others are
// parked, each on a stack of its own.
void with_many_parked(void (*body)()) {
  goro::run([body] {
    goro::Chan<int> gate(0);
    goro::WaitGroup started;
    for (int i = 0; i < kManyParked; ++i) {
      started.add(1);
      goro::go([&started, gate]() mutable {
        started.done();
        gate.recv();
      });
    }
    started.wait();
    goro::WaitGroup done;
    done.add(1);
    goro::go([&done, body] {
      body();
      done.done();
    });
    done.wait();
    gate.close();
  }, goro::Options{.procs = 2});
}

TEST_F(PanicTest, WithGuardMarkersEveryStackHasAGuardPage) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "the sanitizers build uses PROT_NONE guards";
  if (!kernel_has_guard_markers()) GTEST_SKIP() << "the kernel has no MADV_GUARD_INSTALL";
  with_many_parked([] {
    const goro::SchedStats s = goro::sched_stats();
    EXPECT_GE(s.guarded_stacks, kManyParked);
    EXPECT_GE(s.guarded_stacks, s.stacks_in_use);
  });
}

TEST_F(PanicTest, WithGuardMarkersAnOverflowBeyondThousandsOfStacksHitsAGuardPage) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "the sanitizers report stack overflows themselves";
  if (!kernel_has_guard_markers()) GTEST_SKIP() << "the kernel has no MADV_GUARD_INSTALL";
  // recurse() never switches, so only a guard page can catch it.
  EXPECT_DEATH(with_many_parked([] { recurse(0); }),
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
