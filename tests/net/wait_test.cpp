// goro::wait_readable / wait_writable on descriptors goro does not own,
// and how the poller meets the rest of the runtime (the deadlock check,
// run()'s teardown).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "net_test_util.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using namespace std::chrono_literals;
using net_test::Clock;

class WaitTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(WaitTest);

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    ::close(r);
    ::close(w);
  }
  void put(char c = 'x') const { EXPECT_EQ(::write(w, &c, 1), 1); }
  char take() const {
    char c = 0;
    EXPECT_EQ(::read(r, &c, 1), 1);
    return c;
  }
};

TEST_P(WaitTest, ParksUntilAPipeIsReadable) {
  run([] {
    Pipe p;
    goro::Chan<bool> result(1);
    goro::go([&] { result.send(goro::wait_readable(p.r)); });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    EXPECT_FALSE(result.try_recv().has_value());
    p.put('a');
    EXPECT_TRUE(*result.recv());
    EXPECT_EQ(p.take(), 'a');
    EXPECT_EQ(goro::sched_stats().io_waiters, 0);
  });
}

TEST_P(WaitTest, ReturnsFalseWhenTheDeadlinePassesFirst) {
  run([] {
    Pipe p;
    const auto start = Clock::now();
    EXPECT_FALSE(goro::wait_readable(p.r, start + 20ms));
    EXPECT_GE(Clock::now() - start, 20ms);
    EXPECT_FALSE(goro::wait_readable(p.r, start - 1s)) << "a past deadline does not wait";
    p.put();
    EXPECT_TRUE(goro::wait_readable(p.r, start - 1s)) << "ready beats a past deadline";
  });
}

TEST_P(WaitTest, WritableOnceAFullPipeIsDrained) {
  run([] {
    Pipe p;
    EXPECT_TRUE(goro::wait_writable(p.w));
    char buf[4096] = {};
    while (::write(p.w, buf, sizeof buf) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
    goro::Chan<bool> result(1);
    goro::go([&] { result.send(goro::wait_writable(p.w, Clock::now() + 10s)); });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    while (::read(p.r, buf, sizeof buf) > 0) {
    }
    EXPECT_TRUE(*result.recv());
  });
}

TEST_P(WaitTest, AnEventfdWrittenByAPlainThread) {
  run([] {
    const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    ASSERT_GE(efd, 0);
    goro::WaitGroup wg;
    std::atomic<int> woken{0};
    for (int i = 0; i < 4; ++i) {  // several waiters on one descriptor
      wg.add(1);
      goro::go([&] {
        if (goro::wait_readable(efd)) ++woken;
        wg.done();
      });
    }
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 4));
    std::thread t([efd] {
      const std::uint64_t one = 1;
      EXPECT_EQ(::write(efd, &one, sizeof one), 8);
    });
    wg.wait();
    t.join();
    EXPECT_EQ(woken.load(), 4);
    ::close(efd);
  });
}

TEST_P(WaitTest, WaitsOnADescriptorGoroNetAlreadyWatches) {
  run([] {
    auto ln = goro::net::listen("tcp", "127.0.0.1:0");
    auto p = net_test::connected_pair(ln);
    goro::Chan<bool> result(1);
    goro::go([&] { result.send(goro::wait_readable(p.server.fd(), Clock::now() + 10s)); });
    ASSERT_TRUE(goro_test::wait_for_waiters("IO wait", 1));
    p.client.write("x");
    EXPECT_TRUE(*result.recv());
    char b;
    EXPECT_EQ(p.server.read(&b, 1), 1u);
  });
}

TEST_P(WaitTest, PlainThreadsBlockInstead) {
  run([] {
    Pipe p;
    bool ready = false, late = true;
    std::atomic<bool> timed_out{false};
    std::thread t([&] {
      late = goro::wait_readable(p.r, Clock::now() + 10ms);
      timed_out = true;
      ready = goro::wait_readable(p.r);
    });
    // The byte comes only after the deadline has passed for the thread (a
    // fixed sleep here let a thread that started late see it in time).
    EXPECT_TRUE(goro_test::wait_until([&] { return timed_out.load(); }));
    p.put();
    goro::blocking([&] { t.join(); });
    EXPECT_FALSE(late);
    EXPECT_TRUE(ready);
  });
}

TEST_P(WaitTest, RegularFilesAreAlwaysReadyAndBadDescriptorsThrow) {
  run([] {
    char tmpl[] = "/tmp/goro-wait-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::unlink(tmpl);
    EXPECT_TRUE(goro::wait_readable(fd));
    EXPECT_TRUE(goro::wait_writable(fd));
    ::close(fd);
    EXPECT_THROW(goro::wait_readable(fd), std::system_error);
  });
}

TEST_P(WaitTest, ManyGoroutinesOnManyPipes) {
  run([] {
    const int n = static_cast<int>(scaled(200));
    std::vector<std::unique_ptr<Pipe>> pipes;
    for (int i = 0; i < n; ++i) pipes.push_back(std::make_unique<Pipe>());
    goro::WaitGroup wg;
    std::atomic<int> got{0};
    for (int i = 0; i < n; ++i) {
      wg.add(1);
      goro::go([&, i] {
        const Pipe& p = *pipes[static_cast<std::size_t>(i)];
        for (int round = 0; round < 5; ++round) {
          while (!goro::wait_readable(p.r)) {
          }
          char c;
          while (::read(p.r, &c, 1) != 1) goro::wait_readable(p.r);
          ++got;
        }
        wg.done();
      });
    }
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < n; ++i) pipes[static_cast<std::size_t>(i)]->put();
      goro::yield();
    }
    wg.wait();
    EXPECT_EQ(got.load(), 5 * n);
  });
}

TEST(WaitTeardown, AGoroutineParkedInWaitReadableIsUnwound) {
  Pipe p;
  std::int64_t registered_before = -1;
  goro::run([&] {
    registered_before = goro::sched_stats().poll_descriptors;
    goro::go([&] { goro::wait_readable(p.r); });
    goro_test::wait_for_waiters("IO wait", 1);
  });
  EXPECT_EQ(goro::last_run_unwound(), 1);
  goro::run([&] {
    EXPECT_EQ(goro::sched_stats().poll_descriptors, registered_before) << "the wait's registration was removed";
    EXPECT_EQ(goro::sched_stats().io_waiters, 0);
  });
}

// A process whose goroutines all wait on I/O is not deadlocked: another
// process may connect. A child process (not a thread: threads silence the
// detector anyway) connects after a while; main's accept must be served.
TEST(NetDeadlock, GoroutinesInIOWaitAreNotDeadlocked) {
  goro::run([] {
    auto ln = goro::net::listen("tcp4", "127.0.0.1:0");
    const int port = net_test::port_of(ln.addr());
    const pid_t child = ::fork();
    if (child == 0) {
      // Async-signal-safe calls only: the parent has other threads.
      struct timespec ts{0, 200'000'000};
      ::nanosleep(&ts, nullptr);
      const int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<std::uint16_t>(port));
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      const int rc = ::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
      ::_exit(rc == 0 && ::write(s, "c", 1) == 1 ? 0 : 1);
    }
    ASSERT_GT(child, 0);
    auto c = ln.accept();  // every goroutine (just main) waits on I/O meanwhile
    char b = 0;
    EXPECT_EQ(net_test::read_full(c, &b, 1), 1u);
    EXPECT_EQ(b, 'c');
    int status = 0;
    goro::blocking([&] { ::waitpid(child, &status, 0); });
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  });
}

}  // namespace
