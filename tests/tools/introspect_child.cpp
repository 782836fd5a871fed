// introspect_child: a goro process for the CLI tests to inspect. It parks
// a known set of goroutines, prints "ready <pid>" once every one of them
// is parked where the tests expect it, and waits until its stdin closes
// (inside goro::blocking, so its P keeps serving).
//
//   100 goroutines  [chan receive]  created at kParkedLine
//     3 goroutines  [sleep]         named "sleeper"
//     1 goroutine   [select]        (the one waiting for stdin to close)
//     1 goroutine   [syscall]       (the stdin reader, once it has said ready)
//     main          [chan receive]
//
// With the argument "leak", it then keeps adding goroutines parked at the
// line marked LEAK_LINE, one every millisecond: a leak for `goro top`.
//
// "ready" means what the tests then check: spawning a goroutine only makes
// it runnable, so the reader polls goroutines() until the parked set is
// complete before it says so (a WaitGroup done just before the receive
// would still leave the receivers runnable for a moment).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/goro.hpp"

// park_forever is where the 100 parked goroutines wait: their stacks in
// the dumps start here, at the line marked BLOCKED_LINE.
__attribute__((noinline)) void park_forever(goro::Chan<int> never) {
  asm volatile("");
  const int v = never.recv().value_or(0);  // BLOCKED_LINE
  asm volatile("" ::"r"(v));
}

namespace {

// all_parked: main, the 100 receivers, the 3 sleepers and the selector are
// all waiting, each for its reason.
bool all_parked() {
  int receivers = 0, sleepers = 0, selectors = 0;
  bool main_parked = false;
  for (const goro::GoroutineInfo& g : goro::goroutines()) {
    if (g.state != goro::GoroutineState::waiting) continue;
    if (g.id == 1) {
      main_parked = g.wait_reason == "chan receive";
    } else if (g.wait_reason == "chan receive") {
      ++receivers;
    } else if (g.wait_reason == "sleep" && g.name == "sleeper") {
      ++sleepers;
    } else if (g.wait_reason == "select") {
      ++selectors;
    }
  }
  return main_parked && receivers == 100 && sleepers == 3 && selectors == 1;
}

}  // namespace

int main(int argc, char** argv) {
  const bool leak = argc > 1 && std::strcmp(argv[1], "leak") == 0;
  return goro::run([leak] {
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
    goro::go([quit, leak] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!all_parked()) {
        if (std::chrono::steady_clock::now() > deadline) {
          std::fputs("introspect_child: the goroutines did not all park within 60 s\n", stderr);
          std::abort();
        }
        goro::sleep_for(std::chrono::milliseconds(1));
      }
      goro::blocking([] {
        std::printf("ready %d\n", static_cast<int>(::getpid()));
        std::fflush(stdout);
      });
      if (leak) {
        goro::go([quit] {
          goro::Chan<int> leaked(0);
          while (!quit.closed()) {
            goro::go([leaked] { leaked.recv(); });  // LEAK_LINE
            goro::sleep_for(std::chrono::milliseconds(1));
          }
        });
      }
      char c;
      while (goro::blocking([&] { return ::read(0, &c, 1); }) > 0) {
      }
      quit.close();
    });
    goro::go([quit] { goro::select(goro::on_recv(quit, [](auto) {})); });
    quit.recv();
    return 0;
  });
}
