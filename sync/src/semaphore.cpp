// semaphore.cpp: golang.org/x/sync/semaphore's Weighted, parking goroutines.
//
// What it is for: bounding a resource that requests take in different
// amounts (bytes of memory, connections, CPU slots), fairly: a request is
// never overtaken by later ones.
//
// State, all under lock_ (the runtime's futex Lock: held for a few
// instructions, never while parked): size_ (fixed), cur_ (units held), and
// a FIFO queue of Waiter records (n, the goroutine, flags), each on its
// waiter's stack.
//
// Invariants:
//   C  0 <= cur_ <= size_.
//   F  the queue is empty, or its head does not fit (size_ - cur_ < head.n):
//      whoever frees units serves the queue from the head until the head
//      does not fit, and stops there (it does not look for a smaller
//      request further back; that would starve big requests).
//   G  a Waiter leaves the queue either granted (its n already added to
//      cur_, then readied) or, when unwound, on its own.
//
// acquire(n): lock; if n fits and the queue is empty, take it and return.
// If n > size_, it can never fit: unlock and park for good without joining
// the queue (x/sync: "don't make other Acquire calls block on one that's
// doomed to fail"). Otherwise append a Waiter and park; park() releases
// lock_ after the switch, so release() sees us only when fully parked.
// try_acquire(n): the fast path only.
// release(n): lock; over-release => Panic, nothing changed; cur_ -= n, then
// serve the queue (F), readying each granted waiter under the lock (so an
// unwound waiter's cleanup, which takes the lock, never races a late
// ready).
//
// Unwinding (run()'s teardown throws out of park(); on_unwind.hpp): under
// lock_, a waiter still queued unlinks itself and, if it was the head,
// serves the queue (the waiters behind it may fit now: x/sync's cancel
// path); a waiter already granted gives its n back and serves the queue.
//
// Orphans (the runtime's orphans.cpp): a Semaphore may be destroyed while
// goroutines wait on it. Its destructor then finds it busy (units held,
// among them those of a granted waiter not yet run, or waiters queued) and
// records the death; the queue dies with it. Each waiter stamps
// wait_epoch() before it waits; its cleanup asks whether the Semaphore died
// since, and if so leaves it alone.
//
// Alternatives rejected:
//   - a lock-free counter with a parked-waiter list (as the Mutex does):
//     weighted FIFO needs to compare the head's n with what is free and
//     grant atomically; under a lock held for a few instructions that is
//     simple, and x/sync's own implementation takes a mutex too.
//   - the semaphore table: it counts units of 1 and cannot serve a waiter of
//     weight n in FIFO order.
//   - a goro::Mutex for lock_: it would park inside release(), which must
//     not park; the futex Lock spins briefly instead.
#include "goro/semaphore.hpp"

#include "goro/park.hpp"
#include "goro/runtime.hpp"
#include "on_unwind.hpp"

namespace goro {

// ~Semaphore (essay: Orphans): busy while units are held (a granted waiter
// not yet run holds its n) or waiters are queued.
Semaphore::~Semaphore() {
  bool busy;
  {
    detail::LockGuard l(lock_);
    busy = cur_ != 0 || head_ != nullptr;
  }
  if (busy || detail::run_exiting()) detail::primitive_destroyed(this, busy);
}

struct Semaphore::Waiter {
  std::int64_t n;
  Goroutine* g;
  std::uint64_t since = 0;  // wait_epoch() when it started waiting (essay: Orphans)
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  bool queued = false;
  bool granted = false;
};

void Semaphore::push_back_locked(Waiter* w) noexcept {
  w->prev = tail_;
  (tail_ != nullptr ? tail_->next : head_) = w;
  tail_ = w;
  w->queued = true;
}

void Semaphore::unlink_locked(Waiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : head_) = w->next;
  (w->next != nullptr ? w->next->prev : tail_) = w->prev;
  w->next = w->prev = nullptr;
  w->queued = false;
}

void Semaphore::notify_waiters_locked() noexcept {
  while (head_ != nullptr && size_ - cur_ >= head_->n) {
    Waiter* w = head_;
    unlink_locked(w);
    cur_ += w->n;
    w->granted = true;
    // Once readied, w may return and its record vanish: read nothing after.
    ready(w->g);
  }
}

void Semaphore::acquire(std::int64_t n) {
  lock_.lock();
  if (size_ - cur_ >= n && head_ == nullptr) {
    cur_ += n;
    lock_.unlock();
    return;
  }
  if (n > size_) {
    lock_.unlock();
    park_forever(WaitReason::semacquire);
  }
  Waiter w{n, self(), detail::wait_epoch()};
  push_back_locked(&w);
  detail::OnUnwind cleanup([this, &w] { abandon_wait(w); });
  // Granted when it returns (invariant G); the lock_ hand-over orders it.
  park_releasing(lock_, WaitReason::semacquire);
  cleanup.dismiss();
}

bool Semaphore::try_acquire(std::int64_t n) noexcept {
  detail::LockGuard l(lock_);
  if (size_ - cur_ < n || head_ != nullptr) return false;
  cur_ += n;
  return true;
}

void Semaphore::release(std::int64_t n) {
  detail::LockGuard l(lock_);
  if (cur_ - n < 0) throw Panic("semaphore: released more than held");
  cur_ -= n;
  notify_waiters_locked();
}

// abandon_wait: the waiter was unwound out of park() (essay: Unwinding).
void Semaphore::abandon_wait(Waiter& w) noexcept {
  detail::UnwindCleanup guard;
  if (!guard.alive(this, w.since)) return;  // destroyed (essay: Orphans)
  detail::LockGuard l(lock_);
  if (w.queued) {
    const bool was_head = head_ == &w;
    unlink_locked(&w);
    if (was_head) notify_waiters_locked();
  } else if (w.granted) {
    cur_ -= w.n;
    notify_waiters_locked();
  }
}

}  // namespace goro
