// Micro-benchmarks of channels and select.
#include <benchmark/benchmark.h>

#include <chrono>
#include <optional>

#include "goro/goro.hpp"

namespace {

void BM_ChanUnbufferedPingPong(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<int> ping(0), pong(0);
    goro::WaitGroup echo;
    echo.add(1);
    goro::go([ping, pong, &echo]() mutable {
      for (int v : ping) pong.send(v);
      echo.done();
    });
    for (auto _ : state) {
      ping.send(1);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
    echo.wait();
  }, goro::Options{.procs = static_cast<int>(state.range(0))});
}
BENCHMARK(BM_ChanUnbufferedPingPong)->Arg(1)->Arg(2);

void BM_ChanBufferedSendRecv(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<int> ch(1024);
    for (auto _ : state) {
      ch.send(1);
      benchmark::DoNotOptimize(ch.recv());
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_ChanBufferedSendRecv);

void BM_SelectTwoReady(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<int> a(1), b(1);
    for (auto _ : state) {
      a.try_send(1);
      b.try_send(1);
      goro::select(goro::on_recv(a), goro::on_recv(b));
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_SelectTwoReady);

void BM_TrySendTryRecvFastPath(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<int> ch(0);
    for (auto _ : state) {
      benchmark::DoNotOptimize(ch.try_send(1));
      benchmark::DoNotOptimize(ch.try_recv());
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_TrySendTryRecvFastPath);

// A select with one case and a default: Go's non-blocking receive
// (selectnbrecv), e.g. a look at ctx.done().
void BM_SelectOneCaseDefault(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<goro::Unit> ch(0);
    for (auto _ : state) {
      benchmark::DoNotOptimize(goro::select(goro::on_recv(ch), goro::on_default()));
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_SelectOneCaseDefault);

// after(1h) dropped unfired: one allocation, a timer armed and taken out
// again when the handle goes (the timeout idiom's cost per iteration when
// the other case wins). The heap must stay empty.
void BM_AfterDroppedUnfired(benchmark::State& state) {
  goro::run([&] {
    for (auto _ : state) benchmark::DoNotOptimize(goro::after(std::chrono::hours(1)));
    if (goro::sched_stats().timers != 0) state.SkipWithError("after() timers left pending");
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_AfterDroppedUnfired);

// The timeout idiom with the value always ready: select over a buffered
// channel and a fresh after(1s).
void BM_SelectWithAfterTimeout(benchmark::State& state) {
  goro::run([&] {
    goro::Chan<int> ch(1);
    for (auto _ : state) {
      ch.send(1);
      goro::select(goro::on_recv(ch), goro::on_recv(goro::after(std::chrono::seconds(1))));
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_SelectWithAfterTimeout);

// A per-request context: with_timeout(background, 1h), a look at done(),
// cancel(): one allocation for the state and its done channel, one for the
// CancelFunc, a timer armed and disarmed.
void BM_ContextWithTimeoutCancel(benchmark::State& state) {
  goro::run([&] {
    for (auto _ : state) {
      auto [ctx, cancel] = goro::with_timeout(goro::background(), std::chrono::hours(1));
      benchmark::DoNotOptimize(goro::select(goro::on_recv(ctx.done()), goro::on_default()));
      cancel();
      benchmark::DoNotOptimize(ctx.err());
    }
  }, goro::Options{.procs = 1});
}
BENCHMARK(BM_ContextWithTimeoutCancel);

}  // namespace
