// Deadlines and dial timeouts (after Go's net/timeout_test.go).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <string>
#include <vector>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using namespace std::chrono_literals;
using net_test::Clock;
using net_test::expect_error;
using net_test::read_full;

class DeadlineTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(DeadlineTest);

// sleep_past waits until t has passed (the subject of these tests is time).
void sleep_past(Clock::time_point t) {
  while (Clock::now() <= t) goro::sleep_for(1ms);
}

TEST_P(DeadlineTest, ReadTimesOutWithGosWords) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    const auto start = Clock::now();
    p.client.set_read_deadline(start + 30ms);
    char b;
    auto e = expect_error([&] { p.client.read(&b, 1); });
    EXPECT_GE(Clock::now() - start, 30ms) << "not before the deadline";
    EXPECT_TRUE(e.timeout());
    EXPECT_FALSE(e.closed());
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_EQ(std::string(e.what()),
              "read tcp " + p.client.local_addr() + "->" + p.client.remote_addr() + ": i/o timeout");
    // It stays expired for later calls, until changed.
    EXPECT_TRUE(expect_error([&] { p.client.read(&b, 1); }).timeout());
    p.client.set_read_deadline({});
    p.server.write("x");
    EXPECT_EQ(p.client.read(&b, 1), 1u);
  });
}

TEST_P(DeadlineTest, APastDeadlineFailsAtOnceEvenWithDataWaiting) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    p.server.write("data");
    char buf[4];
    EXPECT_EQ(read_full(p.client, buf, 1), 1u);  // data is surely there now
    p.client.set_read_deadline(Clock::now() - 1s);
    EXPECT_TRUE(expect_error([&] { p.client.read(buf, 3); }).timeout());
    p.client.set_write_deadline(Clock::now());
    EXPECT_TRUE(expect_error([&] { p.client.write("x"); }).timeout()) << "a deadline of now has passed too";
    p.client.set_deadline({});
    EXPECT_EQ(read_full(p.client, buf, 3), 3u);
    EXPECT_EQ(p.client.write("y"), 1u);
  });
}

TEST_P(DeadlineTest, MovingTheDeadlineIntoThePastWakesAParkedRead) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::Chan<bool> timed_out(1);
    goro::go([&] {
      char b;
      try {
        p.client.read(&b, 1);
        timed_out.send(false);
      } catch (const goro::net::Error& e) {
        timed_out.send(e.timeout());
      }
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    p.client.set_read_deadline(Clock::now() - 1ms);
    EXPECT_TRUE(*timed_out.recv());
  });
}

TEST_P(DeadlineTest, MovingTheDeadlineLaterWhileParkedKeepsTheReadWaiting) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::Chan<std::string> result(1);
    goro::go([&] {
      char buf[5];
      try {
        result.send(std::string(buf, read_full(p.client, buf, 5)));
      } catch (const goro::net::Error& e) {
        result.send(e.what());
      }
    });
    // The deadline is armed while the read is parked (not before it starts:
    // on a loaded machine the reader might not get to park within 30 ms),
    // then moved: the armed timer must not fire now.
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    const auto first = Clock::now() + 30ms;
    p.client.set_read_deadline(first);
    p.client.set_read_deadline(Clock::now() + 1h);
    sleep_past(first + 20ms);
    p.server.write("later");
    EXPECT_EQ(*result.recv(), "later");
  });
}

TEST_P(DeadlineTest, ClearingTheDeadlineWhileParked) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::Chan<std::size_t> result(1);
    goro::go([&] {
      char buf[2];
      result.send(read_full(p.client, buf, 2));
    });
    // Armed while parked, as above, then cleared.
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    const auto first = Clock::now() + 30ms;
    p.client.set_deadline(first);
    p.client.set_deadline({});
    sleep_past(first + 20ms);
    p.server.write("ok");
    EXPECT_EQ(*result.recv(), 2u);
  });
}

TEST_P(DeadlineTest, WriteTimesOutAgainstAPeerThatDoesNotRead) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    p.client.set_write_deadline(Clock::now() + 50ms);
    const std::string chunk(256 * 1024, 'z');
    auto e = expect_error([&] {
      for (;;) p.client.write(chunk);
    });
    EXPECT_TRUE(e.timeout());
    EXPECT_EQ(std::string(e.what()),
              "write tcp " + p.client.local_addr() + "->" + p.client.remote_addr() + ": i/o timeout");
  });
}

TEST_P(DeadlineTest, DeadlinesFluctuatingUnderAParkedReader) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    std::atomic<int> timeouts{0};
    goro::Chan<bool> got_data(1);
    goro::go([&] {
      char b;
      for (;;) {
        try {
          p.client.read(&b, 1);
          got_data.send(true);
          return;
        } catch (const goro::net::Error& e) {
          if (!e.timeout()) {
            got_data.send(false);
            return;
          }
          ++timeouts;
          goro::yield();
        }
      }
    });
    // Stale timers, timers racing with new deadlines, deadlines in the past.
    std::mt19937 rng(42);
    for (int i = 0; i < scaled(2000); ++i) {
      const int r = static_cast<int>(rng() % 100);
      if (r < 10) {
        p.client.set_read_deadline(Clock::now() - 1ms);
      } else if (r < 20) {
        p.client.set_read_deadline({});
      } else {
        p.client.set_read_deadline(Clock::now() + std::chrono::microseconds(rng() % 500));
      }
      if (i % 16 == 0) goro::yield();
    }
    // The loop may be over before the reader ran at all (another P, a
    // loaded machine): a deadline in the past times it out for sure.
    p.client.set_read_deadline(Clock::now() - 1ms);
    EXPECT_TRUE(goro_test::wait_until([&] { return timeouts.load() > 0; }));
    p.client.set_read_deadline({});
    p.server.write("!");
    EXPECT_TRUE(*got_data.recv());
  });
}

