// goro bench <workload>: the side-by-side workloads of docs/benchmarks.md,
// written against goro's public API exactly as the Go reference program
// writes them against Go's. Each prints one BENCH line, or an error= line
// and exit status 1 when its self-check fails.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "commands.hpp"
#include "goro/goro.hpp"
#include "workloads.hpp"

namespace goro_cli {
namespace {

using Clock = std::chrono::steady_clock;

double ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

// status_kb reads a "Name:  123 kB" field of /proc/self/status (-1 if absent).
long status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream fields(line.substr(field.size() + 1));
      long v = -1;
      fields >> v;
      return v;
    }
  }
  return -1;
}

std::chrono::nanoseconds cpu_time() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return std::chrono::seconds(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         std::chrono::microseconds(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// spawn_join: spawn n goroutines that each call wg.done(); main waits.
Result spawn_join() {
  constexpr std::int64_t n = 1'000'000;
  goro::WaitGroup wg;
  const auto start = Clock::now();
  wg.add(n);
  for (std::int64_t i = 0; i < n; ++i) goro::go([&wg] { wg.done(); });
  wg.wait();
  return {n, Clock::now() - start, "", ""};
}

// spawn_parked: n goroutines signal "started" then park on gate.recv();
// RSS is read when all are parked, then the gate closes.
Result spawn_parked() {
  constexpr std::int64_t n = 1'000'000;
  goro::Chan<goro::Unit> gate(0);
  goro::WaitGroup started, exited;
  const std::int64_t before = goro::num_goroutine();
  const long rss0 = status_kb("VmRSS");
  const auto start = Clock::now();
  started.add(n);
  exited.add(n);
  for (std::int64_t i = 0; i < n; ++i) {
    goro::go([&started, &exited, gate]() mutable {
      started.done();
      gate.recv();
      exited.done();
    });
  }
  started.wait();
  const long rss1 = status_kb("VmRSS");
  gate.close();
  exited.wait();
  const auto wall = Clock::now() - start;
  // Goroutines still run their last instructions after exited.done(): give them up to 1 s.
  for (auto deadline = Clock::now() + std::chrono::seconds(1);
       goro::num_goroutine() > before && Clock::now() < deadline;) {
    goro::sleep_for(std::chrono::milliseconds(1));
  }
  const std::int64_t leaked = goro::num_goroutine() - before;
  if (leaked != 0) return {0, {}, "", mismatch("leaked", leaked, std::int64_t{0})};
  return {n, wall,
          fmt::format(" bytes_per_g={:.1f} leaked={}", static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(n),
                      leaked),
          ""};
}

void skynet(goro::Chan<std::int64_t> out, std::int64_t num, std::int64_t size) {
  if (size == 1) {
    out.send(num);
    return;
  }
  goro::Chan<std::int64_t> rc(0);
  for (std::int64_t i = 0; i < 10; ++i) {
    goro::go([rc, num, i, size] { skynet(rc, num + i * (size / 10), size / 10); });
  }
  std::int64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += *rc.recv();
  out.send(sum);
}

// skynet: a 10-ary tree of goroutines down to 1,000,000 leaves; each parent
// sums its children over one unbuffered channel.
Result skynet_bench() {
  constexpr std::int64_t n = 1'111'111;
  constexpr std::int64_t want = 499999500000;
  goro::Chan<std::int64_t> out(0);
  const auto start = Clock::now();
  goro::go([out] { skynet(out, 0, 1'000'000); });
  const std::int64_t sum = *out.recv();
  const auto wall = Clock::now() - start;
  if (sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// pingpong: two goroutines bounce an int over two unbuffered channels.
Result pingpong() {
  constexpr std::int64_t n = 1'000'000;
  goro::Chan<std::int64_t> ping(0), pong(0);
  goro::WaitGroup wg;
  wg.add(2);
  std::int64_t last = 0;
  const auto start = Clock::now();
  goro::go([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      ping.send(i);
      last = *pong.recv();
    }
    ping.close();
    wg.done();
  });
  goro::go([&] {
    for (std::int64_t v : ping) pong.send(v + 1);
    wg.done();
  });
  wg.wait();
  const auto wall = Clock::now() - start;
  if (last != n) return {0, {}, "", mismatch("last", last, n)};
  return {n, wall, "", ""};
}

// chan_spsc: a producer sends 0..n-1 on a channel of capacity 1024; main sums.
Result chan_spsc() {
  constexpr std::int64_t n = 10'000'000;
  goro::Chan<std::int64_t> ch(1024);
  const auto start = Clock::now();
  goro::go([ch]() mutable {
    for (std::int64_t i = 0; i < n; ++i) ch.send(i);
    ch.close();
  });
  std::int64_t sum = 0;
  for (std::int64_t v : ch) sum += v;
  const auto wall = Clock::now() - start;
  if (const std::int64_t want = n * (n - 1) / 2; sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// chan_mpmc: 4 producers x 2,500,000 ints into one channel (cap 1024), 4 consumers.
Result chan_mpmc() {
  constexpr std::int64_t producers = 4, consumers = 4, per = 2'500'000, n = producers * per;
  goro::Chan<std::int64_t> ch(1024);
  std::vector<std::int64_t> sums(consumers);
  goro::WaitGroup prod, cons;
  const auto start = Clock::now();
  prod.add(producers);
  for (std::int64_t p = 0; p < producers; ++p) {
    goro::go([&, base = p * per]() mutable {
      for (std::int64_t i = 0; i < per; ++i) ch.send(base + i);
      prod.done();
    });
  }
  cons.add(consumers);
  for (std::int64_t c = 0; c < consumers; ++c) {
    goro::go([&, c] {
      std::int64_t s = 0;
      for (std::int64_t v : ch) s += v;
      sums[static_cast<std::size_t>(c)] = s;
      cons.done();
    });
  }
  prod.wait();
  ch.close();
  cons.wait();
  const auto wall = Clock::now() - start;
  std::int64_t sum = 0;
  for (std::int64_t s : sums) sum += s;
  if (const std::int64_t want = n * (n - 1) / 2; sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// select2: 2 producers send n/2 ints each on their own unbuffered channel;
// main selects over both until both are closed.
Result select2() {
  constexpr std::int64_t n = 1'000'000;
  goro::Chan<std::int64_t> a(0), b(0);
  const auto produce = [](goro::Chan<std::int64_t> ch, std::int64_t base) {
    for (std::int64_t i = 0; i < n / 2; ++i) ch.send(base + i);
    ch.close();
  };
  const auto start = Clock::now();
  goro::go([=] { produce(a, 0); });
  goro::go([=] { produce(b, n / 2); });
  std::int64_t sum = 0;
  goro::Chan<std::int64_t> ca = a, cb = b;
  while (!ca.is_nil() || !cb.is_nil()) {
    goro::select(goro::on_recv(ca,
                               [&](std::optional<std::int64_t> v) {
                                 if (v) {
                                   sum += *v;
                                 } else {
                                   ca = {};
                                 }
                               }),
                 goro::on_recv(cb, [&](std::optional<std::int64_t> v) {
                   if (v) {
                     sum += *v;
                   } else {
                     cb = {};
                   }
                 }));
  }
  const auto wall = Clock::now() - start;
  if (const std::int64_t want = n * (n - 1) / 2; sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// yield: 2 goroutines each call yield() n/2 times (run with GOMAXPROCS=1).
Result yield_bench() {
  constexpr std::int64_t n = 2'000'000;
  goro::WaitGroup wg;
  const auto start = Clock::now();
  wg.add(2);
  for (int i = 0; i < 2; ++i) {
    goro::go([&wg] {
      for (std::int64_t j = 0; j < n / 2; ++j) goro::yield();
      wg.done();
    });
  }
  wg.wait();
  return {n, Clock::now() - start, "", ""};
}

// timers: n goroutines each sleep 10 ms then wg.done(); overshoot = wall - 10 ms.
Result timers() {
  constexpr std::int64_t n = 100'000;
  goro::WaitGroup wg;
  const auto start = Clock::now();
  wg.add(n);
  for (std::int64_t i = 0; i < n; ++i) {
    goro::go([&wg] {
      goro::sleep_for(std::chrono::milliseconds(10));
      wg.done();
    });
  }
  wg.wait();
  const auto wall = Clock::now() - start;
  return {n, wall, fmt::format(" overshoot_ms={:.3f}", ms(wall) - 10.0), ""};
}

std::uint64_t xorshift100(std::uint64_t x) {
  for (int r = 0; r < 100; ++r) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

// worker_pool: a feeder sends job indices (cap 1024) to 8 workers; results
// (cap 1024) are summed by main.
Result worker_pool() {
  constexpr std::int64_t workers = 8, n = 1'000'000;
  goro::Chan<std::uint64_t> jobs(1024), results(1024);
  goro::WaitGroup wg;
  const auto start = Clock::now();
  goro::go([jobs]() mutable {
    for (std::int64_t i = 0; i < n; ++i) jobs.send(static_cast<std::uint64_t>(i));
    jobs.close();
  });
  wg.add(workers);
  for (std::int64_t w = 0; w < workers; ++w) {
    goro::go([&] {
      for (std::uint64_t j : jobs) results.send(xorshift100(j));
      wg.done();
    });
  }
  std::uint64_t sum = 0;
  for (std::int64_t i = 0; i < n; ++i) sum += *results.recv();
  wg.wait();
  const auto wall = Clock::now() - start;
  std::uint64_t want = 0;
  for (std::int64_t i = 0; i < n; ++i) want += xorshift100(static_cast<std::uint64_t>(i));
  if (sum != want) return {0, {}, "", mismatch("sum", sum, want)};
  return {n, wall, "", ""};
}

// idle: 1,000 goroutines parked on a channel while main sleeps 2 s;
// cpu_ms = process CPU time during the sleep.
Result idle() {
  constexpr int g = 1000;
  goro::Chan<goro::Unit> gate(0);
  goro::WaitGroup started, exited;
  started.add(g);
  exited.add(g);
  for (int i = 0; i < g; ++i) {
    goro::go([&started, &exited, gate]() mutable {
      started.done();
      gate.recv();
      exited.done();
    });
  }
  started.wait();
  const auto cpu0 = cpu_time();
  const auto start = Clock::now();
  goro::sleep_for(std::chrono::seconds(2));
  const auto wall = Clock::now() - start;
  const auto cpu = cpu_time() - cpu0;
  gate.close();
  exited.wait();
  return {1, wall, fmt::format(" cpu_ms={:.1f}", ms(cpu)), ""};
}

// In SPEC.md's order (mutex and rwmutex, 8 and 9, live in bench_sync.cpp).
GORO_BENCH_WORKLOAD("spawn_join", 1, spawn_join);
GORO_BENCH_WORKLOAD("spawn_parked", 2, spawn_parked);
GORO_BENCH_WORKLOAD("skynet", 3, skynet_bench);
GORO_BENCH_WORKLOAD("pingpong", 4, pingpong);
GORO_BENCH_WORKLOAD("chan_spsc", 5, chan_spsc);
GORO_BENCH_WORKLOAD("chan_mpmc", 6, chan_mpmc);
GORO_BENCH_WORKLOAD("select2", 7, select2);
GORO_BENCH_WORKLOAD("yield", 10, yield_bench);
GORO_BENCH_WORKLOAD("timers", 11, timers);
GORO_BENCH_WORKLOAD("worker_pool", 12, worker_pool);
GORO_BENCH_WORKLOAD("idle", 13, idle);

struct Workload {
  const char* name;
  int order;
  WorkloadFn run;
};

std::vector<Workload>& registry() {
  static std::vector<Workload> workloads;
  return workloads;
}

bool trustworthy_build(std::string* why) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  *why = "sanitizer_build";
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  *why = "sanitizer_build";
  return false;
#endif
#endif
#if !defined(__OPTIMIZE__)
  *why = "unoptimized_build";
  return false;
#endif
  (void)why;
  return true;
}

}  // namespace

bool register_workload(const char* name, int order, WorkloadFn fn) {
  registry().push_back({name, order, fn});
  return true;
}

int bench_main(const std::vector<std::string>& args) {
  auto& workloads = registry();
  std::sort(workloads.begin(), workloads.end(), [](const Workload& a, const Workload& b) { return a.order < b.order; });
  std::string names;
  for (const Workload& w : workloads) names += std::string(names.empty() ? "" : " ") + w.name;
  if (args.size() != 1) {
    print_to(stderr, "usage: goro bench <workload>\nworkloads: {}\n", names);
    return 2;
  }
  for (const Workload& w : workloads) {
    if (args[0] != w.name) continue;
    std::string why;
    if (!trustworthy_build(&why)) {
      print_to(stdout, "BENCH name={} impl=goro error={}\n", w.name, why);
      return 1;
    }
    Result r;
    goro::run([&] { r = w.run(); });
    if (!r.error.empty()) {
      print_to(stdout, "BENCH name={} impl=goro error={}\n", w.name, r.error);
      return 1;
    }
    print_to(stdout, "BENCH name={} impl=goro n={} ns_per_op={:.2f} wall_ms={:.3f} rss_kb={}{}\n", w.name, r.n,
             static_cast<double>(r.wall.count()) / static_cast<double>(r.n), ms(r.wall), status_kb("VmHWM"), r.extra);
    return 0;
  }
  print_to(stderr, "goro bench: unknown workload '{}'\nworkloads: {}\n", args[0], names);
  return 2;
}

}  // namespace goro_cli
