// Tests of Chan<T>: Go's channel semantics, ports of Go's test/chan programs.
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "goro/detail/chan_core.hpp"  // chan_waiters
#include "goro/park.hpp"  // park/ready: goro's internal seam
#include "goro_test.hpp"

namespace {

using goro::Chan;
using goro::Panic;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;

class ChanTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(ChanTest);

std::string panic_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Panic& p) {
    return p.what();
  }
  return "no panic";
}

TEST_P(ChanTest, UnbufferedSendCompletesOnlyWhenTheValueIsReceived) {
  run([] {
    Chan<int> ch(0);
    std::atomic<bool> sent{false};
    goro::go([&, ch]() mutable {
      ch.send(1);
      sent = true;
    });
    goro::sleep_for(2ms);
    EXPECT_FALSE(sent.load()) << "send completed with no receiver";
    EXPECT_EQ(ch.recv(), 1);
    EXPECT_TRUE(wait_until([&] { return sent.load(); }));
  });
}

TEST_P(ChanTest, BufferedChannelDeliversInFifoOrder) {
  run([] {
    Chan<int> ch(100);
    for (int i = 0; i < 100; ++i) ch.send(i);
    EXPECT_EQ(ch.size(), 100u);
    EXPECT_EQ(ch.capacity(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(ch.recv(), i);
    EXPECT_EQ(ch.size(), 0u);
  });
}

TEST_P(ChanTest, BlockedSendersAreServedInFifoOrderAfterTheBuffer) {
  // Port of test/chan/fifo.go's AsynchFifo: values come out in send order
  // even when senders queue behind a full buffer.
  run([] {
    Chan<int> ch(3);
    for (int i = 0; i < 3; ++i) ch.send(i);
    for (int i = 3; i < 10; ++i) {
      goro::go([ch, i]() mutable { ch.send(i); });
      // Let each sender park before the next one starts.
      ASSERT_TRUE(wait_until([&] { return goro::detail::chan_waiters(ch.core()) == static_cast<std::size_t>(i - 2); }));
    }
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ch.recv(), i);
  });
}

TEST_P(ChanTest, ChainOfGoroutinesPreservesOrder) {
  // Port of test/chan/fifo.go's SynchFifo: a chain of N goroutines, each
  // waiting for its predecessor, sending in order on one channel.
  run([] {
    constexpr int N = 10;
    Chan<int> ch(0);
    Chan<Unit> in(0);
    Chan<Unit> start = in;
    for (int i = 0; i < N; ++i) {
      Chan<Unit> out(0);
      goro::go([ch, in, out, i]() mutable {
        in.recv();
        ch.send(i);
        out.send(Unit{});
      });
      in = out;
    }
    start.send(Unit{});
    for (int i = 0; i < N; ++i) EXPECT_EQ(ch.recv(), i);
    in.recv();
  });
}

TEST_P(ChanTest, ValuesBufferedAtCloseAreStillDelivered) {
  run([] {
    Chan<int> ch(3);
    ch.send(1);
    ch.send(2);
    ch.close();
    EXPECT_TRUE(ch.closed());
    EXPECT_EQ(ch.recv(), 1);
    EXPECT_EQ(ch.recv(), 2);
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.recv(), std::nullopt) << "a closed channel keeps answering";
  });
}

TEST_P(ChanTest, CloseWakesAllBlockedReceivers) {
  run([] {
    Chan<int> ch(0);
    constexpr int n = 50;
    std::atomic<int> woke_empty{0};
    goro::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, ch]() mutable {
        if (!ch.recv().has_value()) woke_empty.fetch_add(1);
        wg.done();
      });
    }
    ASSERT_TRUE(wait_until([&] { return goro::detail::chan_waiters(ch.core()) == n; }));
    ch.close();
    wg.wait();
    EXPECT_EQ(woke_empty.load(), n);
  });
}

TEST_P(ChanTest, CloseMakesEveryBlockedSenderPanic) {
  run([] {
    Chan<int> ch(0);
    constexpr int n = 20;
    std::atomic<int> panicked{0};
    goro::WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      goro::go([&, ch]() mutable {
        if (panic_text([&] { ch.send(1); }) == "send on closed channel") panicked.fetch_add(1);
        wg.done();
      });
    }
    ASSERT_TRUE(wait_until([&] { return goro::detail::chan_waiters(ch.core()) == n; }));
    ch.close();
    wg.wait();
    EXPECT_EQ(panicked.load(), n);
  });
}