TEST_P(DeadlineTest, ManyConnectionsWithDeadlines) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const int n = static_cast<int>(scaled(100));
    std::vector<net_test::Pair> pairs;
    for (int i = 0; i < n; ++i) pairs.push_back(net_test::connected_pair(ln));
    goro::WaitGroup wg;
    std::atomic<int> timeouts{0}, reads{0};
    for (int i = 0; i < n; ++i) {
      wg.add(1);
      goro::go([&, i] {
        auto& c = pairs[static_cast<std::size_t>(i)].client;
        c.set_read_deadline(Clock::now() + std::chrono::milliseconds(1 + i % 20));
        char b;
        try {
          c.read(&b, 1);
          ++reads;
        } catch (const goro::net::Error& e) {
          EXPECT_TRUE(e.timeout()) << e.what();
          ++timeouts;
        }
        wg.done();
      });
    }
    for (int i = 0; i < n; i += 2) pairs[static_cast<std::size_t>(i)].server.write("x");
    wg.wait();
    EXPECT_EQ(timeouts + reads, n);
    EXPECT_GE(reads.load(), 1);
    EXPECT_GE(timeouts.load(), 1);
  });
}

// full_listener listens with a backlog of 0 and never accepts: once one
// connection waits in its queue, the kernel drops further SYNs, so a dial
// hangs until its deadline (loopback only, no network needed).
struct FullListener {
  int fd = -1;
  std::string addr;
  std::vector<goro::net::Conn> fillers;
  FullListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd, 0) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      ADD_FAILURE() << "listen";
      return;
    }
    addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
  }
  // fill dials until a dial would hang; false if the queue never filled.
  bool fill() {
    for (int i = 0; i < 8; ++i) {
      try {
        fillers.push_back(goro::net::dial("tcp", addr, 100ms));
      } catch (const goro::net::Error& e) {
        return e.timeout();
      }
    }
    return false;
  }
  ~FullListener() {
    fillers.clear();
    if (fd >= 0) ::close(fd);
  }
};

TEST_P(DeadlineTest, DialTimesOutAgainstAFullBacklog) {
  run([] {
    FullListener full;
    ASSERT_TRUE(full.fill()) << "the backlog never filled";
    const auto start = Clock::now();
    auto e = expect_error([&] { goro::net::dial("tcp", full.addr, 50ms); });
    EXPECT_GE(Clock::now() - start, 50ms);
    EXPECT_TRUE(e.timeout());
    EXPECT_EQ(std::string(e.what()), "dial tcp " + full.addr + ": i/o timeout");
  });
}

TEST_P(DeadlineTest, CancellingTheContextAbortsADial) {
  run([] {
    FullListener full;
    ASSERT_TRUE(full.fill());
    auto ctx_cancel = goro::with_cancel(goro::background());  // clang 14: no captured structured bindings
    const goro::Context& ctx = ctx_cancel.first;
    const goro::CancelFunc& cancel = ctx_cancel.second;
    goro::Chan<std::string> result(1);
    goro::go([&, ctx = ctx] {
      try {
        goro::net::dial(ctx, "tcp", full.addr);
        result.send("connected");
      } catch (const goro::net::Error& e) {
        result.send(std::string(e.code() == std::errc::operation_canceled ? "canceled: " : "other: ") + e.what());
      }
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    cancel();
    EXPECT_EQ(*result.recv(), "canceled: dial tcp " + full.addr + ": operation was canceled");
    // Already cancelled: fails before trying.
    auto e = expect_error([&] { goro::net::dial(ctx, "tcp", "127.0.0.1:1"); });
    EXPECT_EQ(std::string(e.what()), "dial tcp 127.0.0.1:1: operation was canceled");
  });
}

TEST_P(DeadlineTest, AContextDeadlineBoundsADial) {
  run([] {
    FullListener full;
    ASSERT_TRUE(full.fill());
    auto ctx_cancel = goro::with_timeout(goro::background(), 30ms);
    const goro::Context& ctx = ctx_cancel.first;
    const goro::CancelFunc& cancel = ctx_cancel.second;
    auto e = expect_error([&] { goro::net::dial(ctx, "tcp", full.addr); });
    EXPECT_TRUE(e.timeout()) << e.what();
    EXPECT_EQ(std::string(e.what()), "dial tcp " + full.addr + ": i/o timeout");
    cancel();
  });
}

TEST_P(DeadlineTest, ADialThatSucceedsWithAContextLeavesNoWatcher) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    for (int i = 0; i < 20; ++i) {
      auto c = goro::net::dial(ctx, "tcp", ln.addr());
      auto s = ln.accept();
      c.write("k");
      char b;
      EXPECT_EQ(s.read(&b, 1), 1u);
    }
    cancel();
  });
}

}  // namespace
