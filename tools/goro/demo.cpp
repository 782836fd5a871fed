// goro demo: the main job. Spawns N goroutines that park on one channel,
// prints a schedtrace-style line every second while they live, reports the
// memory and time they took, releases them (after --hold's wait, if given)
// and checks that the goroutine count falls back to 1.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "goro/detail/introspect_wire.hpp"
#include "goro/goro.hpp"

namespace goro_cli {
namespace {

using Clock = std::chrono::steady_clock;

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// trace_line prints Go's schedtrace fields plus the goroutine count.
void trace_line(Clock::time_point start, const char* phase) {
  const goro::SchedStats s = goro::sched_stats();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  print_to(stdout,
           "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} "
           "runqueue={} [{}] goroutines={} rss={}MiB ({})\n",
           ms, s.gomaxprocs, s.idle_procs, s.threads, s.spinning_threads, s.idle_threads, s.global_runq,
           fmt::join(s.local_runq, " "), s.goroutines, rss_kb() / 1024, phase);
  std::fflush(stdout);
}

// self_path is this executable's path, for the attach hint.
std::string self_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("goro");
}

// DemoOptions: -n N, --hold [duration].
struct DemoOptions {
  std::int64_t n = 1'000'000;
  bool hold = false;                               // keep them parked before releasing
  std::optional<std::chrono::nanoseconds> hold_for;  // for this long; none: until Enter
  std::string hold_text;                           // hold_for as the user wrote it
};

int parse_options(const std::vector<std::string>& args, DemoOptions* o) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if ((args[i] == "-n" || args[i] == "--n") && i + 1 < args.size()) {
      char* end = nullptr;
      const long long v = std::strtoll(args[i + 1].c_str(), &end, 10);
      if (end == args[i + 1].c_str() || *end != '\0' || v < 1 || v > 100'000'000) {
        print_to(stderr, "goro demo: -n wants a goroutine count from 1 to 100000000, got '{}'\n", args[i + 1]);
        return 2;
      }
      o->n = v;
      ++i;
    } else if (args[i] == "--hold") {
      o->hold = true;
      // An optional duration follows; anything else is the next option.
      if (i + 1 < args.size() && !args[i + 1].empty() && args[i + 1][0] != '-') {
        const auto d = parse_go_duration(args[i + 1]);
        if (!d) {
          print_to(stderr, "goro demo: --hold wants a duration such as 30s or 2m, got '{}'\n", args[i + 1]);
          return 2;
        }
        o->hold_for = *d;
        o->hold_text = args[++i];
      }
    } else {
      print_to(stderr, "usage: goro demo [-n N] [--hold [duration]]\n");
      return 2;
    }
  }
  return 0;
}

// hold keeps the parked goroutines parked while the user looks at them.
void hold(const DemoOptions& o) {
  if (o.hold_for) {
    print_to(stdout, "goro demo: holding them parked for {} (--hold)\n", o.hold_text);
    std::fflush(stdout);
    goro::sleep_for(*o.hold_for);
    return;
  }
  print_to(stdout, "goro demo: holding them parked until you press Enter (--hold)\n");
  std::fflush(stdout);
  goro::blocking([] {
    char c = 0;
    while (::read(0, &c, 1) == 1 && c != '\n') {
    }
  });
}

}  // namespace

int demo_main(const std::vector<std::string>& args) {
  DemoOptions opts;
  if (const int rc = parse_options(args, &opts); rc != 0) return rc;
  const std::int64_t n = opts.n;
  return goro::run([n, &opts]() -> int {
    const auto start = Clock::now();
    print_to(stdout, "goro demo: pid {}, {} Ps; spawning {} goroutines that each park on a channel\n", getpid(),
             goro::gomaxprocs(), n);
    if (goro::detail::introspect_serving()) {
      print_to(stdout, "goro demo: watch it from another terminal: {0} stat {1}   (or: top {1}, dump {1} --group)\n",
               self_path(), getpid());
      if (!opts.hold) {
        print_to(stdout,
                 "goro demo: they are released as soon as all are parked; add --hold 60s (or --hold: until "
                 "Enter) to keep them parked while you look\n");
      }
    }
    std::fflush(stdout);

    // A watcher goroutine prints a line every second until told to stop.
    goro::Chan<goro::Unit> stop_watch(0);
    goro::WaitGroup watcher;
    watcher.add(1);
    const char* phase = "spawning";
    goro::go([&, stop_watch] {
      goro::Ticker tick(std::chrono::seconds(1));
      for (bool running = true; running;) {
        goro::select(goro::on_recv(tick.c, [&](auto) { trace_line(start, phase); }),
                     goro::on_recv(stop_watch, [&](auto) { running = false; }));
      }
      watcher.done();
    });

    const long rss0 = rss_kb();
    goro::Chan<goro::Unit> gate(0);
    goro::WaitGroup started, exited;
    started.add(n);
    exited.add(n);
    const auto t0 = Clock::now();
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([&started, &exited, gate]() mutable {
        started.done();
        gate.recv();
        exited.done();
      });
    }
    started.wait();
    const auto spawn = Clock::now() - t0;
    const long rss1 = rss_kb();
    phase = "parked";
    trace_line(start, phase);
    const double per_g = static_cast<double>(rss1 - rss0) * 1024.0 / static_cast<double>(n);
    const double spawn_ms = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(spawn).count()) / 1e3;
    print_to(stdout, "goro demo: {} goroutines parked; spawned in {:.1f} ms ({:.0f} ns each), {:.0f} bytes of RSS each\n",
             n, spawn_ms, spawn_ms * 1e6 / static_cast<double>(n), per_g);
    std::fflush(stdout);
    if (opts.hold) hold(opts);

    phase = "releasing";
    gate.close();
    exited.wait();
    stop_watch.close();
    watcher.wait();
    // Goroutines finish their last instructions after exited.done(); allow a moment.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (goro::num_goroutine() > 1 && Clock::now() < deadline) goro::sleep_for(std::chrono::milliseconds(1));
    const std::int64_t left = goro::num_goroutine();
    // The scavenger returns idle stacks to the OS within about half a second.
    long rss2 = rss_kb();
    for (int i = 0; i < 30 && rss2 > rss0 + (rss1 - rss0) / 10; ++i) {
      goro::sleep_for(std::chrono::milliseconds(100));
      rss2 = rss_kb();
    }
    trace_line(start, "released");
    print_to(stdout, "goro demo: RSS {} MiB before, {} MiB parked, {} MiB after release\n", rss0 / 1024, rss1 / 1024,
             rss2 / 1024);
    if (left != 1) {
      print_to(stdout, "goro demo: FAIL: num_goroutine() is {} after release, want 1\n", left);
      return 1;
    }
    print_to(stdout, "goro demo: OK: all {} goroutines exited, num_goroutine() == 1\n", n);
    return 0;
  });
}

}  // namespace goro_cli
