// A goroutine that blocks its OS thread outside goro::blocking() (here a
// plain sleep, as a contended std::mutex or a blocking read would) is
// noticed by sysmon: counted in sched_stats().thread_blocks, reported with
// GORODEBUG=blockwarn=1, and the goroutines queued behind it are left to
// the other Ps.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "goro_test.hpp"

namespace {

using namespace std::chrono_literals;
using goro_test::wait_until;

// blocks_its_thread sleeps the OS thread, not the goroutine.
__attribute__((noinline)) void blocks_its_thread(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

TEST(ThreadBlockTest, AGoroutineSleepingItsThreadIsCounted) {
  goro::run(
      [] {
        const std::uint64_t before = goro::sched_stats().thread_blocks;
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          blocks_its_thread(300ms);
          wg.done();
        });
        EXPECT_TRUE(wait_until([&] { return goro::sched_stats().thread_blocks > before; }));
        wg.wait();
      },
      goro::Options{.procs = 2});
}

// The other goroutines keep running while one blocks its thread: here a
// hundred rounds of a channel ping-pong finish before the blocked thread
// wakes up (it sleeps 3 s; on this runtime's other P they take
// milliseconds).
TEST(ThreadBlockTest, TheOtherGoroutinesKeepRunning) {
  goro::run(
      [] {
        std::atomic<bool> woke{false};
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          blocks_its_thread(3000ms);
          woke.store(true);
          wg.done();
        });
        goro::Chan<int> ping(0), pong(0);
        wg.add(1);
        goro::go([&, ping, pong]() mutable {
          while (auto v = ping.recv()) pong.send(*v);
          wg.done();
        });
        for (int i = 0; i < 100; ++i) {
          ping.send(i);
          EXPECT_EQ(pong.recv(), i);
        }
        EXPECT_FALSE(woke.load()) << "the ping-pong waited for the blocked thread";
        ping.close();
        wg.wait();
      },
      goro::Options{.procs = 2});
}

TEST(ThreadBlockDeathTest, BlockwarnNamesTheGoroutine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv("GORODEBUG", "blockwarn=1", 1);
        goro::run(
            [] {
              goro::WaitGroup wg;
              wg.add(1);
              goro::go([&] {
                blocks_its_thread(300ms);
                wg.done();
              });
              wg.wait();
            },
            goro::Options{.procs = 2});
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "goro: goroutine [0-9]+ \\(created at [^\n]*thread_block_test.cpp:[0-9]+\\) has blocked its thread \\(M[0-9]+\\) "
      "for 10 ms outside goro::blocking\\(\\)");
}

}  // namespace
