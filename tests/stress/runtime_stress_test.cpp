// Long, randomized runs of the runtime (label: stress). GORO_STRESS_SCALE
// scales them: 1 by default, 10 for soak runs, 0.1 under sanitizers.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class RuntimeStress : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(RuntimeStress);

TEST_P(RuntimeStress, AMillionGoroutinesSpawnedAndJoined) {
  const std::int64_t n = scaled(1'000'000);
  run([n] {
    goro::WaitGroup wg;
    wg.add(n);
    for (std::int64_t i = 0; i < n; ++i) goro::go([&wg] { wg.done(); });
    wg.wait();
    EXPECT_TRUE(wait_until([] { return goro::num_goroutine() == 1; }));
  });
}

TEST_P(RuntimeStress, AMillionParkedGoroutinesAtOnce) {
  const std::int64_t n = scaled(goro_test::kUnderSanitizer ? 50'000 : 1'000'000);
  run([n] {
    goro::Chan<goro::Unit> gate(0);
    goro::WaitGroup started, exited;
    started.add(n);
    exited.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&started, &exited, gate]() mutable {
        started.done();
        gate.recv();
        exited.done();
      });
    }
    started.wait();
    EXPECT_EQ(goro::num_goroutine(), n + 1);
    gate.close();
    exited.wait();
    EXPECT_TRUE(wait_until([] { return goro::num_goroutine() == 1; }));
  });
}

TEST_P(RuntimeStress, SpawnStormsFromPlainThreads) {
  const std::int64_t per = scaled(50'000);
  run([per] {
    constexpr int kThreads = 6;
    goro::WaitGroup wg;
    wg.add(kThreads * per);
    std::atomic<std::int64_t> ran{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (std::int64_t i = 0; i < per; ++i) {
          goro::go([&] {
            // Some of them spawn again, some yield, some sleep.
            if ((ran.fetch_add(1, std::memory_order_relaxed) & 63) == 0) goro::yield();
            wg.done();
          });
        }
      });
    }
    wg.wait();
    for (auto& t : threads) t.join();
    EXPECT_EQ(ran.load(), kThreads * per);
  });
}

TEST_P(RuntimeStress, RandomParkReadyPingPongAcrossGoroutinesAndThreads) {
  const std::int64_t rounds = scaled(20'000);
  run([rounds] {
    constexpr int kRing = 16;
    std::vector<goro::Chan<std::int64_t>> ring;
    // Capacities 0, 1 and 2 mixed; ring[0] buffered so the last participant's
    // final forward of the end marker does not wait for a reader that is gone.
    for (int i = 0; i < kRing; ++i) ring.emplace_back(i == 0 ? 1 : i % 3);
    goro::WaitGroup wg;
    wg.add(kRing);
    for (int i = 0; i < kRing; ++i) {
      auto body = [&, i] {
        auto in = ring[static_cast<std::size_t>(i)];
        auto out = ring[static_cast<std::size_t>((i + 1) % kRing)];
        for (;;) {
          auto v = in.recv();
          if (!v || *v >= rounds) {
            if (v) out.send(*v);  // pass the end marker on
            break;
          }
          out.send(*v + 1);
        }
        wg.done();
      };
      if (i % 4 == 3) {
        std::thread(body).detach();  // a plain thread in the ring
      } else {
        goro::go(body);
      }
    }
    ring[0].send(0);
    wg.wait();
    // One end marker is still in flight around the ring: drain it.
    for (auto& c : ring) (void)c.try_recv();
  });
}

TEST_P(RuntimeStress, RunRepeatedWithWorkLeftBehind) {
  for (int i = 0; i < static_cast<int>(scaled(100)); ++i) {
    goro::run(
        [] {
          goro::Chan<int> never(0);
          for (int k = 0; k < 100; ++k) goro::go([never]() mutable { never.recv(); });
          for (int k = 0; k < 100; ++k) goro::go([] { goro::yield(); });
        },
        goro::Options{.procs = procs()});
    ASSERT_GE(goro::last_run_unwound(), 100);
  }
}

}  // namespace
