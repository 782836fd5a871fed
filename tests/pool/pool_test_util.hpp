// pool_test_util.hpp: helpers shared by the tests of goro's pool module.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "goro_test.hpp"

namespace pool_test {

// waiting_on counts the goroutines parked now with Go's wait reason `reason`.
inline int waiting_on(const std::string& reason) {
  int n = 0;
  for (const auto& g : goro::goroutines()) {
    n += g.state == goro::GoroutineState::waiting && g.wait_reason == reason ? 1 : 0;
  }
  return n;
}

// parked reports whether goroutine `id` is parked now with `reason`.
inline bool parked(std::uint64_t id, const std::string& reason) {
  for (const auto& g : goro::goroutines()) {
    if (g.id == id) return g.state == goro::GoroutineState::waiting && g.wait_reason == reason;
  }
  return false;
}

// wait_for_waiters waits (polling, generous deadline) until at least n
// goroutines are parked with `reason`: how a test knows that goroutines
// have queued without sleeping.
inline bool wait_for_waiters(const std::string& reason, int n) {
  return goro_test::wait_until([&] { return waiting_on(reason) >= n; }, std::chrono::seconds(20));
}

// HighWater counts things in flight and remembers the most there ever were.
class HighWater {
 public:
  void enter() {
    const std::int64_t now = current_.fetch_add(1, std::memory_order_acq_rel) + 1;
    std::int64_t seen = max_.load(std::memory_order_relaxed);
    while (now > seen && !max_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  void leave() { current_.fetch_sub(1, std::memory_order_acq_rel); }
  std::int64_t current() const { return current_.load(std::memory_order_acquire); }
  std::int64_t max() const { return max_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::int64_t> current_{0};
  std::atomic<std::int64_t> max_{0};
};

}  // namespace pool_test
