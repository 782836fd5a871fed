// channels.cpp: the examples of docs/guide.md's "Channels" section and of
// docs/channels.md.
//   1. Buffered vs unbuffered channels.
//   2. close, and Go's `v, ok := <-ch` as std::optional.
//   3. A timeout with select + after.
//   4. Stopping a goroutine that would otherwise leak: a done channel, then
//      a Context.
// Built and run by the tests (exits 0 when every check holds).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

bool check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
  return ok;
}

// 1. An unbuffered channel is a rendezvous: the send completes only when a
// receiver takes the value. A buffered one lets the sender run ahead by
// `capacity` values.
bool buffered_vs_unbuffered() {
  std::printf("1. buffered vs unbuffered\n");
  goro::Chan<int> rendezvous(0);
  std::atomic<bool> sent{false};
  goro::Chan<goro::Unit> done(0);
  goro::go([&] {
    rendezvous.send(1);  // parks until main receives
    sent = true;
    done.close();
  });
  goro::sleep_for(5ms);
  const bool waited = !sent.load();
  rendezvous.recv();
  done.recv();  // `sent` lives in this frame: wait for the goroutine's last use

  goro::Chan<int> buffered(3);
  buffered.send(1);  // none of these park: there is room
  buffered.send(2);
  buffered.send(3);
  const bool full = !buffered.try_send(4);  // a fourth would park: try_send says no
  std::printf("  unbuffered send waited for its receiver: %s; buffered: len %zu cap %zu\n", waited ? "yes" : "no",
              buffered.size(), buffered.capacity());
  return check(waited, "an unbuffered send waits for a receiver") &&
         check(full && buffered.size() == 3, "a buffered channel holds `capacity` values");
}

// 2. close: receivers get what is buffered, then nullopt (Go's ok == false).
bool close_semantics() {
  std::printf("2. close and v, ok := <-ch\n");
  goro::Chan<std::string> ch(2);
  ch.send("a");
  ch.send("b");
  ch.close();
  std::string got;
  for (;;) {
    std::optional<std::string> v = ch.recv();  // v, ok := <-ch
    if (!v) break;                              // ok == false: closed and drained
    got += *v;
  }
  bool panicked = false;
  try {
    ch.send("c");
  } catch (const goro::Panic& p) {
    panicked = std::string(p.what()) == "send on closed channel";
  }
  std::printf("  received \"%s\" after close; send on closed channel panics: %s\n", got.c_str(),
              panicked ? "yes" : "no");
  // for v := range ch { } stops at close:
  goro::Chan<int> nums(0);
  goro::go([nums]() mutable {
    for (int i = 1; i <= 3; ++i) nums.send(i);
    nums.close();
  });
  int sum = 0;
  for (int v : nums) sum += v;
  return check(got == "ab", "values buffered before close are delivered") &&
         check(panicked, "send on a closed channel panics") && check(sum == 6, "range-for stops at close");
}

// 3. A timeout: select over the result and a timer.
bool timeout() {
  std::printf("3. a timeout with select + after\n");
  goro::Chan<int> slow(0);
  goro::WaitGroup wg;
  wg.add(1);
  goro::go([slow, &wg]() mutable {
    goro::sleep_for(50ms);
    slow.try_send(42);  // nobody is listening any more: try_send, so we do not block
    wg.done();
  });
  bool timed_out = false;
  goro::select(goro::on_recv(slow, [](std::optional<int>) {}),
               goro::on_recv(goro::after(5ms), [&](auto) { timed_out = true; }));
  wg.wait();  // (only so the next part counts goroutines from a clean slate)
  std::printf("  timed out waiting for the slow goroutine: %s\n", timed_out ? "yes" : "no");
  return check(timed_out, "select returned through the timeout case");
}

// 4. A producer that would run forever; the consumer only wants a few
// values. Without a way to stop it, the producer leaks, blocked on send.
bool stopping_a_goroutine() {
  std::printf("4. stopping a goroutine with a done channel, then with a Context\n");
  const std::int64_t before = goro::num_goroutine();

  goro::Chan<int> values(0);
  goro::Chan<goro::Unit> done(0);
  goro::go([values, done]() mutable {
    for (int i = 0;; ++i) {
      bool stop = false;
      goro::select(goro::on_send(values, i), goro::on_recv(done, [&](auto) { stop = true; }));
      if (stop) return;  // closing done reaches every such goroutine at once
    }
  });
  for (int i = 0; i < 3; ++i) values.recv();
  done.close();

  auto [ctx, cancel] = goro::with_cancel(goro::background());
  goro::go([values, ctx = ctx]() mutable {
    for (int i = 0;; ++i) {
      bool stop = false;
      goro::select(goro::on_send(values, i), goro::on_recv(ctx.done(), [&](auto) { stop = true; }));
      if (stop) return;
    }
  });
  for (int i = 0; i < 3; ++i) values.recv();
  cancel();

  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (goro::num_goroutine() > before && std::chrono::steady_clock::now() < deadline) goro::sleep_for(1ms);
  std::printf("  goroutines left behind: %lld\n", static_cast<long long>(goro::num_goroutine() - before));
  return check(goro::num_goroutine() == before, "both producers exited");
}

}  // namespace

int main() {
  return goro::run([] {
    bool ok = buffered_vs_unbuffered();
    ok = close_semantics() && ok;
    ok = timeout() && ok;
    ok = stopping_a_goroutine() && ok;
    return ok ? 0 : 1;
  });
}
