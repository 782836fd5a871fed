// Micro-benchmarks of channels and select.
#include <benchmark/benchmark.h>

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

}  // namespace
