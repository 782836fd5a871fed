// waitgroup.cpp: Go's WaitGroup (sync/waitgroup.go).
//
// One 64-bit word holds the counter (high half) and the number of waiters
// (low half). add() changes the counter with one atomic add; when it drops
// to zero with waiters present, it zeroes the word and releases the
// semaphore once per waiter. wait() returns at once if the counter is zero;
// otherwise it registers as a waiter with a CAS (so it cannot race with the
// counter reaching zero) and parks on the semaphore.
#include "goro/waitgroup.hpp"

#include "goro/detail/sema.hpp"
#include "goro/runtime.hpp"

namespace goro {

void WaitGroup::add(std::int64_t delta) {
  // acq_rel: a done() releases what its goroutine did; the add that reaches
  // zero acquires it all before waking the waiters.
  const std::uint64_t state =
      state_.fetch_add(static_cast<std::uint64_t>(delta) << 32, std::memory_order_acq_rel) +
      (static_cast<std::uint64_t>(delta) << 32);
  const auto v = static_cast<std::int32_t>(state >> 32);
  const auto w = static_cast<std::uint32_t>(state);
  if (v < 0) throw Panic("sync: negative WaitGroup counter");
  if (w != 0 && delta > 0 && v == static_cast<std::int32_t>(delta)) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  if (v > 0 || w == 0) return;
  // Counter is zero and there are waiters. Nobody may change the state now
  // (an add would be the misuse above; a wait returns at zero).
  if (state_.load(std::memory_order_relaxed) != state) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  state_.store(0, std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < w; ++i) detail::semrelease(&sema_, false);
}

void WaitGroup::wait() {
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acquire, std::memory_order_acquire)) {
      detail::semacquire(&sema_, false, WaitReason::sync_waitgroup_wait);
      if (state_.load(std::memory_order_acquire) != 0) {
        throw Panic("sync: WaitGroup is reused before previous Wait has returned");
      }
      return;
    }
  }
}

}  // namespace goro
