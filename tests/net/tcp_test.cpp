// TCP connections over the netpoller (after Go's net tests: conn_test.go,
// net_test.go, tcpsock_test.go, dial_test.go).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;
using net_test::Clock;
using net_test::expect_error;
using net_test::read_full;

class TcpTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(TcpTest);

TEST_P(TcpTest, EchoesOverLoopback) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    EXPECT_EQ(ln.addr().rfind("127.0.0.1:", 0), 0u) << ln.addr();
    EXPECT_NE(net_test::port_of(ln.addr()), 0) << "the real port, not 0";
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      goro::net::Conn c = ln.accept();
      char buf[256];
      while (std::size_t n = c.read(buf, sizeof buf)) c.write(buf, n);
      wg.done();
    });
    goro::net::Conn c = goro::net::dial("tcp", ln.addr());
    EXPECT_EQ(c.remote_addr(), ln.addr());
    EXPECT_EQ(c.local_addr().rfind("127.0.0.1:", 0), 0u);
    for (int i = 0; i < 100; ++i) {
      const std::string msg = "hello " + std::to_string(i);
      EXPECT_EQ(c.write(msg), msg.size());
      std::string got(msg.size(), '\0');
      ASSERT_EQ(read_full(c, got.data(), got.size()), msg.size());
      EXPECT_EQ(got, msg);
    }
    c.close();
    wg.wait();
  });
}

TEST_P(TcpTest, AcceptedConnAddressesMirrorTheDialer) {
  run([] {
    auto ln = goro::net::listen("tcp4", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln, "tcp4");
    EXPECT_EQ(p.server.local_addr(), p.client.remote_addr());
    EXPECT_EQ(p.server.remote_addr(), p.client.local_addr());
    EXPECT_GE(p.client.fd(), 0);
  });
}

TEST_P(TcpTest, ReadReturnsZeroAtEndOfStream) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    p.client.write("bye");
    p.client.close();
    EXPECT_EQ(net_test::read_all(p.server), "bye");
    char b;
    EXPECT_EQ(p.server.read(&b, 1), 0u) << "end of stream stays end of stream";
  });
}

TEST_P(TcpTest, ZeroLengthReadAndWriteReturnAtOnce) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    char b = 0;
    EXPECT_EQ(p.server.read(&b, 0), 0u);
    EXPECT_EQ(p.client.write(&b, 0), 0u);
    p.client.write("x");
    EXPECT_EQ(p.server.read(&b, 1), 1u);
    EXPECT_EQ(b, 'x');
  });
}

TEST_P(TcpTest, CloseWriteHalfClosesTheConnection) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    p.client.write("request");
    p.client.close_write();
    // The server reads to the end, then answers on its still-open half.
    EXPECT_EQ(net_test::read_all(p.server), "request");
    p.server.write("response");
    p.server.close();
    EXPECT_EQ(net_test::read_all(p.client), "response");
    auto e = expect_error([&] { p.client.write("more"); });
    EXPECT_EQ(e.code(), std::errc::broken_pipe) << e.what();
    EXPECT_NE(std::string(e.what()).find(": write: broken pipe"), std::string::npos) << e.what();
  });
}

TEST_P(TcpTest, ConcurrentReaderWriterAndCloser) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::WaitGroup wg;
    std::atomic<bool> reader_closed{false}, writer_closed{false};
    wg.add(2);
    goro::go([&] {  // reads until close
      char buf[1024];
      try {
        for (;;) p.client.read(buf, sizeof buf);
      } catch (const goro::net::Error& e) {
        reader_closed = e.closed();
      }
      wg.done();
    });
    goro::go([&] {  // writes until close (the server never reads: the socket fills up)
      std::string chunk(64 * 1024, 'w');
      try {
        for (;;) p.client.write(chunk);
      } catch (const goro::net::Error& e) {
        writer_closed = e.closed();
      }
      wg.done();
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 2));
    p.client.close();
    wg.wait();
    EXPECT_TRUE(reader_closed);
    EXPECT_TRUE(writer_closed);
  });
}

TEST_P(TcpTest, CloseWakesAParkedReadWithGosWords) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::Chan<std::string> result(1);
    goro::go([&] {
      char b;
      try {
        p.server.read(&b, 1);
        result.send("returned");
      } catch (const goro::net::Error& e) {
        result.send(std::string(e.closed() ? "closed: " : "other: ") + e.what());
      }
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    const std::string local = p.server.local_addr(), remote = p.server.remote_addr();
    p.server.close();
    EXPECT_EQ(*result.recv(), "closed: read tcp " + local + "->" + remote + ": use of closed network connection");
  });
}

