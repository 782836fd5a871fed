// Tests of blocking(): the P is handed to another thread while a goroutine
// waits in a system call.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using namespace std::chrono_literals;

class BlockingTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(BlockingTest);

struct Pipe {
  int fds[2];
  Pipe() { EXPECT_EQ(::pipe(fds), 0); }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  // read_one waits up to 10 s for a byte: true if one arrived.
  bool read_one() const {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return false;
    char c;
    return ::read(fds[0], &c, 1) == 1;
  }
  void write_one() const { EXPECT_EQ(::write(fds[1], "x", 1), 1); }
};

TEST_P(BlockingTest, OtherGoroutinesRunWhileOneWaitsInABlockingCall) {
  // On one P this only works if sysmon hands the P over: the writer cannot
  // run until the reader's thread gives it up.
  run([] {
    Pipe pipe;
    goro::WaitGroup wg;
    wg.add(2);
    bool got = false;
    goro::go([&] {
      got = goro::blocking([&] { return pipe.read_one(); });
      wg.done();
    });
    goro::go([&] {
      pipe.write_one();
      wg.done();
    });
    wg.wait();
    EXPECT_TRUE(got) << "the writer never ran while the reader blocked";
  });
}

TEST_P(BlockingTest, ManyGoroutinesBlockAtOnceWithoutStarvingTheRest) {
  // More blocked goroutines than Ps: every P must be handed off, repeatedly.
  run([] {
    constexpr int kReaders = 16;
    Pipe pipe;
    std::atomic<int> got{0};
    goro::WaitGroup wg;
    wg.add(kReaders);
    for (int i = 0; i < kReaders; ++i) {
      goro::go([&] {
        if (goro::blocking([&] { return pipe.read_one(); })) got.fetch_add(1);
        wg.done();
      });
    }
    goro::go([&] {
      for (int i = 0; i < kReaders; ++i) pipe.write_one();
    });
    wg.wait();
    EXPECT_EQ(got.load(), kReaders);
    EXPECT_GE(goro::sched_stats().blocking_calls, static_cast<std::uint64_t>(kReaders));
  });
}

TEST_P(BlockingTest, HandoffsAreCounted) {
  run([] {
    const auto before = goro::sched_stats().handoffs;
    goro::blocking([] { std::this_thread::sleep_for(60ms); });
    EXPECT_GT(goro::sched_stats().handoffs, before);
  });
}

TEST_P(BlockingTest, ReturnsTheResultAndPropagatesExceptions) {
  run([] {
    EXPECT_EQ(goro::blocking([] { return 42; }), 42);
    int x = 1;
    int& r = goro::blocking([&]() -> int& { return x; });
    EXPECT_EQ(&r, &x);
    EXPECT_THROW(goro::blocking([]() -> int { throw std::runtime_error("io"); }), std::runtime_error);
    // The goroutine is still a well-behaved goroutine afterwards.
    goro::yield();
    goro::sleep_for(1ms);
  });
}

TEST_P(BlockingTest, ParkingInsideABlockingCallWorks) {
  run([] {
    goro::Chan<int> ch(0);
    goro::go([ch]() mutable { ch.send(5); });
    const int v = goro::blocking([&] { return *ch.recv(); });
    EXPECT_EQ(v, 5);
  });
}

TEST_P(BlockingTest, OnAPlainThreadItJustCallsTheFunction) {
  EXPECT_EQ(goro::blocking([] { return 3; }), 3);
}

}  // namespace
