// Tests of select: Go's select semantics, ports of Go's select tests.
#include <atomic>
#include <thread>
#include <vector>

#include "goro/detail/chan_core.hpp"  // chan_waiters
#include "goro_test.hpp"

namespace {

using goro::Chan;
using goro::on_default;
using goro::on_recv;
using goro::on_send;
using goro::select;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;
using namespace std::chrono_literals;

class SelectTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(SelectTest);

TEST_P(SelectTest, ReturnsThePositionOfTheChosenCaseAndRunsItsBody) {
  run([] {
    Chan<int> a(1), b(1);
    b.send(7);
    int got = 0;
    const auto i = select(on_recv(a, [&](std::optional<int> v) { got = -1; (void)v; }),
                          on_recv(b, [&](std::optional<int> v) { got = *v; }));
    EXPECT_EQ(i, 1u);
    EXPECT_EQ(got, 7);
    const auto j = select(on_send(a, 3, [&] { got = 100; }), on_default([&] { got = -2; }));
    EXPECT_EQ(j, 0u);
    EXPECT_EQ(got, 100);
    EXPECT_EQ(a.recv(), 3);
  });
}

// One case and a default takes a path of its own (a non-blocking send or
// receive, as Go compiles it): every outcome, default first and last.
TEST_P(SelectTest, OneCaseAndADefaultBehavesAsASelect) {
  run([] {
    Chan<int> buf(1), unbuf(0), nil;
    std::optional<int> got;
    bool closed_seen = false;
    const auto recv = [&](const Chan<int>& c) {
      got.reset();
      closed_seen = false;
      return select(on_default(), on_recv(c, [&](std::optional<int> v) {
                      got = v;
                      closed_seen = !v;
                    }));
    };
    EXPECT_EQ(recv(buf), 0u) << "empty: default";
    EXPECT_EQ(recv(nil), 0u) << "nil: default";
    EXPECT_EQ(recv(unbuf), 0u) << "no sender: default";
    buf.send(5);
    EXPECT_EQ(recv(buf), 1u);
    EXPECT_EQ(got, 5);
    // A parked sender on an unbuffered channel is taken.
    goro::go([unbuf] { unbuf.send(9); });
    ASSERT_TRUE(wait_until([&] { return recv(unbuf) == 1u; }));
    EXPECT_EQ(got, 9);
    // Closed: the case is chosen, with nothing received.
    buf.send(6);
    buf.close();
    EXPECT_EQ(recv(buf), 1u);
    EXPECT_EQ(got, 6) << "buffered values first";
    EXPECT_EQ(recv(buf), 1u);
    EXPECT_TRUE(closed_seen);
    // Sends: full or no receiver is default; a parked receiver takes it.
    Chan<int> out(1);
    bool sent = false;
    EXPECT_EQ(select(on_send(out, 1, [&] { sent = true; }), on_default()), 0u);
    EXPECT_TRUE(sent);
    EXPECT_EQ(select(on_send(out, 2), on_default()), 1u) << "full";
    EXPECT_EQ(select(on_send(unbuf, 2), on_default()), 1u) << "no receiver";
    EXPECT_EQ(select(on_send(nil, 2), on_default()), 1u) << "nil";
    Chan<int> result(1);
    goro::go([unbuf, result] { result.send(*unbuf.recv()); });
    ASSERT_TRUE(wait_until([&] { return select(on_send(unbuf, 11), on_default()) == 0u; }));
    EXPECT_EQ(result.recv(), 11);
    out.close();
    EXPECT_THROW(select(on_send(out, 3), on_default()), goro::Panic);
  });
}

TEST_P(SelectTest, DefaultRunsWhenNothingIsReadyAndItsPositionIsReturned) {
  run([] {
    Chan<int> a(0), b(0);
    bool ran = false;
    const auto i = select(on_recv(a), on_default([&] { ran = true; }), on_send(b, 1));
    EXPECT_EQ(i, 1u);
    EXPECT_TRUE(ran);
    EXPECT_EQ(goro::detail::chan_waiters(a.core()), 0u);
    EXPECT_EQ(goro::detail::chan_waiters(b.core()), 0u);
  });
}

TEST_P(SelectTest, ReadyCasesAreChosenUniformlyAtRandom) {
  // Port of the idea behind Go's select fairness checks: with several cases
  // ready, each must be picked about equally often.
  run([] {
    constexpr int kCases = 4, kRounds = 40'000;
    std::vector<Chan<int>> chans;
    for (int i = 0; i < kCases; ++i) chans.emplace_back(1);
    int counts[kCases] = {};
    for (int r = 0; r < kRounds; ++r) {
      for (auto& c : chans) c.try_send(1);  // all ready
      const auto i = select(on_recv(chans[0]), on_recv(chans[1]), on_recv(chans[2]), on_recv(chans[3]));
      ++counts[i];
    }
    for (int i = 0; i < kCases; ++i) {
      // Expected 10,000 each; 5 standard deviations is about +-430.
      EXPECT_NEAR(counts[i], kRounds / kCases, 600) << "case " << i;
    }
  });
}

TEST_P(SelectTest, ANilChannelCaseIsNeverReady) {
  run([] {
    Chan<int> nil;
    Chan<int> ready(1);
    ready.send(1);
    for (int i = 0; i < 100; ++i) {
      const auto k = select(on_recv(nil), on_send(nil, 1), on_recv(ready), on_default());
      EXPECT_EQ(k, 2u);
      ready.send(1);
    }
    EXPECT_EQ(select(on_recv(nil), on_default()), 1u);
  });
}

TEST_P(SelectTest, AClosedChannelCaseReceivesNothing) {
  run([] {
    Chan<int> ch(0);
    ch.close();
    bool closed = false;
    select(on_recv(ch, [&](std::optional<int> v) { closed = !v.has_value(); }));
    EXPECT_TRUE(closed);
  });
}

TEST_P(SelectTest, ASendCaseOnAClosedChannelPanics) {
  run([] {
    Chan<int> ch(1);
    ch.close();
    try {
      select(on_send(ch, 1), on_default());
      FAIL() << "no panic";
    } catch (const goro::Panic& p) {
      EXPECT_STREQ(p.what(), "send on closed channel");
    }
  });
}

TEST_P(SelectTest, TimeoutWithAfter) {
  run([] {
    Chan<int> never(0);
    bool timed_out = false;
    const auto t0 = std::chrono::steady_clock::now();
    select(on_recv(never), on_recv(goro::after(5ms), [&](auto) { timed_out = true; }));
    EXPECT_TRUE(timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 5ms);
    EXPECT_EQ(goro::detail::chan_waiters(never.core()), 0u) << "the losing case left a waiter behind";
  });
}

TEST_P(SelectTest, AWokenSelectLeavesNoWaiterInAnyQueue) {
  run([] {
    Chan<int> a(0), b(0), c(0);
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      select(on_recv(a), on_recv(b), on_send(c, 1));
      wg.done();
    });
    ASSERT_TRUE(wait_until([&] { return goro::detail::chan_waiters(a.core()) == 1; }));
    b.send(1);
    wg.wait();
    EXPECT_EQ(goro::detail::chan_waiters(a.core()), 0u);
    EXPECT_EQ(goro::detail::chan_waiters(b.core()), 0u);
    EXPECT_EQ(goro::detail::chan_waiters(c.core()), 0u);
  });
}

