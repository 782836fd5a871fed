// goroutines.cpp: the examples of docs/guide.md's "Goroutines" section.
//   1. Goroutines vs OS threads: 100,000 of each.
//   2. A goroutine leak, and how a done channel (or a Context) prevents it.
//   3. What happens when a goroutine throws, and Go's recover pattern.
//   4. num_goroutine() as a leak detector.
// Built and run by the tests (exits 0 when every check holds).
#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// settle waits (up to 2 s) for the goroutine count to fall back to n: a
// goroutine that signalled its end still has to return and exit.
void settle(std::int64_t n) {
  const auto deadline = Clock::now() + 2s;
  while (goro::num_goroutine() > n && Clock::now() < deadline) goro::sleep_for(1ms);
}

bool check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
  return ok;
}

// 1. Goroutines vs OS threads.
bool goroutines_vs_threads() {
  // Sanitizers make each goroutine far heavier (shadow memory): fewer, and
  // no memory claim.
  constexpr int kCount = kSanitized ? 10'000 : 100'000;
  std::printf("1. %d goroutines vs %d OS threads\n", kCount, kCount);

  // Goroutines: all alive at once, each parked on one channel.
  const long rss0 = rss_kb();
  auto t0 = Clock::now();
  goro::Chan<goro::Unit> gate(0);
  goro::WaitGroup started, done;
  started.add(kCount);
  done.add(kCount);
  for (int i = 0; i < kCount; ++i) {
    goro::go([&started, &done, gate]() mutable {
      started.done();
      gate.recv();
      done.done();
    });
  }
  started.wait();
  const double go_ms = ms_since(t0);
  const double go_bytes = static_cast<double>(rss_kb() - rss0) * 1024.0 / kCount;
  gate.close();
  done.wait();
  std::printf("  goroutines: all %d alive at once; spawned in %.0f ms, %.0f bytes of memory each\n", kCount,
              go_ms, go_bytes);

  // Threads: the kernel would refuse 100,000 at once here (ulimit -u, and
  // 8 MiB of stack each by default), so they run 1,000 at a time, with
  // small 64 KiB stacks to be fair.
  t0 = Clock::now();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  std::vector<pthread_t> wave(1000);
  for (int spawned = 0; spawned < kCount; spawned += static_cast<int>(wave.size())) {
    for (auto& t : wave) pthread_create(&t, &attr, [](void*) -> void* { return nullptr; }, nullptr);
    for (auto& t : wave) pthread_join(t, nullptr);
  }
  pthread_attr_destroy(&attr);
  const double thread_ms = ms_since(t0);
  std::printf("  threads:    1,000 alive at most; %d created and joined in %.0f ms\n", kCount, thread_ms);
  return kSanitized || check(go_bytes < 16 * 1024, "a parked goroutine costs a few KiB, not a thread stack");
}

// 2. A leak: a goroutine waits for a reply nobody will send.
bool leak_and_fix() {
  std::printf("2. a goroutine leak and its fix\n");
  const std::int64_t before = goro::num_goroutine();

  // Leaky: the caller gives up (timeout) and walks away; the worker stays
  // blocked on its unbuffered send forever.
  {
    goro::Chan<int> reply(0);
    goro::Chan<goro::Unit> gave_up(0);
    goro::go([reply, gave_up]() mutable {
      (void)gave_up.recv();  // slow work: it finishes after the caller gave up
      reply.send(42);        // blocks forever: nobody receives any more
    });
    goro::select(goro::on_recv(reply), goro::on_recv(goro::after(1ms)));
    gave_up.close();
  }
  goro::sleep_for(20ms);
  const std::int64_t leaked = goro::num_goroutine() - before;
  std::printf("  leaky version: %lld goroutine(s) left behind\n", static_cast<long long>(leaked));

  // Fixed: the worker also watches a Context; cancelling it releases it.
  const std::int64_t before_fixed = goro::num_goroutine();
  {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    goro::Chan<int> reply(0);
    goro::go([reply, ctx = ctx]() mutable {
      goro::sleep_for(5ms);
      goro::select(goro::on_send(reply, 42), goro::on_recv(ctx.done()));  // gives up when cancelled
    });
    goro::select(goro::on_recv(reply), goro::on_recv(goro::after(1ms)));
    cancel();  // always: it is what lets the worker go
  }
  // (a buffered reply channel of capacity 1 would fix it too)
  settle(before_fixed);
  const std::int64_t fixed_left = goro::num_goroutine() - before_fixed;
  std::printf("  with a Context: %lld left behind\n", static_cast<long long>(fixed_left));
  return check(leaked == 1, "num_goroutine() shows the leak") &&
         check(fixed_left == 0, "cancelling the Context lets the worker exit");
}

// 3. Exceptions: one escaping a goroutine ends the process (like an
// unrecovered panic in Go: "panic: <what>", a goroutine dump, abort). To
// survive, catch inside the goroutine and hand the error over, Go's
// recover() pattern.
bool panics() {
  std::printf("3. a goroutine that throws\n");
  const std::int64_t before = goro::num_goroutine();
  goro::Chan<std::string> errors(1);
  goro::go([errors]() mutable {
    try {
      throw std::runtime_error("disk on fire");
    } catch (const std::exception& e) {
      errors.send(e.what());  // recovered: report instead of crashing
    }
  });
  const std::string err = *errors.recv();
  std::printf("  recovered: %s\n", err.c_str());
  settle(before);
  return check(err == "disk on fire", "the error reached the caller");
}

// 4. num_goroutine() as a leak detector around a piece of work.
bool leak_detector() {
  std::printf("4. num_goroutine() as a leak detector\n");
  const std::int64_t before = goro::num_goroutine();
  goro::WaitGroup wg;
  for (int i = 0; i < 1000; ++i) {
    wg.add(1);
    goro::go([&wg] { wg.done(); });
  }
  wg.wait();
  settle(before);
  std::printf("  before: %lld, after: %lld\n", static_cast<long long>(before),
              static_cast<long long>(goro::num_goroutine()));
  return check(goro::num_goroutine() == before, "every goroutine of the work has exited");
}

}  // namespace

int main() {
  const int rc = goro::run([] {
    bool ok = goroutines_vs_threads();
    ok = leak_and_fix() && ok;
    ok = panics() && ok;
    ok = leak_detector() && ok;
    return ok ? 0 : 1;
  });
  std::printf("%d goroutine(s) were still alive when main returned (unwound by run())\n",
              static_cast<int>(goro::last_run_unwound()));
  return rc;
}
