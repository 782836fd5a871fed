// goro_test.hpp: the fixture every goro test uses.
//
// RuntimeTest is parameterised over the number of Ps: {1, 2, 4, 8}. On this
// project's 2-core machines 4 and 8 oversubscribe the cores, which is what
// exercises stealing, spinning and wake-ups. run() boots a fresh runtime
// for the test body and afterwards checks that it left nothing behind
// (marl's marl_test.h does the same): no goroutine was still alive when the
// body returned.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>

#include "goro/goro.hpp"

namespace goro_test {

// scale multiplies stress sizes: GORO_STRESS_SCALE=10 for long runs,
// fractions (0.1) for quick ones under sanitizers.
inline double scale() {
  const char* s = std::getenv("GORO_STRESS_SCALE");
  if (s == nullptr) return 1.0;
  const double v = std::atof(s);
  return v > 0 ? v : 1.0;
}

inline std::int64_t scaled(std::int64_t n) {
  const auto v = static_cast<std::int64_t>(static_cast<double>(n) * scale());
  return v < 1 ? 1 : v;
}

inline constexpr bool kUnderSanitizer =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

// wait_until polls pred (yielding, then sleeping) until it holds or the
// deadline passes. For conditions no primitive can signal (a goroutine
// count settling); never a substitute for proper synchronisation.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (goro::in_goroutine()) {
      goro::sleep_for(std::chrono::microseconds(200));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  return true;
}

class RuntimeTest : public ::testing::TestWithParam<int> {
 protected:
  int procs() const { return GetParam(); }

  // run runs body as goroutine 1 of a fresh runtime with procs() Ps and
  // checks the teardown, as goleak does: once the body returns, every other
  // goroutine must finish within a grace period; none may be left to unwind.
  template <class F>
  int run(F&& body, std::size_t stack_size = 0) {
    const int rc = goro::run(
        [&] {
          int result = 0;
          if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
            body();
          } else {
            result = static_cast<int>(body());
          }
          wait_until([] { return goro::num_goroutine() == 1; }, std::chrono::seconds(10));
          return result;
        },
        goro::Options{.procs = procs(), .stack_size = stack_size});
    EXPECT_EQ(goro::last_run_unwound(), 0) << "goroutines were still alive 10 s after the test body returned";
    return rc;
  }
};

// waiting_on counts the goroutines parked now with Go's wait reason
// `reason` (a goroutine readied but not yet running still shows the reason
// it parked with, and is not counted).
inline int waiting_on(const std::string& reason) {
  int n = 0;
  for (const auto& g : goro::goroutines(/*with_stacks=*/false)) {
    n += g.state == goro::GoroutineState::waiting && g.wait_reason == reason ? 1 : 0;
  }
  return n;
}

// wait_for_waiters waits (polling, generous deadline) until at least n
// goroutines are parked with `reason`: how a test knows that goroutines
// have queued, in order, without sleeping.
inline bool wait_for_waiters(const std::string& reason, int n) {
  return wait_until([&] { return waiting_on(reason) >= n; }, std::chrono::seconds(20));
}

inline std::string procs_name(const ::testing::TestParamInfo<int>& info) {
  char name[16];
  std::snprintf(name, sizeof name, "P%d", info.param);
  return name;
}

}  // namespace goro_test

// GORO_INSTANTIATE_PROCS(Suite) runs every TEST_P of Suite on 1, 2, 4 and 8 Ps.
#define GORO_INSTANTIATE_PROCS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Procs, Suite, ::testing::Values(1, 2, 4, 8), ::goro_test::procs_name)
