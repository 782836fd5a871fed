// Datagram sockets: UDP and unixgram (after Go's net/udpsock_test.go).
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <string>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using namespace std::chrono_literals;
using net_test::Clock;
using net_test::expect_error;

class UdpTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(UdpTest);

TEST_P(UdpTest, DatagramsBetweenTwoSockets) {
  run([] {
    auto a = goro::net::listen_packet("udp", "127.0.0.1:0");
    auto b = goro::net::listen_packet("udp4", "127.0.0.1:0");
    EXPECT_EQ(a.local_addr().rfind("127.0.0.1:", 0), 0u);
    goro::Chan<std::string> got(1);
    goro::go([&] {
      char buf[64];
      std::string from;
      const std::size_t n = b.read_from(buf, sizeof buf, &from);
      got.send(std::string(buf, n) + " from " + from);
      b.write_to("pong", from);
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    EXPECT_EQ(a.write_to("ping", b.local_addr()), 4u);
    EXPECT_EQ(*got.recv(), "ping from " + a.local_addr());
    char buf[8];
    std::string from;
    EXPECT_EQ(a.read_from(buf, sizeof buf, &from), 4u);
    EXPECT_EQ(std::string(buf, 4), "pong");
    EXPECT_EQ(from, b.local_addr());
  });
}

TEST_P(UdpTest, ALongDatagramIsCutToTheBuffer) {
  run([] {
    auto a = goro::net::listen_packet("udp", "127.0.0.1:0");
    a.write_to(std::string(100, 'x'), a.local_addr());
    char buf[10];
    EXPECT_EQ(a.read_from(buf, sizeof buf), 10u);
    a.write_to("", a.local_addr());
    EXPECT_EQ(a.read_from(buf, sizeof buf), 0u) << "an empty datagram is not end of stream";
  });
}

TEST_P(UdpTest, ReadTimesOutAndCloseWakesAParkedRead) {
  run([] {
    auto a = goro::net::listen_packet("udp", "127.0.0.1:0");
    a.set_read_deadline(Clock::now() + 20ms);
    char b;
    auto e = expect_error([&] { a.read_from(&b, 1); });
    EXPECT_TRUE(e.timeout());
    EXPECT_EQ(std::string(e.what()), "read udp " + a.local_addr() + ": i/o timeout");
    a.set_read_deadline({});
    goro::Chan<bool> closed(1);
    goro::go([&] {
      try {
        a.read_from(&b, 1);
        closed.send(false);
      } catch (const goro::net::Error& err) {
        closed.send(err.closed());
      }
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    a.close();
    EXPECT_TRUE(*closed.recv());
  });
}

TEST_P(UdpTest, ADialedConnTalksToOnePeer) {
  run([] {
    auto server = goro::net::listen_packet("udp", "127.0.0.1:0");
    auto c = goro::net::dial("udp", server.local_addr());
    EXPECT_EQ(c.remote_addr(), server.local_addr());
    c.write("hello");
    char buf[16];
    std::string from;
    EXPECT_EQ(server.read_from(buf, sizeof buf, &from), 5u);
    EXPECT_EQ(from, c.local_addr());
    server.write_to("back", from);
    EXPECT_EQ(c.read(buf, sizeof buf), 4u);
    EXPECT_EQ(std::string(buf, 4), "back");
  });
}

TEST_P(UdpTest, ADualStackSocketReachesIPv4Peers) {
  run([] {
    auto any = goro::net::listen_packet("udp", ":0");
    auto v4 = goro::net::listen_packet("udp4", "127.0.0.1:0");
    const int port = net_test::port_of(any.local_addr());
    v4.write_to("to any", "127.0.0.1:" + std::to_string(port));
    char buf[16];
    std::string from;
    EXPECT_EQ(any.read_from(buf, sizeof buf, &from), 6u);
    EXPECT_EQ(from, v4.local_addr()) << "an IPv4-mapped sender prints as IPv4";
    any.write_to("back", from);
    EXPECT_EQ(v4.read_from(buf, sizeof buf), 4u);
  });
}

TEST_P(UdpTest, ManySendersOneReader) {
  run([] {
    auto reader = goro::net::listen_packet("udp", "127.0.0.1:0");
    const int senders = 8, each = static_cast<int>(scaled(100));
    goro::WaitGroup wg;
    for (int i = 0; i < senders; ++i) {
      wg.add(1);
      goro::go([&, i] {
        auto s = goro::net::listen_packet("udp", "127.0.0.1:0");
        for (int k = 0; k < each; ++k) {
          s.write_to(std::to_string(i * 100000 + k), reader.local_addr());
          if (k % 8 == 0) goro::yield();  // loopback drops what an unread socket cannot hold
        }
        wg.done();
      });
    }
    std::set<std::string> seen;
    reader.set_read_deadline(Clock::now() + 10s);
    char buf[32];
    while (static_cast<int>(seen.size()) < senders * each) {
      try {
        const std::size_t n = reader.read_from(buf, sizeof buf);
        seen.insert(std::string(buf, n));
      } catch (const goro::net::Error& e) {
        ASSERT_TRUE(e.timeout());
        break;  // UDP may drop: settle for what arrived
      }
    }
    wg.wait();
    EXPECT_GT(seen.size(), 0u);
  });
}

TEST_P(UdpTest, UnixDatagrams) {
  run([] {
    char tmpl[] = "/tmp/goro-udg-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl, pa = dir + "/a", pb = dir + "/b";
    {
      auto a = goro::net::listen_packet("unixgram", pa);
      auto b = goro::net::listen_packet("unixgram", pb);
      EXPECT_EQ(a.local_addr(), pa);
      a.write_to("over unix", pb);
      char buf[16];
      std::string from;
      EXPECT_EQ(b.read_from(buf, sizeof buf, &from), 9u);
      EXPECT_EQ(from, pa);
    }
    EXPECT_NE(::access(pa.c_str(), F_OK), 0) << "closing removed the socket file";
    ::rmdir(dir.c_str());
  });
}

TEST_P(UdpTest, StreamAndDatagramCallsRefuseEachOthersNetworks) {
  run([] {
    EXPECT_STREQ(expect_error([] { goro::net::listen("udp", "127.0.0.1:0"); }).what(), "listen udp: unknown network udp");
    EXPECT_STREQ(expect_error([] { goro::net::listen_packet("tcp", "127.0.0.1:0"); }).what(),
                 "listen tcp: unknown network tcp");
  });
}

}  // namespace