TEST_P(TcpTest, CloseWakesAParkedAccept) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string addr = ln.addr();
    goro::Chan<std::string> result(1);
    goro::go([&] {
      try {
        ln.accept();
        result.send("accepted");
      } catch (const goro::net::Error& e) {
        result.send(std::string(e.closed() ? "closed: " : "other: ") + e.what());
      }
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    ln.close();
    EXPECT_EQ(*result.recv(), "closed: accept tcp " + addr + ": use of closed network connection");
    auto e = expect_error([&] { ln.accept(); });
    EXPECT_TRUE(e.closed());
  });
}

TEST_P(TcpTest, CloseTwiceThrowsClosed) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    p.client.close();
    auto e = expect_error([&] { p.client.close(); });
    EXPECT_TRUE(e.closed());
    EXPECT_EQ(e.code(), std::errc::bad_file_descriptor);
    EXPECT_NE(std::string(e.what()).find("close tcp "), std::string::npos) << e.what();
    auto r = expect_error([&] {
      char b;
      p.client.read(&b, 1);
    });
    EXPECT_TRUE(r.closed());
    EXPECT_FALSE(r.timeout());
    ln.close();
    EXPECT_TRUE(expect_error([&] { ln.close(); }).closed());
  });
}

TEST_P(TcpTest, ClosedListenerFreesItsPortAtOnce) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string addr = ln.addr();
    ln.close();  // returns once the descriptor is closed
    auto again = goro::net::listen("tcp", addr);
    EXPECT_EQ(again.addr(), addr);
  });
}

TEST_P(TcpTest, LargeWriteAgainstASlowReader) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    const std::size_t size = static_cast<std::size_t>(scaled(8 << 20));
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 131 + (i >> 12));
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      EXPECT_EQ(p.client.write(data), size);  // parks many times: the reader is slow
      p.client.close_write();
      wg.done();
    });
    std::string got;
    char buf[1000];
    int reads = 0;
    while (std::size_t n = p.server.read(buf, sizeof buf)) {
      got.append(buf, n);
      if (++reads % 64 == 0) goro::sleep_for(100us);
    }
    wg.wait();
    ASSERT_EQ(got.size(), size);
    EXPECT_TRUE(got == data) << "bytes arrived out of order or damaged";
  });
}

TEST_P(TcpTest, RefusedDialSaysSoInGosWords) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string addr = ln.addr();
    ln.close();  // nobody listens there now
    auto e = expect_error([&] { goro::net::dial("tcp", addr); });
    EXPECT_EQ(std::string(e.what()), "dial tcp " + addr + ": connect: connection refused");
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    EXPECT_FALSE(e.timeout());
    EXPECT_FALSE(e.closed());
  });
}

TEST_P(TcpTest, BadNetworksAndAddressesGetGosErrors) {
  run([] {
    EXPECT_STREQ(expect_error([] { goro::net::dial("udp7", "127.0.0.1:1"); }).what(),
                 "dial udp7: unknown network udp7");
    EXPECT_STREQ(expect_error([] { goro::net::listen("tcp", "127.0.0.1"); }).what(),
                 "listen tcp: address 127.0.0.1: missing port in address");
    EXPECT_STREQ(expect_error([] { goro::net::dial("tcp", "::1:80"); }).what(),
                 "dial tcp: address ::1:80: too many colons in address");
    EXPECT_STREQ(expect_error([] { goro::net::dial("tcp", "127.0.0.1:70000"); }).what(),
                 "dial tcp: address 70000: invalid port");
    EXPECT_STREQ(expect_error([] { goro::net::dial("tcp4", "[::1]:80"); }).what(),
                 "dial tcp4: address ::1: no suitable address found");
    auto e = expect_error([] { goro::net::dial("tcp", "no-such-host.invalid:80"); });
    EXPECT_STREQ(e.what(), "dial tcp: lookup no-such-host.invalid: no such host");
    EXPECT_EQ(&e.code().category(), &goro::net::resolver_category());
    EXPECT_TRUE(expect_error([] { goro::net::Conn().read(nullptr, 0); }).code() == std::errc::invalid_argument);
  });
}

TEST_P(TcpTest, ListenAndDialByName) {
  run([] {
    auto ln = goro::net::listen("tcp", "localhost:0");
    EXPECT_EQ(ln.addr().rfind("127.0.0.1:", 0), 0u) << "a name listens on its first IPv4 address: " << ln.addr();
    const std::string port = std::to_string(net_test::port_of(ln.addr()));
    goro::go([&] { ln.accept().write("hi"); });
    goro::net::Conn c = goro::net::dial("tcp", "localhost:" + port);
    char buf[2];
    EXPECT_EQ(read_full(c, buf, 2), 2u);
  });
}

