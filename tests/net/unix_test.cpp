// Unix domain sockets (after Go's net/unixsock_test.go).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using net_test::expect_error;
using net_test::read_full;

class UnixTest : public RuntimeTest {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/goro-net-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ::unlink(path().c_str());
    ::rmdir(dir_.c_str());
  }
  std::string path() const { return dir_ + "/sock"; }

 private:
  std::string dir_;
};
GORO_INSTANTIATE_PROCS(UnixTest);

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

TEST_P(UnixTest, EchoesOverASocketFile) {
  run([&] {
    auto ln = goro::net::listen("unix", path());
    EXPECT_EQ(ln.addr(), path());
    goro::go([&] {
      auto s = ln.accept();
      EXPECT_EQ(s.local_addr(), path());
      char buf[64];
      while (std::size_t n = s.read(buf, sizeof buf)) s.write(buf, n);
    });
    auto c = goro::net::dial("unix", path());
    EXPECT_EQ(c.remote_addr(), path());
    EXPECT_EQ(c.local_addr(), "") << "the dialing end is unnamed";
    for (int i = 0; i < 50; ++i) {
      const std::string msg = "message " + std::to_string(i);
      c.write(msg);
      std::string got(msg.size(), '\0');
      ASSERT_EQ(read_full(c, got.data(), got.size()), msg.size());
      EXPECT_EQ(got, msg);
    }
    c.close_write();
    EXPECT_EQ(net_test::read_all(c), "");
  });
}

TEST_P(UnixTest, CloseRemovesTheSocketFileAndTheNameCanBeReused) {
  run([&] {
    auto ln = goro::net::listen("unix", path());
    EXPECT_TRUE(exists(path()));
    auto e = expect_error([&] { goro::net::listen("unix", path()); });
    EXPECT_EQ(std::string(e.what()), "listen unix " + path() + ": bind: address already in use");
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    ln.close();
    EXPECT_FALSE(exists(path()));
    auto again = goro::net::listen("unix", path());
    EXPECT_EQ(again.addr(), path());
  });
}

TEST_P(UnixTest, DialingAMissingPathFails) {
  run([&] {
    auto e = expect_error([&] { goro::net::dial("unix", path()); });
    EXPECT_EQ(std::string(e.what()), "dial unix " + path() + ": connect: no such file or directory");
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory);
  });
}

TEST_P(UnixTest, AbstractNamespace) {
  run([&] {
    const std::string name = "@goro-net-test-" + std::to_string(::getpid()) + "-" + std::to_string(GetParam());
    auto ln = goro::net::listen("unix", name);
    EXPECT_EQ(ln.addr(), name);
    goro::go([&] { ln.accept().write("abstract"); });
    auto c = goro::net::dial("unix", name);
    EXPECT_EQ(net_test::read_all(c), "abstract");
  });
}

TEST_P(UnixTest, CloseWakesTheParkedReaderAndThePeerSeesEndOfStream) {
  run([&] {
    auto ln = goro::net::listen("unix", path());
    auto p = net_test::connected_pair(ln, "unix");
    goro::Chan<std::string> server_end(1), client_end(1);
    goro::go([&] {
      char b;
      try {
        server_end.send(std::to_string(p.server.read(&b, 1)));
      } catch (const goro::net::Error& e) {
        server_end.send(e.closed() ? "closed" : e.what());
      }
    });
    goro::go([&] {
      char b;
      client_end.send(std::to_string(p.client.read(&b, 1)));
    });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 2));
    p.server.close();
    EXPECT_EQ(*server_end.recv(), "closed");
    EXPECT_EQ(*client_end.recv(), "0") << "end of stream";
  });
}

}  // namespace