TEST_P(ChanTest, MisuseRaisesGosPanics) {
  run([] {
    Chan<int> ch(1);
    ch.close();
    EXPECT_EQ(panic_text([&] { ch.send(1); }), "send on closed channel");
    EXPECT_EQ(panic_text([&] { ch.try_send(1); }), "send on closed channel");
    EXPECT_EQ(panic_text([&] { ch.close(); }), "close of closed channel");
    Chan<int> nil;
    EXPECT_EQ(panic_text([&] { nil.close(); }), "close of nil channel");
  });
}

TEST_P(ChanTest, NonBlockingOperations) {
  // Port of test/chan/nonblock.go's essentials.
  run([] {
    Chan<int> unbuffered(0);
    EXPECT_FALSE(unbuffered.try_send(1)) << "no receiver";
    EXPECT_EQ(unbuffered.try_recv(), std::nullopt) << "no sender";
    Chan<int> buffered(1);
    EXPECT_TRUE(buffered.try_send(1));
    EXPECT_FALSE(buffered.try_send(2)) << "full";
    EXPECT_EQ(buffered.try_recv(), 1);
    EXPECT_EQ(buffered.try_recv(), std::nullopt) << "empty";
    // A parked receiver makes a try_send succeed on an unbuffered channel.
    std::atomic<int> got{0};
    goro::go([&, unbuffered]() mutable { got = *unbuffered.recv(); });
    ASSERT_TRUE(wait_until([&] { return unbuffered.try_send(7); }));
    EXPECT_TRUE(wait_until([&] { return got.load() == 7; }));
    // And a parked sender makes try_recv succeed.
    goro::go([unbuffered]() mutable { unbuffered.send(8); });
    std::optional<int> v;
    ASSERT_TRUE(wait_until([&] { return (v = unbuffered.try_recv()).has_value(); }));
    EXPECT_EQ(v, 8);
    Chan<int> nil;
    EXPECT_FALSE(nil.try_send(1));
    EXPECT_EQ(nil.try_recv(), std::nullopt);
  });
}

TEST_P(ChanTest, NilChannelOperationsBlockForever) {
  goro::run(
      [] {
        Chan<int> nil;
        goro::go([nil]() mutable { nil.send(1); });
        goro::go([nil]() mutable { nil.recv(); });
        ASSERT_TRUE(wait_until([] {
          int nil_waits = 0;
          for (const auto& g : goro::goroutines()) {
            nil_waits += g.wait_reason == "chan send (nil chan)" || g.wait_reason == "chan receive (nil chan)";
          }
          return nil_waits == 2;
        }));
      },
      goro::Options{.procs = procs()});
  EXPECT_EQ(goro::last_run_unwound(), 2) << "the two blocked goroutines are unwound at exit";
}

TEST_P(ChanTest, WaitReasonsAreRecorded) {
  run([] {
    Chan<int> in(0), out(0);
    goro::go([in]() mutable { in.recv(); });
    goro::go([out]() mutable { out.send(1); });
    ASSERT_TRUE(wait_until([] {
      int recv = 0, send = 0;
      for (const auto& g : goro::goroutines()) {
        recv += g.wait_reason == "chan receive";
        send += g.wait_reason == "chan send";
      }
      return recv >= 1 && send == 1;
    }));
    in.send(1);
    out.recv();
  });
}

TEST_P(ChanTest, MoveOnlyValuesAreMoved) {
  run([] {
    Chan<std::unique_ptr<int>> ch(1);
    ch.send(std::make_unique<int>(5));
    auto v = ch.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(**v, 5);
    Chan<std::unique_ptr<int>> sync(0);
    goro::go([sync]() mutable { sync.send(std::make_unique<int>(6)); });
    EXPECT_EQ(**sync.recv(), 6);
  });
}

TEST_P(ChanTest, ZeroSizeValues) {
  run([] {
    Chan<Unit> ch(2);
    ch.send(Unit{});
    ch.send(Unit{});
    EXPECT_EQ(ch.size(), 2u);
    EXPECT_TRUE(ch.recv().has_value());
    Chan<Unit> done(0);
    goro::go([done]() mutable { done.close(); });
    EXPECT_FALSE(done.recv().has_value());
  });
}

TEST_P(ChanTest, BufferedValuesAreDestroyedWithTheChannel) {
  struct Counted {
    std::shared_ptr<int> live;
  };
  auto token = std::make_shared<int>(0);
  run([&] {
    Chan<Counted> ch(4);
    ch.send(Counted{token});
    ch.send(Counted{token});
    EXPECT_EQ(token.use_count(), 3);
  });
  EXPECT_EQ(token.use_count(), 1);
}