TEST_P(TcpTest, WildcardListenerTakesIPv4Clients) {
  run([] {
    auto ln = goro::net::listen("tcp", ":0");
    const int port = net_test::port_of(ln.addr());
    auto c = goro::net::dial("tcp4", "127.0.0.1:" + std::to_string(port));
    auto s = ln.accept();
    EXPECT_EQ(s.remote_addr(), c.local_addr()) << "an IPv4-mapped peer prints as IPv4, as in Go";
    auto local = goro::net::dial("tcp", ":" + std::to_string(port));  // no host: this machine
    ln.accept();
  });
}

TEST_P(TcpTest, IPv6Loopback) {
  run([] {
    goro::net::Listener ln;
    try {
      ln = goro::net::listen("tcp6", "[::1]:0");
    } catch (const goro::net::Error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    EXPECT_EQ(ln.addr().rfind("[::1]:", 0), 0u) << ln.addr();
    goro::go([&] {
      auto s = ln.accept();
      char buf[5];
      read_full(s, buf, 5);
      s.write(buf, 5);
    });
    auto c = goro::net::dial("tcp", ln.addr());
    EXPECT_EQ(c.remote_addr(), ln.addr());
    EXPECT_EQ(c.local_addr().rfind("[::1]:", 0), 0u);
    c.write("hello");
    char buf[5];
    EXPECT_EQ(read_full(c, buf, 5), 5u);
    EXPECT_EQ(std::string(buf, 5), "hello");
  });
}

TEST_P(TcpTest, ParkedReadShowsIOWaitInDumpsAndStats) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      char b;
      p.server.read(&b, 1);
      wg.done();
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    const goro::SchedStats s = goro::sched_stats();
    EXPECT_GE(s.io_waiters, 1);
    EXPECT_GE(s.poll_descriptors, 3);  // the listener and both ends
    p.client.write("x");
    wg.wait();
    EXPECT_GT(goro::sched_stats().poll_events, 0u);
  });
}

TEST_P(TcpTest, FdReuseAfterCloseGetsNoStaleEvents) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    for (int round = 0; round < scaled(200); ++round) {
      auto a = net_test::connected_pair(ln);
      const int fd = a.server.fd();
      a.client.write("stale data for the old connection");
      a.server.close();
      a.client.close();
      // The next connection's server end usually gets the same number.
      auto b = net_test::connected_pair(ln);
      if (b.server.fd() == fd || b.client.fd() == fd) {
        goro::Chan<int> got(1);
        goro::go([&] {
          char buf[8];
          got.send(static_cast<int>(read_full(b.server, buf, 3)));
        });
        // Nothing may wake the reader for the old connection's data.
        goro::sleep_for(1ms);
        EXPECT_FALSE(got.try_recv().has_value());
        b.client.write("new");
        EXPECT_EQ(*got.recv(), 3);
      }
    }
  });
}

TEST_P(TcpTest, ManyConcurrentConnectionsUseFewThreads) {
  run([&] {
    const int n = static_cast<int>(std::min<std::int64_t>(1000, scaled(1000)));
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    goro::WaitGroup served;
    goro::go([&] {
      for (int i = 0; i < n; ++i) {
        served.add(1);
        goro::go([&, c = ln.accept()]() mutable {
          char buf[64];
          while (std::size_t k = c.read(buf, sizeof buf)) c.write(buf, k);
          served.done();
        });
      }
    });
    std::vector<goro::net::Conn> clients;
    clients.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) clients.push_back(goro::net::dial("tcp", ln.addr()));
    // Every server goroutine parks in read: no thread per connection. A few
    // Ms beyond the Ps are fine (sysmon's, blocking()'s; under
    // GORODEBUG=migrate=1 each park hands the P to another M), a thousand
    // are not.
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", n));
    EXPECT_LE(goro::sched_stats().threads, procs() + 8) << "threads while " << n << " connections wait";
    goro::WaitGroup clients_done;
    for (int i = 0; i < n; ++i) {
      clients_done.add(1);
      goro::go([&, i] {
        const std::string msg = std::to_string(i);
        clients[static_cast<std::size_t>(i)].write(msg);
        std::string got(msg.size(), '\0');
        EXPECT_EQ(read_full(clients[static_cast<std::size_t>(i)], got.data(), got.size()), msg.size());
        EXPECT_EQ(got, msg);
        clients[static_cast<std::size_t>(i)].close();
        clients_done.done();
      });
    }
    clients_done.wait();
    served.wait();
    EXPECT_LE(goro::sched_stats().threads, procs() + 8);
  });
}

