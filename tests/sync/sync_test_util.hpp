// sync_test_util.hpp: helpers shared by the tests of goro's sync module.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "goro_test.hpp"

namespace sync_test {

// waiting_on counts the goroutines parked with Go's wait reason `reason`
// (parked now: a goroutine readied but not yet running still shows the
// reason it parked with, and is not counted).
inline int waiting_on(const std::string& reason) {
  int n = 0;
  for (const auto& g : goro::goroutines()) {
    n += g.state == goro::GoroutineState::waiting && g.wait_reason == reason ? 1 : 0;
  }
  return n;
}

// wait_for_waiters waits (polling, generous deadline) until at least n
// goroutines are parked with `reason`: how a test knows that goroutines have
// queued, in order, without sleeping.
inline bool wait_for_waiters(const std::string& reason, int n) {
  return goro_test::wait_until([&] { return waiting_on(reason) >= n; }, std::chrono::seconds(20));
}

// run_and_unwind runs body in a fresh runtime with `procs` Ps and returns
// how many goroutines were left parked when it returned, which run()'s
// teardown then unwound. The tests of a primitive's unwinding path use it
// instead of RuntimeTest::run(), whose teardown demands zero.
template <class F>
std::int64_t run_and_unwind(int procs, F&& body) {
  goro::run(std::forward<F>(body), goro::Options{.procs = procs});
  return goro::last_run_unwound();
}

}  // namespace sync_test
