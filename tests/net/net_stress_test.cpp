// Randomized stress of goro::net: echo traffic with closes racing reads
// and writes, deadlines racing readiness, connections coming and going,
// goroutines and plain threads together. Scaled by GORO_STRESS_SCALE.
#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using namespace std::chrono_literals;
using net_test::Clock;

class NetStressTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(NetStressTest);

// client_session dials, exchanges a few messages and, at random, has
// another goroutine close the connection or move its deadline into the
// past meanwhile. Any Error is fine; hanging or crashing is not.
void client_session(const std::string& addr, std::uint64_t seed, std::atomic<int>& completed) {
  std::mt19937_64 rng(seed);
  goro::net::Conn c;
  try {
    c = goro::net::dial("tcp", addr, 5s);
  } catch (const goro::net::Error&) {
    return;
  }
  goro::WaitGroup saboteur;
  const int mode = static_cast<int>(rng() % 4);
  if (mode != 0) {
    saboteur.add(1);
    goro::go([&c, mode, yields = static_cast<int>(rng() % 20), &saboteur] {
      for (int i = 0; i < yields; ++i) goro::yield();
      try {
        if (mode == 1) c.close();
        if (mode == 2) c.set_read_deadline(Clock::now() - 1ms);
        if (mode == 3) c.set_deadline(Clock::now() + std::chrono::microseconds(yields * 50));
      } catch (const goro::net::Error&) {
      }
      saboteur.done();
    });
  }
  try {
    for (int round = 0; round < 8; ++round) {
      const std::string msg(static_cast<std::size_t>(1 + rng() % 20000), static_cast<char>('a' + round));
      c.write(msg);
      std::string got(msg.size(), '\0');
      if (net_test::read_full(c, got.data(), got.size()) != msg.size() || got != msg) break;
    }
    ++completed;
  } catch (const goro::net::Error&) {
  }
  saboteur.wait();  // the saboteur holds a reference to c
}

TEST_P(NetStressTest, EchoWithClosesAndDeadlinesRacingTheTraffic) {
  run([&] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::int64_t descriptors_before = goro::sched_stats().poll_descriptors;
    goro::WaitGroup server;
    server.add(1);
    goro::go([&] {
      goro::WaitGroup conns;
      std::uint64_t n = 0;
      for (;;) {
        goro::net::Conn c;
        try {
          c = ln.accept();
        } catch (const goro::net::Error&) {
          break;
        }
        conns.add(1);
        goro::go([&conns, seed = ++n, c = std::move(c)]() mutable {
          std::mt19937 rng(static_cast<unsigned>(seed));
          char buf[1500];
          try {
            for (;;) {
              if (rng() % 8 == 0) c.set_read_deadline(Clock::now() + 200ms);
              const std::size_t k = c.read(buf, 1 + rng() % sizeof buf);
              if (k == 0) break;
              c.write(buf, k);
            }
          } catch (const goro::net::Error&) {
          }
          conns.done();
        });
      }
      conns.wait();
      server.done();
    });
    const int clients = 24;
    const int sessions = static_cast<int>(scaled(30));
    std::atomic<int> completed{0};
    goro::WaitGroup wg;
    for (int i = 0; i < clients; ++i) {
      wg.add(1);
      goro::go([&, i] {
        for (int s = 0; s < sessions; ++s) client_session(ln.addr(), static_cast<std::uint64_t>(i) * 1000 + s, completed);
        wg.done();
      });
    }
    // Plain threads do the same with blocking calls.
    std::vector<std::thread> threads;
    std::atomic<int> thread_completed{0};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        for (int s = 0; s < sessions; ++s) {
          try {
            auto c = goro::net::dial("tcp", ln.addr(), 5s);
            const std::string msg(static_cast<std::size_t>(100 + t * 5000 + s), 't');
            c.write(msg);
            std::string got(msg.size(), '\0');
            if (net_test::read_full(c, got.data(), got.size()) == msg.size() && got == msg) ++thread_completed;
          } catch (const goro::net::Error&) {
          }
        }
      });
    }
    wg.wait();
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_GT(completed.load(), 0);
    EXPECT_GT(thread_completed.load(), 0);
    ln.close();
    server.wait();
    EXPECT_TRUE(goro_test::wait_until(
        [&] { return goro::sched_stats().poll_descriptors == descriptors_before - 1; }))
        << "every connection's descriptor is closed and deregistered";
    EXPECT_EQ(goro::sched_stats().io_waiters, 0);
  });
}

}  // namespace
