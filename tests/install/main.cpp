// A small real goro program: used by the install tests to prove that an
// installed or vendored goro links and runs, also when this program is
// built by another compiler than goro was. It calls into every module, so
// every module's exported signatures must match.
#include <goro/goro.hpp>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <sstream>

int main() {
  return goro::run([] {
    using namespace std::chrono_literals;
    // runtime and channels: go(f), go(f, args...), select with a timeout.
    goro::Chan<int> ch(0);
    goro::go([ch] { ch.send(40); });
    int v = *ch.recv();
    goro::go([](goro::Chan<int> c, int x) { c.send(x); }, ch, 1);
    goro::select(goro::on_recv(ch, [&](std::optional<int> x) { v += x.value_or(0); }),
                 goro::on_recv(goro::after(10s), [](auto) {}));
    // sync: a WaitGroup and a Mutex.
    goro::WaitGroup wg;
    goro::Mutex mu;
    wg.add(2);
    int locked = 0;
    for (int i = 0; i < 2; ++i) {
      goro::go([&] {
        std::lock_guard<goro::Mutex> lock(mu);
        ++locked;
        wg.done();
      });
    }
    wg.wait();
    if (locked != 2) v = 0;
    // pool: a Future from a WorkerPool; context: a cancelled Context.
    goro::WorkerPool pool(2);
    v += pool.submit([] { return 1; }).get();
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    cancel();
    if (ctx.err() != goro::ContextError::canceled) v = 0;
    // introspection, which reports the creation site.
    std::ostringstream dump;
    goro::dump_goroutines(dump);
    if (dump.str().rfind("goroutine 1 [", 0) != 0) v = 0;
    std::printf("consumer: %d\n", v);
    return v == 42 ? 0 : 1;
  });
}
