// waitgroup.cpp: Go's WaitGroup (sync/waitgroup.go).
//
// What it is for: one goroutine (or several) waiting until a counted set of
// goroutines has finished, with done() costing one atomic add.
//
// State: one 64-bit word holds the counter (high half) and the number of
// waiters (low half), so add() and wait() agree through a single atomic;
// waiters park on the semaphore sema_.
//
// Invariants:
//   Z  waiters > 0 only while counter > 0, or for the instant between the
//      add() that brings the counter to zero and its reset of the word.
//   U  the add() that reaches zero releases sema_ exactly once per waiter it
//      saw; each waiter of that round takes one unit.
//
// add(delta), in order:
//   1. add delta to the counter (acq_rel: a done() releases what its
//      goroutine did, and the add that reaches zero acquires it all).
//   2. negative: undo and Panic("sync: negative WaitGroup counter").
//   3. a positive delta that starts a round while waiters are registered:
//      the misuse Go reports ("Add called concurrently with Wait").
//   4. counter > 0, or no waiters: done.
//   5. counter zero with waiters: nobody may change the word now (an add
//      would be step 3's misuse, a wait returns at zero); check that, zero
//      the word, and release one unit per waiter.
// wait(): counter zero => return. Otherwise CAS waiters+1 (so it cannot miss
// the counter reaching zero: the CAS fails if the word changed) and park on
// sema_. Woken, the word must be zero again, or the group was reused too
// early (Go's panic).
//
// Unwinding (run()'s teardown throws out of park(); on_unwind.hpp): a
// waiter that took its unit is done. Otherwise, while the counter is still
// positive it takes itself out of the waiter count (a CAS, so it cannot race
// step 5); once the counter has reached zero, a unit is on its way to it
// (U), and it takes that unit.
//
// Orphans (the runtime's orphans.cpp): a WaitGroup may be destroyed while
// goroutines wait on it (main gave up on the workers and returned). Its
// destructor then finds it busy (a counter or waiters in state_, units in
// flight in sema_), records the death and takes the waiters out of the
// semaphore table. Each waiter stamps wait_epoch() before it waits; its
// cleanup asks whether the WaitGroup died since, and if so touches nothing.
//
// Alternatives rejected: a mutex and a condition variable (Go 1.0's
// WaitGroup; every done() took the lock); a per-group waiter list (the word
// plus the semaphore table costs 12 bytes and no allocation).
#include "goro/waitgroup.hpp"

#include "goro/detail/sema.hpp"
#include "goro/runtime.hpp"
#include "goro/park.hpp"
#include "on_unwind.hpp"

namespace goro {

void WaitGroup::add(std::int64_t delta) {
  const std::uint64_t step = static_cast<std::uint64_t>(delta) << 32;  // modular for a negative delta
  // acq_rel: a done() releases its goroutine's work; the add that reaches
  // zero acquires every done()'s, and releases it to the waiters via sema_.
  const std::uint64_t state = state_.fetch_add(step, std::memory_order_acq_rel) + step;
  const auto v = static_cast<std::int32_t>(state >> 32);
  const auto w = static_cast<std::uint32_t>(state);
  if (v < 0) {
    state_.fetch_sub(step, std::memory_order_relaxed);  // undo; nothing to publish
    throw Panic("sync: negative WaitGroup counter");
  }
  if (w != 0 && delta > 0 && v == static_cast<std::int32_t>(delta)) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  if (v > 0 || w == 0) return;
  // Counter is zero and there are waiters (step 5).
  if (state_.load(std::memory_order_relaxed) != state) {
    throw Panic("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  // Relaxed: nobody may touch the word now (step 5); the waiters are
  // ordered after us by sema_.
  state_.store(0, std::memory_order_relaxed);
  for (std::uint32_t i = 0; i < w; ++i) detail::semrelease(&sema_, false);
}

void WaitGroup::wait() {
  // Acquire pairs with the acq_rel add that brought the counter to zero.
  std::uint64_t state = state_.load(std::memory_order_acquire);
  if ((state >> 32) == 0) return;
  const std::uint64_t since = detail::wait_epoch();  // for an unwinding cleanup (essay)
  for (;;) {
    if ((state >> 32) == 0) return;
    // Acquire pairs with add()'s acq_rel add (the failure load too: it may
    // see the counter at zero and return).
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acquire,
                                     std::memory_order_acquire)) {
      {
        detail::SemaUnwind unwind{this, since};
        detail::OnUnwind cleanup([this, &unwind] { abandon_wait(unwind); });
        detail::semacquire(&sema_, false, WaitReason::sync_waitgroup_wait, unwind);
        cleanup.dismiss();
      }
      // Acquire pairs with the next round's add(), if one raced with us.
      if (state_.load(std::memory_order_acquire) != 0) {
        throw Panic("sync: WaitGroup is reused before previous Wait has returned");
      }
      return;
    }
  }
}

// abandon_wait: a waiter is unwound (essay: Unwinding). With its unit it
// is done; without, it takes back its registration.
void WaitGroup::abandon_wait(const detail::SemaUnwind& unwind) noexcept {
  if (unwind.gone || unwind.granted) return;
  detail::UnwindCleanup guard;
  if (!guard.alive(this, unwind.since)) return;  // destroyed (essay: Orphans)
  std::uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) != 0 && static_cast<std::uint32_t>(state) != 0) {
      // Relaxed: takes our own registration back; nothing to publish.
      if (state_.compare_exchange_weak(state, state - 1, std::memory_order_relaxed)) return;
      continue;
    }
    detail::semacquire_spin(&sema_);  // the counter reached zero: our unit is coming (U)
    return;
  }
}

}  // namespace goro

namespace goro {

// destroyed: ~WaitGroup's slow path (essay: Orphans).
void WaitGroup::destroyed() noexcept {
  const bool busy = (state_.load(std::memory_order_acquire) | sema_.load(std::memory_order_acquire)) != 0;
  detail::primitive_destroyed(this, busy);
  if (busy) detail::sema_orphan(&sema_);
}

}  // namespace goro