TEST_P(ChanTest, CopiesOfAHandleShareOneChannel) {
  run([] {
    Chan<int> a(1);
    Chan<int> b = a;
    EXPECT_TRUE(a == b);
    b.send(3);
    EXPECT_EQ(a.recv(), 3);
    Chan<int> c(1);
    EXPECT_FALSE(a == c);
    EXPECT_TRUE(Chan<int>() == Chan<int>()) << "nil equals nil";
  });
}

TEST_P(ChanTest, RangeForReceivesUntilClosed) {
  run([] {
    Chan<int> ch(0);
    goro::go([ch]() mutable {
      for (int i = 0; i < 100; ++i) ch.send(i);
      ch.close();
    });
    int expect = 0;
    for (int v : ch) EXPECT_EQ(v, expect++);
    EXPECT_EQ(expect, 100);
  });
}

TEST_P(ChanTest, PlainThreadsAndGoroutinesShareChannels) {
  const std::int64_t n = scaled(20'000);
  run([n] {
    Chan<std::int64_t> to_goroutine(0), to_thread(0);
    std::thread t([&] {
      std::int64_t sum = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        to_goroutine.send(i);              // a thread blocked on a goroutine
        sum += *to_thread.recv();
      }
      to_goroutine.close();
      EXPECT_EQ(sum, n * (n + 1) / 2);
    });
    for (std::int64_t v : to_goroutine) to_thread.send(v + 1);
    t.join();
  });
}

// Port of test/chan/sieve1.go: the concurrent prime sieve.
TEST_P(ChanTest, PrimeSieve) {
  goro::run([] {
    Chan<int> ch(0);
    goro::go([ch]() mutable {
      for (int i = 2;; ++i) ch.send(i);
    });
    std::vector<int> primes;
    std::vector<Chan<int>> stages;
    for (int i = 0; i < 100; ++i) {
      const int prime = *ch.recv();
      primes.push_back(prime);
      Chan<int> next(0);
      goro::go([in = ch, out = next, prime]() mutable {
        for (;;) {
          const int v = *in.recv();
          if (v % prime != 0) out.send(v);
        }
      });
      ch = next;
    }
    EXPECT_EQ(primes.front(), 2);
    EXPECT_EQ(primes[9], 29);
    EXPECT_EQ(primes.back(), 541);
  }, goro::Options{.procs = procs()});
  // The sieve runs forever: the generator and the 100 stages are still
  // parked when main returns, and run() unwinds them.
  EXPECT_EQ(goro::last_run_unwound(), 101);
}

TEST_P(ChanTest, ManyProducersAndConsumersLoseNothing) {
  const std::int64_t per = scaled(20'000);
  constexpr int kProducers = 8, kConsumers = 8;
  run([per] {
    Chan<std::int64_t> ch(16);
    std::atomic<std::int64_t> sum{0}, count{0};
    goro::WaitGroup prod, cons;
    prod.add(kProducers);
    cons.add(kConsumers);
    for (int p = 0; p < kProducers; ++p) {
      goro::go([&, ch, p]() mutable {
        for (std::int64_t i = 0; i < per; ++i) ch.send(p * per + i);
        prod.done();
      });
    }
    for (int c = 0; c < kConsumers; ++c) {
      goro::go([&, ch]() mutable {
        for (std::int64_t v : ch) {
          sum.fetch_add(v);
          count.fetch_add(1);
        }
        cons.done();
      });
    }
    prod.wait();
    ch.close();
    cons.wait();
    const std::int64_t n = kProducers * per;
    EXPECT_EQ(count.load(), n);
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  });
}

TEST_P(ChanTest, CloseRacingWithSendsLosesNothing) {
  // Every send either delivers its value or panics; never both, never neither.
  const int rounds = static_cast<int>(scaled(200));
  run([rounds] {
    for (int r = 0; r < rounds; ++r) {
      Chan<int> ch(4);
      std::atomic<int> sent{0}, panicked{0};
      goro::WaitGroup wg;
      constexpr int kSenders = 8;
      wg.add(kSenders);
      for (int s = 0; s < kSenders; ++s) {
        goro::go([&, ch]() mutable {
          for (int i = 0; i < 10; ++i) {
            try {
              ch.send(1);
              sent.fetch_add(1);
            } catch (const Panic&) {
              panicked.fetch_add(1);
              break;
            }
          }
          wg.done();
        });
      }
      int received = 0;
      for (int i = 0; i < 5; ++i) received += ch.recv().has_value();
      ch.close();
      wg.wait();
      while (ch.recv().has_value()) ++received;
      EXPECT_EQ(received, sent.load()) << "round " << r;
      EXPECT_EQ(goro::detail::chan_waiters(ch.core()), 0u);
    }
  });
}

}  // namespace