TEST_P(TcpTest, AServerUnderLoadWhileConnectionsComeAndGo) {
  run([&] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    std::atomic<int> handled{0};
    goro::WaitGroup server;
    server.add(1);
    goro::go([&] {
      goro::WaitGroup conns;
      try {
        for (;;) {
          goro::net::Conn c = ln.accept();
          conns.add(1);
          goro::go([&, c = std::move(c)]() mutable {
            char buf[512];
            try {
              while (std::size_t k = c.read(buf, sizeof buf)) c.write(buf, k);
            } catch (const goro::net::Error&) {
              // a client reset the connection: fine
            }
            ++handled;
            conns.done();
          });
        }
      } catch (const goro::net::Error& e) {
        EXPECT_TRUE(e.closed()) << e.what();
      }
      conns.wait();
      server.done();
    });
    const int clients = 16, rounds = static_cast<int>(scaled(40));
    goro::WaitGroup wg;
    std::atomic<int> ok{0};
    for (int i = 0; i < clients; ++i) {
      wg.add(1);
      goro::go([&, i] {
        for (int r = 0; r < rounds; ++r) {
          goro::net::Conn c = goro::net::dial("tcp", ln.addr());
          const std::string msg(static_cast<std::size_t>(1 + (i * 37 + r * 101) % 3000), static_cast<char>('a' + r % 26));
          c.write(msg);
          std::string got(msg.size(), '\0');
          if (read_full(c, got.data(), got.size()) == msg.size() && got == msg) ++ok;
          if (r % 3 == 0) c.close_write();  // some say goodbye politely, the rest just close
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(ok.load(), clients * rounds);
    ASSERT_TRUE(wait_until([&] { return handled.load() == clients * rounds; }));
    ln.close();
    server.wait();
  });
}

TEST_P(TcpTest, PlainThreadsBlockInTheSameCalls) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    const std::string addr = ln.addr();
    goro::go([&] {
      auto s = ln.accept();
      char buf[16];
      while (std::size_t n = s.read(buf, sizeof buf)) s.write(buf, n);
    });
    std::string got;
    bool timed_out = false, closed = false;
    std::thread t([&] {
      goro::net::Conn c = goro::net::dial("tcp", addr);
      c.write("thread");
      char buf[6];
      read_full(c, buf, 6);
      got.assign(buf, 6);
      c.set_read_deadline(Clock::now() + 20ms);
      try {
        c.read(buf, 1);
      } catch (const goro::net::Error& e) {
        timed_out = e.timeout();
      }
      c.set_read_deadline({});
      // A goroutine closes the connection while this thread waits in read.
      goro::go([fd = &c] {
        goro::sleep_for(10ms);
        fd->close();
      });
      try {
        c.read(buf, 1);
      } catch (const goro::net::Error& e) {
        closed = e.closed();
      }
    });
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(got, "thread");
    EXPECT_TRUE(timed_out);
    EXPECT_TRUE(closed);
  });
}

TEST(TcpOutsideRun, PlainThreadsWorkWithNoRunAtAll) {
  auto ln = goro::net::listen("tcp", "127.0.0.1:0");
  std::thread server([&] {
    auto s = ln.accept();
    char buf[16];
    while (std::size_t n = s.read(buf, sizeof buf)) s.write(buf, n);
  });
  {
    auto c = goro::net::dial("tcp", ln.addr(), 2s);
    c.write("no run");
    char buf[6];
    EXPECT_EQ(read_full(c, buf, 6), 6u);
    EXPECT_EQ(std::string(buf, 6), "no run");
    c.set_read_deadline(Clock::now() + 10ms);
    EXPECT_TRUE(expect_error([&] { c.read(buf, 1); }).timeout());
  }
  server.join();
}

TEST(TcpTeardown, ARunClosesWhatItLeftOpenAndUnwindsParkedReaders) {
  goro::net::Conn leaked;  // outlive the run
  goro::net::Listener leaked_listener;
  std::atomic<bool> unwound{false};
  goro::run(
      [&] {
        auto ln = goro::net::listen("tcp", "127.0.0.1:0");
        auto p = net_test::connected_pair(ln);
        leaked = std::move(p.client);
        goro::go([&unwound, s = std::move(p.server)]() mutable {
          struct Flag {
            std::atomic<bool>* f;
            ~Flag() { *f = true; }
          } flag{&unwound};
          char b;
          s.read(&b, 1);  // parked when main returns
        });
        goro_test::wait_for_waiters("IO wait", 1);
        leaked_listener = std::move(ln);
      },
      goro::Options{.procs = 2});
  EXPECT_TRUE(unwound) << "the parked reader was unwound";
  EXPECT_EQ(goro::last_run_unwound(), 1);
  EXPECT_TRUE(expect_error([&] { leaked.write("x"); }).closed()) << "teardown closed the Conn main left behind";
  EXPECT_TRUE(expect_error([&] { leaked_listener.accept(); }).closed());
}

}  // namespace
