// introspect_child: a goro process for the CLI tests to inspect. It parks
// a known set of goroutines, prints "ready <pid>" and waits until its stdin
// closes (inside goro::blocking, so its P keeps serving).
//
//   100 goroutines  [chan receive]  created at kParkedLine
//     3 goroutines  [sleep]         named "sleeper"
//     1 goroutine   [select]        (the one waiting for stdin to close)
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "goro/goro.hpp"

// park_forever is where the 100 parked goroutines wait: their stacks in
// the dumps start here, at the line marked BLOCKED_LINE.
__attribute__((noinline)) void park_forever(goro::Chan<int> never) {
  asm volatile("");
  const int v = never.recv().value_or(0);  // BLOCKED_LINE
  asm volatile("" ::"r"(v));
}

int main() {
  return goro::run([] {
    goro::Chan<int> never(0);
    goro::Chan<goro::Unit> quit(0);
    for (int i = 0; i < 100; ++i) {
      goro::go([never] { park_forever(never); });  // PARKED_LINE
    }
    for (int i = 0; i < 3; ++i) {
      goro::go([] {
        goro::set_goroutine_name("sleeper");
        goro::sleep_for(std::chrono::hours(1));
      });
    }
    goro::go([quit] {
      char c;
      while (goro::blocking([&] { return ::read(0, &c, 1); }) > 0) {
      }
      quit.close();
    });
    goro::go([quit] { goro::select(goro::on_recv(quit, [](auto) {})); });
    std::printf("ready %d\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    quit.recv();
    return 0;
  });
}
