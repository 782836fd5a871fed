// Tests of the deadlock detector ("all goroutines are asleep - deadlock!")
// and of the SIGQUIT dump, both as in Go.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "goro_test.hpp"

namespace {

using namespace std::chrono_literals;

class DeadlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    if (goro_test::kUnderSanitizer) {
      GTEST_SKIP() << "a sanitizer's helper thread counts as a thread that could wake a goroutine: "
                      "the detector stays silent";
    }
  }
};

TEST_F(DeadlockTest, MainBlockedForeverIsReportedWithTheDump) {
  EXPECT_DEATH(goro::run([] {
                 goro::Chan<int> ch(0);
                 ch.recv();
               }),
               "fatal error: all goroutines are asleep - deadlock!\n(.|\n)*goroutine 1 \\[chan receive\\]:");
}

TEST_F(DeadlockTest, EveryGoroutineParkedOnEachOtherIsReported) {
  EXPECT_DEATH(goro::run(
                   [] {
                     goro::Mutex a, b;
                     goro::WaitGroup wg;
                     wg.add(2);
                     goro::WaitGroup both_locked;  // each takes its second lock once both hold their first
                     both_locked.add(2);
                     goro::go([&] {
                       std::lock_guard<goro::Mutex> la(a);
                       both_locked.done();
                       both_locked.wait();
                       std::lock_guard<goro::Mutex> lb(b);  // classic lock-order deadlock
                       wg.done();
                     });
                     goro::go([&] {
                       std::lock_guard<goro::Mutex> lb(b);
                       both_locked.done();
                       both_locked.wait();
                       std::lock_guard<goro::Mutex> la(a);
                       wg.done();
                     });
                     wg.wait();
                   },
                   goro::Options{.procs = 2}),
               "all goroutines are asleep - deadlock!(.|\n)*goroutine 1 \\[sync.WaitGroup.Wait\\](.|\n)*\\[sync.Mutex.Lock\\](.|\n)*\\[sync.Mutex.Lock\\]");
}

// No false positives: each of these looks like a deadlock for a while.

TEST_F(DeadlockTest, APlainThreadThatWillSendKeepsTheDetectorSilent) {
  goro::run([] {
    goro::Chan<int> ch(0);
    std::thread t([ch] {
      std::this_thread::sleep_for(50ms);  // every goroutine is parked meanwhile
      ch.send(7);
    });
    EXPECT_EQ(ch.recv(), 7);
    goro::blocking([&] { t.join(); });
  });
}

TEST_F(DeadlockTest, APendingTimerKeepsTheDetectorSilent) {
  goro::run([] {
    goro::Chan<int> ch(0);
    goro::go([ch] {
      goro::sleep_for(30ms);
      ch.send(1);
    });
    EXPECT_EQ(ch.recv(), 1);
  });
}

TEST_F(DeadlockTest, AGoroutineInABlockingCallKeepsTheDetectorSilent) {
  goro::run([] {
    goro::Chan<int> ch(0);
    goro::go([ch] {
      goro::blocking([] { std::this_thread::sleep_for(50ms); });
      ch.send(1);
    });
    EXPECT_EQ(ch.recv(), 1);
  });
}

TEST_F(DeadlockTest, TheDetectorCanBeTurnedOff) {
  // GORODEBUG=deadlock=0; a plain thread ends the wait after a while.
  ::setenv("GORODEBUG", "deadlock=0", 1);
  goro::run([] {
    goro::Chan<int> ch(0);
    std::thread t([ch] {
      std::this_thread::sleep_for(20ms);
      ch.send(1);
    });
    ch.recv();
    goro::blocking([&] { t.join(); });
  });
  ::unsetenv("GORODEBUG");
}

TEST_F(DeadlockTest, SigquitDumpsEveryGoroutineAndExitsWithStatusTwo) {
  EXPECT_EXIT(goro::run([] {
                goro::Chan<int> never(0);
                goro::go([never] { never.recv(); });
                // The dump must find it parked: wait for that, not for a guess of how long it takes.
                goro_test::wait_for_waiters("chan receive", 1);
                ::raise(SIGQUIT);
                goro::sleep_for(10s);  // the dump ends the process before this does
              }),
              // Goroutine 1 may not have parked yet when sysmon takes the signal.
              ::testing::ExitedWithCode(2),
              "SIGQUIT: quit\n(.|\n)*goroutine 1 \\[(sleep|running)\\](.|\n)*\\[chan receive\\]");
}

TEST_F(DeadlockTest, SigquitCanDumpAndKeepRunning) {
  EXPECT_EXIT(
      {
        ::setenv("GORODEBUG", "sigquit=dump", 1);
        // sysmon writes the dump some time after the signal: catch stderr
        // in a file and wait until the dump is there, then pass it on.
        std::FILE* caught = std::tmpfile();
        const int saved_stderr = ::dup(2);
        ::dup2(::fileno(caught), 2);
        const int rc = goro::run([caught] {
          ::raise(SIGQUIT);
          goro_test::wait_until([caught] {
            char buf[4096];
            const ssize_t n = ::pread(::fileno(caught), buf, sizeof buf - 1, 0);
            return n > 0 && std::string(buf, static_cast<std::size_t>(n)).find("goroutine 1 ") != std::string::npos;
          });
          return 3;
        });
        ::dup2(saved_stderr, 2);
        char buf[4096];
        for (ssize_t n, at = 0; (n = ::pread(::fileno(caught), buf, sizeof buf, at)) > 0; at += n) {
          if (::write(2, buf, static_cast<std::size_t>(n)) != n) break;
        }
        std::exit(rc);
      },
      ::testing::ExitedWithCode(3), "SIGQUIT: quit\n(.|\n)*goroutine 1 ");
}

}  // namespace
