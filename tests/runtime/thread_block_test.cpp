// A goroutine that blocks its OS thread outside goro::blocking() (here a
// plain sleep, or a semaphore wait, as a contended std::mutex or a blocking
// read would) is noticed by sysmon: counted in sched_stats().thread_blocks,
// reported with GORODEBUG=blockwarn=1, and the goroutines queued behind it
// run elsewhere: on another P, or, with none free, on a spare P, however
// many Ps there are.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <semaphore>
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

// With one P the goroutines queued behind the sleeping thread have no
// other P to go to: a spare P runs them. All kinds: a ping-pong partner
// and main itself (queued, and parked on a send), a batch of new
// goroutines, and a sleeper whose timer is on the blocked P's heap. They
// all finish long before the thread wakes; then the sleeper of the thread
// finishes too, and the spare goes back.
TEST(ThreadBlockTest, OneProcTheQueuedGoroutinesRunWhileItSleeps) {
  goro::run(
      [] {
        const std::uint64_t before = goro::sched_stats().thread_blocks;
        std::atomic<bool> woke{false};
        // The sleeper arms its timer on P0 (the only P) and parks.
        goro::Chan<int> slept(1);
        goro::go([slept]() mutable {
          goro::sleep_for(50ms);
          slept.send(1);
        });
        goro::yield();
        goro::WaitGroup batch;
        std::atomic<int> ran{0};
        for (int i = 0; i < 100; ++i) {
          batch.add(1);
          goro::go([&] {
            ran.fetch_add(1);
            batch.done();
          });
        }
        goro::Chan<int> ping(0), pong(0);
        goro::go([ping, pong]() mutable {
          while (auto v = ping.recv()) pong.send(*v);
        });
        goro::Chan<int> done(1);
        goro::go([&woke, done]() mutable {
          blocks_its_thread(3000ms);
          woke.store(true);
          done.send(1);
        });
        // The first send parks main: the blocker (in runnext) runs next and
        // puts P0's thread to sleep with everyone else queued behind it.
        for (int i = 0; i < 100; ++i) {
          ping.send(i);
          EXPECT_EQ(pong.recv(), i);
        }
        batch.wait();
        EXPECT_EQ(ran.load(), 100);
        EXPECT_EQ(slept.recv(), 1);
        EXPECT_FALSE(woke.load()) << "the queued goroutines waited for the blocked thread";
        // Main runs while P0's thread sleeps: on a spare P.
        EXPECT_GE(goro::sched_stats().spare_procs, 1);
        EXPECT_GT(goro::sched_stats().thread_blocks, before);
        ping.close();
        EXPECT_EQ(done.recv(), 1);
        EXPECT_TRUE(woke.load());
        // Its thread runs again: the spare goes back.
        EXPECT_TRUE(wait_until([] { return goro::sched_stats().spare_procs == 0; }));
      },
      goro::Options{.procs = 1});
}

// Both Ps' threads asleep in goroutines' code: the rest still runs.
TEST(ThreadBlockTest, TwoProcsBothThreadsBlocked) {
  goro::run(
      [] {
        const std::uint64_t before = goro::sched_stats().thread_blocks;
        std::atomic<int> woke{0};
        goro::WaitGroup sleepers;
        for (int i = 0; i < 2; ++i) {
          sleepers.add(1);
          goro::go([&] {
            blocks_its_thread(3000ms);
            woke.fetch_add(1);
            sleepers.done();
          });
        }
        // Both found asleep: each holds a P, so from here on main runs on a spare.
        ASSERT_TRUE(wait_until([&] { return goro::sched_stats().thread_blocks >= before + 2; }));
        EXPECT_GE(goro::sched_stats().spare_procs, 1);
        goro::Chan<int> ping(0), pong(0);
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&, ping, pong]() mutable {
          while (auto v = ping.recv()) pong.send(*v);
          wg.done();
        });
        std::atomic<int> ran{0};
        for (int i = 0; i < 50; ++i) {
          wg.add(1);
          goro::go([&] {
            goro::sleep_for(1ms);
            ran.fetch_add(1);
            wg.done();
          });
        }
        for (int i = 0; i < 100; ++i) {
          ping.send(i);
          EXPECT_EQ(pong.recv(), i);
        }
        ping.close();
        wg.wait();
        EXPECT_EQ(ran.load(), 50);
        EXPECT_EQ(woke.load(), 0) << "the other goroutines waited for the blocked threads";
        sleepers.wait();
        EXPECT_EQ(woke.load(), 2);
      },
      goro::Options{.procs = 2});
}

// main returns while a goroutine still sleeps its thread (P0's, the
// thread that called run()) and main itself runs on the spare: run() waits
// for that thread, as for one inside blocking(), and ends cleanly; the
// next run starts afresh.
TEST(ThreadBlockTest, RunEndsWhileAGoroutineSleepsItsThread) {
  std::atomic<bool> woke{false};
  goro::run(
      [&] {
        goro::go([&] {
          blocks_its_thread(1000ms);
          woke.store(true);
        });
        goro::yield();  // it runs and blocks P0's thread; a spare takes main
        EXPECT_FALSE(woke.load());
        EXPECT_GE(goro::sched_stats().spare_procs, 1);
      },
      goro::Options{.procs = 1});
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(goro::last_run_unwound(), 0);
  int n = 0;
  goro::run(
      [&] {
        goro::Chan<int> c(0);
        goro::go([c]() mutable { c.send(7); });
        n = *c.recv();
        EXPECT_EQ(goro::sched_stats().spare_procs, 0);
      },
      goro::Options{.procs = 1});
  EXPECT_EQ(n, 7);
}

