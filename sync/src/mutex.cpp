// mutex.cpp: Go's sync.Mutex (internal/sync/mutex.go), parking goroutines
// through the semaphore table (sema.cpp).
//
// What it is for: a lock whose waiters are goroutines, so waiting costs a
// parked goroutine, not a blocked thread, and whose common case (nobody else
// wants the lock) is one CAS to lock and one to unlock.
//
// State: one 32-bit word, state_, and a semaphore word, sema_, on which
// waiters park.
//   bit 0  kLocked    the mutex is held
//   bit 1  kWoken     a waiter has been woken, or a spinner is about to take
//                     the lock: unlock need not wake anyone else
//   bit 2  kStarving  starvation mode
//   3..31             the number of waiters (parked, or about to park)
//
// Invariants:
//   W  "waiters" counts the parties that registered to park and hold no
//      wake-up; an unlock that wakes someone moves one of them out of the
//      count and onto the semaphore (one unit). So at any moment
//      (registered parties) = waiters + (units on their way), a unit being
//      owned by whoever takes it.
//   K  kWoken is owned by at most one party (the woken waiter or a spinner);
//      only its owner clears it, so there is at most one normal-mode unit in
//      flight, and starvation mode can only be entered by that owner.
//   S  kStarving is set only while kLocked is, by a waiter that waited more
//      than 1 ms. In starvation mode unlock leaves kLocked clear and hands
//      the unit to the head waiter, which sets kLocked itself; kStarving
//      keeps newcomers out in between.
//
// lock(), in order:
//   1. fast path: CAS 0 -> kLocked.
//   2. spin (at most 4 rounds of 30 pauses) while the mutex is held in
//      normal mode, if there is more than one CPU and more than one P, so
//      the holder may be running elsewhere and about to unlock; a spinner
//      sets kWoken so that unlock does not wake a sleeper it would beat.
//   3. CAS in the new state: normal mode: try to set kLocked; if the mutex
//      was held (or starving): one more waiter; if this waiter starves and
//      the mutex is held: kStarving; clear kWoken if we owned it.
//   4. took it (it was free and not starving): done. Otherwise park on the
//      semaphore, at the back of the queue the first time, at the front
//      (lifo) after a wake-up that lost the race, so a waiter keeps its
//      place. A waiter that has now waited more than 1 ms is starving.
//   5. woken in starvation mode: ownership was handed to us. Set kLocked,
//      leave the waiter count, and return to normal mode if we are the last
//      waiter or did not wait 1 ms (two goroutines would otherwise hand the
//      lock back and forth in lock step forever, the slow path each time).
//   6. woken in normal mode: we own kWoken; go to 2 and compete.
// unlock(), in order:
//   1. fast path: CAS kLocked -> 0. Otherwise CAS kLocked off in a loop; a
//      state without kLocked is the "unlock of unlocked mutex" panic, thrown
//      before anything changed.
//   2. starvation mode: semrelease with handoff (the unit goes to the head
//      waiter, and we yield so it runs now).
//   3. normal mode: if there are waiters and nobody holds kWoken or the
//      lock, take one waiter out of the count, set kWoken, and release one
//      unit: the woken waiter competes with newcomers (step 6).
//
// Unwinding (run()'s teardown throws out of park(); see on_unwind.hpp): the
// waiter leaves as if it had never come, keeping W and K. If semacquire
// reports no unit for it, it takes itself out of the waiter count, unless
// the count shows that a wake-up is already on its way to it (the count is
// zero, or it is the single waiter of a starving mutex whose owner left):
// then it takes that unit, and goes on as below. With a unit: in starvation
// mode it owns the mutex, so it takes over (step 5) and unlocks; in normal
// mode it owns kWoken, so it clears it and passes the wake-up on (unlock's
// step 3).
//
// Orphans (the runtime's orphans.cpp): a Mutex may be destroyed while
// goroutines wait for it, typically a member of an object whose goroutines
// captured `this`. Its destructor then sees waiters or a wake-up in flight
// in state_ (kWoken, kStarving, the count: "busy"), records the death and
// takes the waiters out of the semaphore table; they stay parked until the
// teardown unwinds them. An unwinding waiter stamps wait_epoch() before it
// waits, and its cleanup (semacquire's, then abandon_wait) asks whether the
// Mutex died since: if so it touches nothing.
//
// Alternatives rejected:
//   - strict FIFO handoff always (a ticket or MCS lock): every unlock waits
//     for a context switch into the next owner; Go measured normal mode to
//     be much faster and keeps FIFO for when a waiter starves.
//   - barging only (Go before 1.9): a waiter can starve behind a goroutine
//     that re-locks in a loop (TestMutexFairness in tests/sync).
//   - std::mutex or a futex: blocks the thread, and with it every goroutine
//     queued on its P.
//   - unbounded or long spinning: on a 2-core machine it burns the core the
//     holder needs; Go's 4 x 30 pauses cost about as much as a short
//     critical section.
#include "goro/mutex.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "goro/detail/futex.hpp"
#include "goro/detail/sema.hpp"
#include "goro/runtime.hpp"
#include "goro/park.hpp"
#include "on_unwind.hpp"

