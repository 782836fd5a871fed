// bench_net.cpp: the network workloads of docs/benchmarks.md (echo,
// echo_conns), written against goro::net exactly as the Go reference
// program (echo, echoConns, echoServe) writes them against Go's net package.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "goro/goro.hpp"
#include "workloads.hpp"

namespace goro_cli {
namespace {

using Clock = std::chrono::steady_clock;

// rss_kb reads a "Name:  123 kB" field of /proc/self/status (-1 if absent).
long rss_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      std::istringstream fields(line.substr(prefix.size()));
      long v = -1;
      fields >> v;
      return v;
    }
  }
  return -1;
}

// echo_serve accepts until ln is closed and echoes each connection in its
// own goroutine with a buffer of buf_size bytes (on the heap, as Go's
// make([]byte, n) is); closes `served` once every connection's goroutine
// has exited.
void echo_serve(goro::net::Listener& ln, std::size_t buf_size, goro::Chan<goro::Unit> served) {
  goro::WaitGroup conns;
  for (;;) {
    goro::net::Conn c;
    try {
      c = ln.accept();
    } catch (const goro::net::Error&) {
      break;
    }
    conns.add(1);
    goro::go([&conns, buf_size, c = std::move(c)]() mutable {
      std::unique_ptr<char[]> buf(new char[buf_size]);
      try {
        while (const std::size_t n = c.read(buf.get(), buf_size)) c.write(buf.get(), n);
      } catch (const goro::net::Error&) {
      }
      c = goro::net::Conn();  // close before saying done, as Go's deferred Close runs first
      conns.done();
    });
  }
  conns.wait();
  served.close();
}

bool read_full(goro::net::Conn& c, char* buf, std::size_t len) {
  for (std::size_t got = 0; got < len;) {
    const std::size_t n = c.read(buf + got, len - got);
    if (n == 0) return false;
    got += n;
  }
  return true;
}

double percentile_us(const std::vector<std::int64_t>& sorted, double p) {
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return static_cast<double>(sorted[i]) / 1e3;
}

// echo: 100 client goroutines each dial once and make 2,000 round trips of
// 64 bytes to an echo server on 127.0.0.1; p50_us / p99_us = latency.
Result echo() {
  constexpr int conns = 100, rounds = 2000;
  constexpr std::size_t size = 64;
  goro::net::Listener ln;
  try {
    ln = goro::net::listen("tcp", "127.0.0.1:0");
  } catch (const goro::net::Error&) {
    return {0, {}, "", "listen"};
  }
  goro::Chan<goro::Unit> served(0);
  goro::go([&ln, served] { echo_serve(ln, 4096, served); });
  std::vector<std::int64_t> lat(static_cast<std::size_t>(conns) * rounds);
  goro::Chan<std::string> errs(conns);
  goro::WaitGroup wg;
  const std::string addr = ln.addr();
  const auto start = Clock::now();
  wg.add(conns);
  for (int i = 0; i < conns; ++i) {
    goro::go([&, i] {
      try {
        goro::net::Conn c = goro::net::dial("tcp", addr);
        char msg[size], buf[size];
        std::memset(msg, 'a' + i % 26, size);
        for (int r = 0; r < rounds; ++r) {
          const auto t0 = Clock::now();
          c.write(msg, size);
          if (!read_full(c, buf, size)) {
            errs.send("read");
            break;
          }
          lat[static_cast<std::size_t>(i) * rounds + static_cast<std::size_t>(r)] = (Clock::now() - t0).count();
          if (std::memcmp(buf, msg, size) != 0) {
            errs.send("echo_mismatch");
            break;
          }
        }
      } catch (const goro::net::Error& e) {
        errs.send(std::string(e.what()).rfind("dial", 0) == 0 ? "dial" : "io");
      }
      wg.done();
    });
  }
  wg.wait();
  const auto wall = Clock::now() - start;
  ln.close();
  served.recv();
  if (auto e = errs.try_recv()) return {0, {}, "", *e};
  std::sort(lat.begin(), lat.end());
  return {static_cast<std::int64_t>(conns) * rounds, wall,
          fmt::format(" p50_us={:.1f} p99_us={:.1f}", percentile_us(lat, 0.50), percentile_us(lat, 0.99)), ""};
}

// echo_conns: n idle connections to the same echo server (512-byte
// buffers); RSS is read once every server goroutine exists; then one byte
// is echoed on each, all are closed, and every server goroutine must exit.
Result echo_conns() {
  constexpr std::int64_t n = 5000;
  // 10,001 descriptors: raise the soft limit to the hard one, as Go does
  // at start-up.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  goro::net::Listener ln;
  try {
    ln = goro::net::listen("tcp", "127.0.0.1:0");
  } catch (const goro::net::Error&) {
    return {0, {}, "", "listen"};
  }
  const std::int64_t before = goro::num_goroutine();
  goro::Chan<goro::Unit> served(0);
  goro::go([&ln, served] { echo_serve(ln, 512, served); });
  const long rss0 = rss_kb("VmRSS");
  const std::string addr = ln.addr();
  const auto start = Clock::now();
  std::vector<goro::net::Conn> clients;
  clients.reserve(n);
  try {
    for (std::int64_t i = 0; i < n; ++i) clients.push_back(goro::net::dial("tcp", addr));
  } catch (const goro::net::Error&) {
    return {0, {}, "", "dial"};
  }
  // Every server goroutine is parked in read once the count settles at
  // before + 1 (echo_serve) + n.
  for (auto deadline = Clock::now() + std::chrono::seconds(10); goro::num_goroutine() < before + 1 + n;) {
    if (Clock::now() > deadline) return {0, {}, "", "server_goroutines_missing"};
    goro::sleep_for(std::chrono::milliseconds(1));
  }
  const long rss1 = rss_kb("VmRSS");
  try {
    for (auto& c : clients) {
      char b = 'x';
      c.write(&b, 1);
      b = 0;
      if (!read_full(c, &b, 1) || b != 'x') return {0, {}, "", "read"};
    }
  } catch (const goro::net::Error&) {
    return {0, {}, "", "write"};
  }
  for (auto& c : clients) c.close();
  ln.close();
  served.recv();
  const auto wall = Clock::now() - start;
  for (auto deadline = Clock::now() + std::chrono::seconds(1);
       goro::num_goroutine() > before && Clock::now() < deadline;) {
    goro::sleep_for(std::chrono::milliseconds(1));
  }
  const std::int64_t leaked = goro::num_goroutine() - before;
  if (leaked != 0) return {0, {}, "", mismatch("leaked", leaked, std::int64_t{0})};
  return {n, wall,
          fmt::format(" bytes_per_conn={:.1f} leaked={}", static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(n),
                      leaked),
          ""};
}

}  // namespace

GORO_BENCH_WORKLOAD("echo", 17, echo);
GORO_BENCH_WORKLOAD("echo_conns", 18, echo_conns);

}  // namespace goro_cli