TEST_P(SelectTest, TheSameChannelTwiceInOneSelect) {
  run([] {
    Chan<int> ch(0);
    goro::go([ch]() mutable {
      for (int i = 0; i < 100; ++i) ch.send(i);
      ch.close();
    });
    int sum = 0;
    for (bool open = true; open;) {
      select(on_recv(ch, [&](std::optional<int> v) { v ? void(sum += *v) : void(open = false); }),
             on_recv(ch, [&](std::optional<int> v) { v ? void(sum += *v) : void(open = false); }));
    }
    EXPECT_EQ(sum, 99 * 100 / 2);
    EXPECT_EQ(goro::detail::chan_waiters(ch.core()), 0u);
  });
}

TEST_P(SelectTest, SendAndReceiveCasesOnTheSameChannelDoNotMatchEachOther) {
  run([] {
    Chan<int> ch(0);
    const auto i = select(on_send(ch, 1), on_recv(ch), on_default());
    EXPECT_EQ(i, 2u);
  });
}

// Port of test/chan/doubleselect.go: senders select over several channels;
// receivers on each; every value must be received exactly once.
TEST_P(SelectTest, DoubleSelectDeliversEachValueExactlyOnce) {
  const int n = static_cast<int>(scaled(20'000));
  run([n] {
    Chan<int> c1(0), c2(0), c3(0), c4(0);
    goro::go([=]() mutable {
      for (int i = 1; i <= n; ++i) {
        select(on_send(c1, i), on_send(c2, i), on_send(c3, i), on_send(c4, i));
      }
      c1.close();
      c2.close();
      c3.close();
      c4.close();
    });
    Chan<int> merged(0);
    goro::WaitGroup recv;
    recv.add(4);
    for (Chan<int> c : {c1, c2, c3, c4}) {
      goro::go([&, c, merged]() mutable {
        for (int v : c) merged.send(v);
        recv.done();
      });
    }
    goro::go([&, merged]() mutable {
      recv.wait();
      merged.close();
    });
    std::vector<int> seen(static_cast<std::size_t>(n) + 1);
    for (int v : merged) ++seen[static_cast<std::size_t>(v)];
    for (int i = 1; i <= n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1) << "value " << i;
  });
}

TEST_P(SelectTest, SelectsSharingChannelsInOppositeOrdersDoNotDeadlock) {
  const int n = static_cast<int>(scaled(5'000));
  run([n] {
    Chan<int> a(0), b(0);
    goro::WaitGroup wg;
    wg.add(4);
    goro::go([&] {
      for (int i = 0; i < n; ++i) select(on_send(a, i), on_send(b, i));
      wg.done();
    });
    goro::go([&] {
      for (int i = 0; i < n; ++i) select(on_send(b, i), on_send(a, i));
      wg.done();
    });
    std::atomic<int> got{0};
    for (int k = 0; k < 2; ++k) {
      goro::go([&] {
        for (int i = 0; i < n; ++i) {
          select(on_recv(b, [&](auto) { got.fetch_add(1); }), on_recv(a, [&](auto) { got.fetch_add(1); }));
        }
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(got.load(), 2 * n);
  });
}

TEST_P(SelectTest, CloseRacingWithABlockedSelectWakesIt) {
  const int rounds = static_cast<int>(scaled(2'000));
  run([rounds] {
    for (int r = 0; r < rounds; ++r) {
      Chan<int> a(0), b(0);
      goro::WaitGroup wg;
      wg.add(1);
      bool closed_seen = false;
      goro::go([&] {
        select(on_recv(a, [&](std::optional<int> v) { closed_seen = !v; }),
               on_recv(b, [&](std::optional<int> v) { closed_seen = !v; }));
        wg.done();
      });
      if (r % 2) goro::yield();
      a.close();
      wg.wait();
      EXPECT_TRUE(closed_seen);
      EXPECT_EQ(goro::detail::chan_waiters(b.core()), 0u);
    }
  });
}

TEST_P(SelectTest, WorksOnPlainThreads) {
  run([] {
    Chan<int> a(0), b(0);
    std::thread t([&] {
      int got = 0;
      select(on_recv(a, [&](auto v) { got = *v; }), on_recv(b, [&](auto v) { got = *v; }));
      EXPECT_EQ(got, 9);
    });
    b.send(9);
    t.join();
  });
}

TEST_P(SelectTest, SelectWithNoCasesBlocksForever) {
  goro::run(
      [] {
        goro::go([] { select(); });
        ASSERT_TRUE(wait_until([] {
          for (const auto& g : goro::goroutines()) {
            if (g.wait_reason == "select (no cases)") return true;
          }
          return false;
        }));
      },
      goro::Options{.procs = procs()});
  EXPECT_EQ(goro::last_run_unwound(), 1);
}

TEST_P(SelectTest, SelectStress) {
  // Many goroutines select over shared channels in send and receive roles.
  const int n = static_cast<int>(scaled(2'000));
  run([n] {
    std::vector<Chan<int>> chans;
    for (int i = 0; i < 4; ++i) chans.emplace_back(i % 2);
    std::atomic<std::int64_t> sent{0}, received{0};
    goro::WaitGroup senders, receivers;
    senders.add(8);
    receivers.add(8);
    for (int s = 0; s < 8; ++s) {
      goro::go([&, s] {
        for (int i = 0; i < n; ++i) {
          select(on_send(chans[static_cast<std::size_t>(s % 4)], 1), on_send(chans[static_cast<std::size_t>((s + 1) % 4)], 1),
                 on_send(chans[static_cast<std::size_t>((s + 2) % 4)], 1));
          sent.fetch_add(1);
        }
        senders.done();
      });
    }
    Chan<Unit> stop(0);
    for (int r = 0; r < 8; ++r) {
      goro::go([&, r, stop] {
        for (bool running = true; running;) {
          select(on_recv(chans[static_cast<std::size_t>(r % 4)], [&](auto) { received.fetch_add(1); }),
                 on_recv(chans[static_cast<std::size_t>((r + 3) % 4)], [&](auto) { received.fetch_add(1); }),
                 on_recv(stop, [&](auto) { running = false; }));
        }
        receivers.done();
      });
    }
    senders.wait();
    ASSERT_TRUE(wait_until([&] { return received.load() == sent.load(); }));
    stop.close();
    receivers.wait();
    for (auto& c : chans) EXPECT_EQ(goro::detail::chan_waiters(c.core()), 0u);
  });
}

}  // namespace
