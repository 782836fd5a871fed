// GORODEBUG=migrate=1: a goroutine that parks or yields resumes on another
// M, so code that keeps thread_local state (errno, a library's per-thread
// cache, GoogleTest's SCOPED_TRACE) across a switch fails in tests.
//
// Each scenario runs in a child process (EXPECT_EXIT) that sets GORODEBUG
// itself and exits with the scenario's verdict.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "goro/park.hpp"  // park/ready: goro's internal seam
#include "goro_test.hpp"

namespace {

using namespace std::chrono_literals;

// thread_now is the calling thread's id, read afresh: std::this_thread's
// get_id() is pthread_self(), which compilers may keep across a call (it
// is declared const), and a goroutine changes threads inside calls.
__attribute__((noinline)) long thread_now() { return ::syscall(SYS_gettid); }

class MigrateTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// run_child runs body (returning the exit status) with GORODEBUG=migrate=1
// on `procs` Ps, and exits with its status.
template <class F>
void run_child(int procs, F body) {
  ::setenv("GORODEBUG", "migrate=1", 1);
  const int rc = goro::run(body, goro::Options{.procs = procs});
  std::exit(rc);
}

// Every kind of park: a yield, a sleep, a receive that waits for its
// sender, a Mutex held by another goroutine. Each must come back on
// another thread.
TEST_P(MigrateTest, EveryParkOrYieldResumesOnAnotherThread) {
  const int procs = GetParam();
  EXPECT_EXIT(run_child(procs,
                        [] {
                          int same = 0;
                          auto check = [&](auto&& park) {
                            const long before = thread_now();
                            park();
                            if (thread_now() == before) ++same;
                          };
                          for (int i = 0; i < 20; ++i) {
                            check([] { goro::yield(); });
                            check([] { goro::sleep_for(100us); });
                            goro::Chan<int> ch(0);
                            goro::go([ch]() mutable {
                              // Send only once the receiver has parked.
                              goro_test::wait_for_waiters("chan receive", 1);
                              ch.send(1);
                            });
                            check([&] { (void)ch.recv(); });
                            goro::Mutex mu;
                            goro::Chan<goro::Unit> locked(0);
                            goro::WaitGroup holder;
                            holder.add(1);
                            goro::go([&mu, &holder, locked]() mutable {
                              {
                                std::lock_guard<goro::Mutex> l(mu);
                                locked.send({});
                                // Hold it until the other has parked on it.
                                goro_test::wait_for_waiters("sync.Mutex.Lock", 1);
                              }
                              holder.done();  // after the unlock: mu dies with this iteration
                            });
                            (void)locked.recv();
                            check([&] { std::lock_guard<goro::Mutex> l(mu); });
                            holder.wait();
                          }
                          std::fprintf(stderr, "resumed on the same thread %d times\n", same);
                          return same == 0 ? 0 : 1;
                        }),
              ::testing::ExitedWithCode(0), "resumed on the same thread 0 times");
}

// The bug this mode is for: state kept in a thread_local across a park.
// With the flag it is caught on the first switch.
thread_local int t_request_id = 0;

TEST_P(MigrateTest, ThreadLocalStateKeptAcrossAParkIsCaught) {
  const int procs = GetParam();
  EXPECT_EXIT(run_child(procs,
                        [] {
                          t_request_id = 42;  // "the current request", per thread
                          goro::sleep_for(1ms);
                          if (t_request_id != 42) {
                            std::fprintf(stderr, "thread_local changed under the goroutine\n");
                            return 1;
                          }
                          return 0;
                        }),
              ::testing::ExitedWithCode(1), "thread_local changed under the goroutine");
}

INSTANTIATE_TEST_SUITE_P(Procs, MigrateTest, ::testing::Values(1, 2, 4), goro_test::procs_name);

}  // namespace
