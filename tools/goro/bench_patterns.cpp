// bench_patterns.cpp: the "everyday patterns" workloads of
// docs/benchmarks.md (pipeline, ctx_timeout, select_timeout), written
// against goro's public API exactly as the Go reference program (pipeline,
// ctxTimeout, selectTimeout) writes them against Go's.
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "goro/goro.hpp"
#include "workloads.hpp"

namespace goro_cli {
namespace {

using Clock = std::chrono::steady_clock;

// pipeline: generator -> 8 squaring workers (fan-out, each with its own
// output) -> merge (fan-in) -> sum; every channel unbuffered.
Result pipeline() {
  constexpr int workers = 8;
  constexpr std::int64_t n = 1'000'000;
  const auto start = Clock::now();
  goro::Chan<std::uint64_t> gen(0);
  goro::go([gen] {
    for (std::int64_t i = 0; i < n; ++i) gen.send(static_cast<std::uint64_t>(i));
    gen.close();
  });
  std::vector<goro::Chan<std::uint64_t>> outs;
  outs.reserve(workers);
  for (int w = 0; w < workers; ++w) {
    goro::Chan<std::uint64_t> out(0);
    outs.push_back(out);
    goro::go([gen, out] {
      for (std::uint64_t v : gen) out.send(v * v);
      out.close();
    });
  }
  goro::Chan<std::uint64_t> merged(0);
  auto wg = std::make_shared<goro::WaitGroup>();
  wg->add(workers);
  for (const auto& out : outs) {
    goro::go([out, merged, wg] {
      for (std::uint64_t v : out) merged.send(v);
      wg->done();
    });
  }
  goro::go([merged, wg] {
    wg->wait();
    merged.close();
  });
  std::uint64_t sum = 0;
  for (std::uint64_t v : merged) sum += v;
  const auto wall = Clock::now() - start;
  std::uint64_t want = 0;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(n); ++i) want += i * i;
  if (sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// ctx_timeout: 8 goroutines x n/8 of { with_timeout(background(), 1h);
// done() must not be ready (non-blocking look); cancel(); err() must be
// canceled }.
Result ctx_timeout() {
  constexpr std::int64_t g = 8, n = 1'000'000;
  goro::WaitGroup wg;
  goro::Mutex mu;
  std::int64_t bad = 0;  // guarded by mu
  const auto start = Clock::now();
  wg.add(g);
  for (std::int64_t i = 0; i < g; ++i) {
    goro::go([&] {
      std::int64_t miss = 0;
      for (std::int64_t j = 0; j < n / g; ++j) {
        auto [ctx, cancel] = goro::with_timeout(goro::background(), std::chrono::hours(1));
        goro::select(goro::on_recv(ctx.done(), [&] { ++miss; }), goro::on_default());
        cancel();
        if (ctx.err() != goro::ContextError::canceled) ++miss;
      }
      mu.lock();
      bad += miss;
      mu.unlock();
      wg.done();
    });
  }
  wg.wait();
  const auto wall = Clock::now() - start;
  if (bad != 0) return {0, {}, "", mismatch("bad", bad, std::int64_t{0})};
  return {n, wall, "", ""};
}

// select_timeout: a producer sends 0..n-1 on an unbuffered channel; the
// consumer loops select { v := <-c; <-after(1s): fail }, a new timer each
// iteration, left pending as in Go.
Result select_timeout() {
  constexpr std::int64_t n = 1'000'000;
  goro::Chan<std::int64_t> c(0);
  const auto start = Clock::now();
  goro::go([c] {
    for (std::int64_t i = 0; i < n; ++i) c.send(i);
  });
  std::int64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    bool timed_out = false;
    goro::select(goro::on_recv(c, [&](std::optional<std::int64_t> v) { sum += *v; }),
                 goro::on_recv(goro::after(std::chrono::seconds(1)), [&] { timed_out = true; }));
    if (timed_out) return {0, {}, "", "timed_out"};
  }
  const auto wall = Clock::now() - start;
  if (const std::int64_t want = n * (n - 1) / 2; sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

}  // namespace

// After idle (13) in SPEC.md's order.
GORO_BENCH_WORKLOAD("pipeline", 14, pipeline);
GORO_BENCH_WORKLOAD("ctx_timeout", 15, ctx_timeout);
GORO_BENCH_WORKLOAD("select_timeout", 16, select_timeout);

}  // namespace goro_cli