// A convoy: three goroutines wait for a semaphore, blocking their threads,
// and the one that will release it is queued behind them. With one P that
// takes a spare for each blocked thread in turn (P0's, then the spares').
TEST(ThreadBlockTest, AConvoyOfBlockedThreadsGetsASpareEach) {
  goro::run(
      [] {
        const std::uint64_t before = goro::sched_stats().thread_blocks;
        std::binary_semaphore sem(0);
        std::atomic<int> acquired{0};
        goro::WaitGroup wg;
        for (int i = 0; i < 3; ++i) {
          wg.add(1);
          goro::go([&] {
            const bool ok = sem.try_acquire_for(20s);
            EXPECT_TRUE(ok) << "the releaser never ran";
            acquired.fetch_add(1);
            if (ok) sem.release();
            wg.done();
          });
        }
        // main waits until all three block, queued behind them (and behind
        // each spare's blocked thread in turn), then releases.
        EXPECT_TRUE(wait_until([&] { return goro::sched_stats().thread_blocks >= before + 3; }, 20s));
        EXPECT_EQ(acquired.load(), 0);
        sem.release();
        wg.wait();
        EXPECT_EQ(acquired.load(), 3);
      },
      goro::Options{.procs = 1});
}

// The deadlock check: while a goroutine sleeps its thread, everyone else
// parked is no deadlock (its thread will wake and may wake them; here it
// does), even once the spare that ran main has gone back idle.
TEST(ThreadBlockTest, NoDeadlockWhileAThreadSleeps) {
  goro::run(
      [] {
        goro::Chan<int> c(0);
        goro::go([c]() mutable {
          blocks_its_thread(300ms);
          c.send(1);
        });
        goro::yield();  // it blocks P0's thread; main goes on on a spare
        EXPECT_EQ(c.recv(), 1);
      },
      goro::Options{.procs = 1});
}

// ... but a real deadlock after such an episode is still reported: the
// spare goes back, and a lent spare or a stranded P no longer hides it.
TEST(ThreadBlockDeathTest, ADeadlockAfterAThreadBlockIsReported) {
  if (goro_test::kUnderSanitizer) {
    GTEST_SKIP() << "a sanitizer's helper thread counts as a thread that could wake a goroutine: "
                    "the detector stays silent";
  }
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ::alarm(30);  // a deadlock never reported fails the test rather than hanging it
        goro::run(
            [] {
              goro::go([] { blocks_its_thread(100ms); });
              goro::yield();  // main goes on on a spare
              goro::Chan<int> never(0);
              (void)never.recv();
            },
            goro::Options{.procs = 1});
      },
      "all goroutines are asleep - deadlock!");
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

// Stress: short thread blocks (some just long enough to be caught) in a
// channel pipeline, a semaphore held across parks by goroutines that block
// their threads waiting for it, and sleepers' timers, on 1..8 Ps. Every
// item arrives and every wait ends: nothing is left behind a sleeping
// thread, and spares come and go.
class ThreadBlockStressTest : public goro_test::RuntimeTest {};
GORO_INSTANTIATE_PROCS(ThreadBlockStressTest);

TEST_P(ThreadBlockStressTest, ShortThreadBlocksAmidChannelTraffic) {
  run([] {
    const int items = static_cast<int>(goro_test::scaled(600));
    goro::Chan<int> a(0), b(4), c(0);
    goro::WaitGroup wg;
    wg.add(3);
    goro::go([&, a]() mutable {
      for (int i = 0; i < items; ++i) a.send(i);
      a.close();
      wg.done();
    });
    // A stage forwards in to out, blocking its thread on every nth item.
    auto stage = [&wg](goro::Chan<int> in, goro::Chan<int> out, int nth) {
      goro::go([&wg, in, out, nth]() mutable {
        while (auto v = in.recv()) {
          if (*v % nth == 0) blocks_its_thread(25ms);
          out.send(*v);
        }
        out.close();
        wg.done();
      });
    };
    stage(a, b, 50);
    stage(b, c, 70);
    // Holders of a semaphore that park while holding it; the others wait
    // for it with their threads blocked.
    std::binary_semaphore sem(1);
    std::atomic<int> holds{0};
    for (int k = 0; k < 4; ++k) {
      wg.add(1);
      goro::go([&] {
        for (int j = 0; j < 10; ++j) {
          const bool ok = sem.try_acquire_for(20s);
          EXPECT_TRUE(ok);
          holds.fetch_add(1);
          goro::sleep_for(2ms);
          if (ok) sem.release();
        }
        wg.done();
      });
    }
    std::atomic<int> naps{0};
    for (int k = 0; k < 2; ++k) {
      wg.add(1);
      goro::go([&] {
        for (int j = 0; j < 50; ++j) {
          goro::sleep_for(1ms);
          naps.fetch_add(1);
        }
        wg.done();
      });
    }
    std::int64_t sum = 0;
    while (auto v = c.recv()) sum += *v;
    wg.wait();
    EXPECT_EQ(sum, std::int64_t{items} * (items - 1) / 2);
    EXPECT_EQ(holds.load(), 40);
    EXPECT_EQ(naps.load(), 100);
  });
}

}  // namespace
