// cond.cpp: Go's sync.Cond (sync/cond.go), with a plain FIFO queue in place
// of the runtime's notifyList tickets.
//
// What it is for: waiting, under a Mutex, for a condition that another
// goroutine will make true, parking the goroutine, with waiters woken in
// the order they started waiting.
//
// State: a queue of Waiter records (each on its waiter's stack), guarded by
// the internal lock_ (the runtime's futex Lock, held for a few
// instructions); waiting_ counts the waiters from their enqueue to their
// last touch of the Cond (step 5), for signal()'s lock-free fast path and
// for the destructor.
// Per Waiter, under lock_: queued, parked (it parks, or has parked: the
// waker must ready it), woken (picked by signal or broadcast), signalled
// (picked by signal: one wake-up that must not be lost).
//
// Invariants:
//   Q  a Waiter is in the queue <=> nobody has picked it.
//   P  a picked Waiter is readied exactly when it has set parked; one that
//      has not parked yet sees woken under lock_ and does not park.
//
// wait(), in order:
//   1. lock_, append self, unlock_ (while still holding the Mutex: so the
//      queue order is the order of the wait() calls, and a signal() made
//      after we unlock the Mutex finds us).
//   2. unlock the Mutex.
//   3. lock_; if already woken: unlock_ and go to 5.
//   4. set parked and park; park() releases lock_ after the switch, so a
//      waker that takes lock_ then finds us fully parked.
//   5. waiting_ -= 1 (the last touch of the Cond), lock the Mutex, return.
// signal(): if waiting_ is 0, return (no lock). Otherwise lock_, pop the
// head, mark it woken and signalled, ready it if parked, unlock_.
// broadcast(): the same for every waiter in the queue.
//
// Unwinding (run()'s teardown throws out of park(); on_unwind.hpp): under
// lock_, a waiter still queued unlinks itself; one picked by signal() hands
// that signal on to the next waiter, so that no other waiter misses a
// wake-up meant for one of them. It then re-locks the Mutex before letting
// the exception go on, so the caller's std::unique_lock stays balanced. If
// another goroutine holds the Mutex, that means parking in the middle of the
// unwinding, which the runtime does not make safe yet (on_unwind.hpp); the
// usual case, a free Mutex, takes it with try_lock() and never switches.
//
// Orphans (the runtime's orphans.cpp): a Cond may be destroyed while
// goroutines wait on it. Its destructor then finds waiting_ non-zero (a
// waiter queued, or picked and not yet gone: it still has to hand a signal
// on), records the death, and lets the queue die with it. Each waiter
// stamps wait_epoch() before it waits; its cleanup asks whether the Cond
// died since, and if so leaves it alone. It still re-locks the Mutex,
// through the pointer it read before waiting: wait()'s contract is to
// return, or unwind, holding it, and the caller's lock guard will unlock
// it; a Mutex that died with the Cond is the caller's use-after-free.
//
// Alternatives rejected:
//   - Go's notifyList (a ticket taken before unlocking, waiters matched to
//     tickets): FIFO too, but an unwound waiter leaves a hole in the ticket
//     sequence that a later signal() would be spent on; the explicit queue
//     can simply unlink it, and step 3's check closes the same race the
//     tickets close.
//   - waiters parking on the semaphore table: it wakes in FIFO order too,
//     but a broadcast would need the number of waiters and one release
//     each, and a waiter between steps 2 and 4 could take a unit meant for
//     an earlier one.
#include "goro/cond.hpp"
#include "goro/park.hpp"

#include "on_unwind.hpp"

namespace goro {

struct Cond::Waiter {
  Goroutine* g;
  std::uint64_t since = 0;  // wait_epoch() when it started waiting (essay: Orphans)
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  bool queued = false;
  bool parked = false;
  bool woken = false;
  bool signalled = false;
};

Cond::Waiter* Cond::pop_front_locked() noexcept {
  Waiter* w = head_;
  if (w != nullptr) {
    unlink_locked(w);
    w->woken = true;
  }
  return w;
}

void Cond::unlink_locked(Waiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->next = w->prev = nullptr;
  w->queued = false;
}

void Cond::wait() {
  Mutex* const mu = &mu_;  // read now: the Cond is not touched after step 5
  Waiter w{self(), detail::wait_epoch()};
  {
    detail::LockGuard l(lock_);
    w.prev = tail_;
    (tail_ != nullptr ? tail_->next : head_) = &w;
    tail_ = &w;
    w.queued = true;
    // Release pairs with the acquire load in signal()/broadcast().
    waiting_.fetch_add(1, std::memory_order_release);
  }
  {
    // mu->unlock() threw (the caller did not hold the Mutex): nothing waits.
    detail::OnUnwind leave([this, &w] {
      leave_queue(w);
      waiting_.fetch_sub(1, std::memory_order_release);
    });
    mu->unlock();
    leave.dismiss();
  }
  lock_.lock();
  if (w.woken) {
    lock_.unlock();
  } else {
    w.parked = true;
    detail::OnUnwind cleanup([this, &w, mu] { abandon_wait(w, mu); });
    park_releasing(lock_, WaitReason::sync_cond_wait);
    cleanup.dismiss();
  }
  // Step 5, the last touch of the Cond. Release pairs with the destructor's
  // acquire load: whoever sees us gone sees us done with the Cond.
  waiting_.fetch_sub(1, std::memory_order_release);
  mu->lock();
}

void Cond::signal() noexcept {
  // Acquire pairs with the release increment in wait().
  if (waiting_.load(std::memory_order_acquire) == 0) return;
  detail::LockGuard l(lock_);
  if (Waiter* w = pop_front_locked()) {
    w->signalled = true;
    // Under lock_, so an unwound waiter cannot be between its cleanup and
    // another park when we ready it (invariant P).
    if (w->parked) ready(w->g);
  }
}

void Cond::broadcast() noexcept {
  // Acquire pairs with the release increment in wait().
  if (waiting_.load(std::memory_order_acquire) == 0) return;
  detail::LockGuard l(lock_);
  while (Waiter* w = pop_front_locked()) {
    // Once readied, w may return and its record vanish: read nothing after.
    if (w->parked) ready(w->g);
  }
}

// leave_queue takes a waiter that gives up out of the queue; a signal that
// already picked it goes to the next waiter instead.
void Cond::leave_queue(Waiter& w) noexcept {
  detail::LockGuard l(lock_);
  if (w.queued) {
    unlink_locked(&w);
  } else if (w.signalled) {
    if (Waiter* next = pop_front_locked()) {
      next->signalled = true;
      if (next->parked) ready(next->g);
    }
  }
}

// abandon_wait: the waiter was unwound out of park() (essay: Unwinding).
void Cond::abandon_wait(Waiter& w, Mutex* mu) noexcept {
  {
    detail::UnwindCleanup guard;
    if (guard.alive(this, w.since)) {  // else destroyed (essay: Orphans)
      leave_queue(w);
      waiting_.fetch_sub(1, std::memory_order_release);
    }
  }
  if (!mu->try_lock()) mu->lock();
}

// destroyed: ~Cond's slow path (essay: Orphans). The waiters are in the
// Cond's own queue, which dies with it: nothing else can find them.
void Cond::destroyed() noexcept {
  detail::primitive_destroyed(this, waiting_.load(std::memory_order_acquire) != 0);
}

}  // namespace goro
