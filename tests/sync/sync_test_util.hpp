// sync_test_util.hpp: helpers shared by the tests of goro's sync module.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "goro_test.hpp"

namespace sync_test {

using goro_test::wait_for_waiters;
using goro_test::waiting_on;

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