namespace goro {
namespace {

// A waiter that has waited longer than this switches the mutex to
// starvation mode (Go's starvationThresholdNs): long against a context
// switch (~1 us), short against a user-visible stall.
constexpr std::int64_t kStarvationThresholdNs = 1'000'000;

// Spinning: Go's active_spin (4 rounds) of active_spin_cnt (30) pauses, about
// the length of a short critical section; more only burns the holder's core.
constexpr int kSpinRounds = 4;
constexpr int kPausesPerRound = 30;

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void fatal_inconsistent() noexcept {
  std::fputs("fatal error: sync: inconsistent mutex state\n", stderr);
  std::abort();
}

// can_spin: Go's sync_runtime_canSpin, with what goro can see cheaply: more
// than one CPU, and (for a goroutine) more than one P, so the holder may be
// running right now on another. A plain thread competes with other threads
// and may spin on any multicore machine.
bool can_spin(int rounds) noexcept {
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  if (rounds >= kSpinRounds || !multicore) return false;
  return !in_goroutine() || gomaxprocs() > 1;
}

void spin() noexcept {
  for (int i = 0; i < kPausesPerRound; ++i) detail::cpu_relax();
}

}  // namespace

void Mutex::lock_slow(WaitReason reason) {
  std::int64_t wait_start = 0;  // when this caller first parked; 0: not yet
  bool starving = false;        // it has waited longer than the threshold
  bool awoke = false;           // it owns kWoken (woken, or spinning)
  int spins = 0;
  const std::uint64_t since = detail::wait_epoch();  // for an unwinding cleanup (essay)
  std::uint32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Step 2: spin. Never in starvation mode: the lock goes to the waiters.
    if ((old & (kLocked | kStarving)) == kLocked && can_spin(spins)) {
      // Relaxed: kWoken is a hint to unlock() (do not wake a sleeper); no
      // data rides on it.
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | kWoken, std::memory_order_relaxed)) {
        awoke = true;
      }
      spin();
      ++spins;
      old = state_.load(std::memory_order_relaxed);  // feeds a CAS, which orders
      continue;
    }
    // Step 3.
    std::uint32_t next = old;
    if ((old & kStarving) == 0) next |= kLocked;
    if ((old & (kLocked | kStarving)) != 0) next += kWaiter;
    // Only while it is held: unlock expects a starving mutex to have waiters.
    if (starving && (old & kLocked) != 0) next |= kStarving;
    if (awoke) {
      if ((next & kWoken) == 0) fatal_inconsistent();
      next &= ~kWoken;
    }
    // Acquire pairs with the release CAS in unlock() when this takes the lock.
    if (!state_.compare_exchange_weak(old, next, std::memory_order_acquire, std::memory_order_relaxed))
      continue;
    if ((old & (kLocked | kStarving)) == 0) return;  // step 4: took it
    const bool lifo = wait_start != 0;
    if (!lifo) wait_start = now_ns();
    {
      detail::SemaUnwind unwind{this, since};
      detail::OnUnwind cleanup([this, &unwind] { abandon_wait(unwind); });
      detail::semacquire(&sema_, lifo, reason, unwind);
      cleanup.dismiss();
    }
    starving = starving || now_ns() - wait_start > kStarvationThresholdNs;
    // Relaxed: the semaphore ordered the unlocker's release before us.
    if ((state_.load(std::memory_order_relaxed) & kStarving) != 0) {
      take_ownership_from_handoff(starving);  // step 5
      return;
    }
    awoke = true;  // step 6
    spins = 0;
    old = state_.load(std::memory_order_relaxed);
  }
}

