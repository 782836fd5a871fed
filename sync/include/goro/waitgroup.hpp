// WaitGroup: wait for a collection of goroutines to finish (sync.WaitGroup).
//
//   goro::WaitGroup wg;
//   for (auto& job : jobs) { wg.add(1); goro::go([&] { run(job); wg.done(); }); }
//   wg.wait();
//
// add(delta) may be negative; the counter going below zero throws
// Panic("sync: negative WaitGroup counter"). wait() parks until the counter
// is zero; any number of goroutines (or plain threads) may wait. A
// WaitGroup may be reused once every wait() of the previous round returned.
// A negative counter leaves the WaitGroup as it was before that add().
// Waiting callers report the wait reason "sync.WaitGroup.Wait".
//
// Memory ordering: each done() happens before the wait() it unblocks returns.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/fast_path.hpp"
#include "goro/wait_reason.hpp"

namespace goro {

namespace detail {
struct SemaUnwind;
}

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;
  // A WaitGroup may be destroyed while goroutines wait on it: they stay
  // parked until run()'s teardown unwinds them, which leaves it alone.
  ~WaitGroup() {
    if ((state_.load(std::memory_order_acquire) | sema_.load(std::memory_order_acquire)) != 0 ||
        detail::run_exiting()) [[unlikely]] {
      destroyed();
    }
  }

  void add(std::int64_t delta);
  void done() { add(-1); }
  void wait();

 private:
  void abandon_wait(const detail::SemaUnwind& unwind) noexcept;
  void destroyed() noexcept;

  // state_: the counter in the high 32 bits, the number of waiters in the
  // low 32 (Go's layout), so add() and wait() agree with one atomic word.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};
};

}  // namespace goro
