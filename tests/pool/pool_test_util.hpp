// pool_test_util.hpp: helpers shared by the tests of goro's pool module.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "goro_test.hpp"

namespace pool_test {

using goro_test::wait_for_waiters;
using goro_test::waiting_on;

// parked reports whether goroutine `id` is parked now with `reason`.
inline bool parked(std::uint64_t id, const std::string& reason) {
  for (const auto& g : goro::goroutines()) {
    if (g.id == id) return g.state == goro::GoroutineState::waiting && g.wait_reason == reason;
  }
  return false;
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