// take_ownership_from_handoff is step 5: the caller took the unit that a
// starvation-mode unlock handed to it; kLocked is clear and it still counts
// as a waiter.
void Mutex::take_ownership_from_handoff(bool starving) noexcept {
  const std::uint32_t old = state_.load(std::memory_order_relaxed);
  if ((old & (kLocked | kWoken)) != 0 || (old >> kWaiterShift) == 0) fatal_inconsistent();
  std::uint32_t delta = kLocked - kWaiter;  // modular: sets kLocked, one waiter fewer
  if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
  // The unlocker's release reached us through the semaphore (sema.hpp);
  // acquire keeps this add ahead of the critical section regardless.
  state_.fetch_add(delta, std::memory_order_acquire);
}

void Mutex::unlock_slow(std::uint32_t old) {
  std::uint32_t now;
  for (;;) {
    if ((old & kLocked) == 0) throw Panic("sync: unlock of unlocked mutex");
    now = old - kLocked;
    // Release pairs with the acquire CAS of the next locker (lock_slow step
    // 3, or lock()/try_lock()).
    if (state_.compare_exchange_weak(old, now, std::memory_order_release, std::memory_order_relaxed)) break;
  }
  if ((now & kStarving) != 0) {
    detail::semrelease(&sema_, true);  // unlock step 2
    return;
  }
  wake_one(now);
}

// wake_one is unlock's step 3, from state `old` (kLocked already cleared).
void Mutex::wake_one(std::uint32_t old) {
  for (;;) {
    // Nobody to wake; or someone holds kWoken or already took the lock; or
    // starvation mode, where the waiters are served by handoff only.
    if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
    // Relaxed: the wake-up itself is ordered by the semaphore, whose release
    // follows our release CAS in program order.
    if (state_.compare_exchange_weak(old, (old - kWaiter) | kWoken, std::memory_order_relaxed)) {
      detail::semrelease(&sema_, false);
      return;
    }
  }
}

// abandon_wait: a waiter is unwound out of semacquire (essay: Unwinding).
// Runs while the exception is in flight, so it must not yield or park
// (on_unwind.hpp): it unlocks with release(), without the preemption point.
void Mutex::abandon_wait(const detail::SemaUnwind& unwind) noexcept {
  if (unwind.gone) return;
  detail::UnwindCleanup guard;
  if (!guard.alive(this, unwind.since)) return;  // destroyed since semacquire looked
  bool granted = unwind.granted;
  while (!granted) {
    std::uint32_t old = state_.load(std::memory_order_relaxed);  // feeds the CAS below
    const std::uint32_t waiters = old >> kWaiterShift;
    const bool handoff_to_us = (old & (kStarving | kLocked)) == kStarving && waiters == 1;
    if (waiters == 0 || handoff_to_us) {
      // By W, a wake-up was counted for us: take its unit.
      detail::semacquire_spin(&sema_);
      granted = true;
      break;
    }
    std::uint32_t next = old - kWaiter;
    // The last waiter is gone: starvation mode has nobody left to serve.
    if ((next >> kWaiterShift) == 0) next &= ~kStarving;
    if (state_.compare_exchange_weak(old, next, std::memory_order_relaxed)) return;
  }
  // Relaxed: we hold a unit; the semaphore ordered its release before us.
  std::uint32_t old = state_.load(std::memory_order_relaxed);
  if ((old & kStarving) != 0) {
    // The mutex is ours: take it over as step 5 does (staying in starvation
    // mode if others wait), and give it to the next waiter.
    take_ownership_from_handoff(true);
    release();
    return;
  }
  // We own kWoken: clear it, and wake another waiter if the mutex is free.
  while (!state_.compare_exchange_weak(old, old & ~kWoken, std::memory_order_relaxed)) {
  }
  wake_one(old & ~kWoken);
}

}  // namespace goro

namespace goro {

// destroyed: ~Mutex's slow path, for a Mutex destroyed with waiters or a
// wake-up in flight, or while run() is ending (essay: Orphans).
void Mutex::destroyed() noexcept {
  const bool busy = (state_.load(std::memory_order_acquire) & ~kLocked) != 0;
  detail::primitive_destroyed(this, busy);
  if (busy) detail::sema_orphan(&sema_);
}

}  // namespace goro
