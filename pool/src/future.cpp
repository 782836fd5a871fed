// future.cpp: the shared result behind goro::Future, parking its waiters.
//
// What it is for: a job's outcome (value or exception), produced once by
// the goroutine that runs the job and read by any number of goroutines and
// plain threads, which park until it is there.
//
// State (FutureCore): state_ (pending, value, failed), the exception, and a
// doubly linked list of FutureWaiter records, each on its waiter's stack;
// lock_ (a SpinLock: held for a few instructions, never while parked)
// guards the list and the change of state_.
//
// Invariants:
//   S  state_ leaves kPending exactly once, under lock_, after the value or
//      the exception has been written (release store).
//   W  a waiter is linked only while state_ is kPending; complete() empties
//      the list in the same critical section in which it sets state_, so no
//      waiter can be linked after the result is there and none is missed.
//   R  a waiter is readied at most once per park: by complete() or by its
//      timer, whichever unlinks it first under lock_; the other finds it
//      unlinked and leaves it alone.
//
// wait(), in order:
//   1. fast path: state_ (acquire) is not kPending => return.
//   2. lock; while pending: link a waiter for self(), park(unlock_core);
//      park() releases lock_ only after the goroutine is switched out, so
//      complete() can find us only when we are fully parked (park.hpp).
//   3. relock; if still linked (a wake-up without a completion: only run()'s
//      teardown resumes a goroutine that way), unlink and loop.
// complete(s): lock; state_ = s (release); unlink every waiter and ready()
//   it, under the lock (a waiter's record vanishes as soon as it returns,
//   and it cannot return before it has re-taken lock_).
// wait_until(deadline): as wait(), with a RuntimeTimer whose callback, under
//   lock_, marks the waiter timed out and, if still linked, unlinks and
//   readies it. The timer is armed before the waiter is linked; a callback
//   that fires first only sets timed_out, which step 2 checks before
//   parking. Afterwards timer.stop() waits out a callback still running on
//   another thread, so the waiter's record outlives every use of it.
//
// Unwinding: run()'s teardown throws out of park(); the waiter unlinks
// itself under lock_ before the exception goes on (park_linked).
//
// Orphans (the runtime's orphans.cpp): a waiter that complete() or its timer
// has already readied has nothing to undo, and leaves the core alone: the
// job's reference may have been the last one. One still linked asks, under
// the runtime's UnwindCleanup gate, whether the core was destroyed since it
// started waiting (by a plain thread racing with the teardown) before it
// unlinks itself.
//
// Alternatives rejected:
//   - a Chan<Unit> closed on completion (get() = receive): one more
//     allocation per job and the wait reason "chan receive" where a dump
//     should say what the goroutine waits for; the waiter list is ~60 lines.
//   - a Mutex + Cond: Cond::wait re-locks a Mutex after waking, a second
//     park on the hot path, and a timed wait would need a timer anyway.
//   - readying waiters after unlocking (shorter critical section): a waiter
//     woken by its timer could then return, and its record vanish, between
//     the unlink and the ready; readying under lock_ rules that out at the
//     cost of a lock held across a few ready() calls.
#include "goro/future.hpp"
#include "goro/park.hpp"

#include <cxxabi.h>

#include <cstring>
#include <thread>
#include <typeinfo>

namespace goro {
namespace detail {

// FutureWaiter is one parked get()/wait()/wait_until(), on its stack.
struct FutureWaiter {
  Goroutine* g;
  FutureCore* core;
  std::uint64_t since = 0;  // wait_epoch() when it started waiting (essay: Orphans)
  FutureWaiter* next = nullptr;
  FutureWaiter* prev = nullptr;
  bool linked = false;     // in core->waiters_ (under core->lock_)
  bool timed_out = false;  // set by the timer callback (under core->lock_)
};

bool is_forced_unwind() noexcept {
  // The runtime's goro::rt::ForcedUnwind is private to runtime/ and is not
  // a std::exception; its mangled name is the one stable thing to compare.
  const std::type_info* t = abi::__cxa_current_exception_type();
  return t != nullptr && std::strcmp(t->name(), "N4goro2rt12ForcedUnwindE") == 0;
}

std::exception_ptr cancelled_error() {
  // One exception object for every cancelled job: rethrow_exception of a
  // shared exception_ptr is safe from many threads at once (each rethrow is
  // a separate dependent exception), and cancelling then costs no allocation.
  static const std::exception_ptr cancelled = std::make_exception_ptr(Cancelled());
  return cancelled;
}

void FutureCore::push_locked(FutureWaiter* w) noexcept {
  w->prev = nullptr;
  w->next = waiters_;
  if (waiters_ != nullptr) waiters_->prev = w;
  waiters_ = w;
  w->linked = true;
}

void FutureCore::unlink_locked(FutureWaiter* w) noexcept {
  (w->prev != nullptr ? w->prev->next : waiters_) = w->next;
  if (w->next != nullptr) w->next->prev = w->prev;
  w->next = w->prev = nullptr;
  w->linked = false;
}

void FutureCore::complete(std::uint8_t state) noexcept {
  SpinGuard l(lock_);
  // Release pairs with the acquire in ready(): the value or exception,
  // written before, is visible to whoever sees the new state (invariant S).
  state_.store(state, std::memory_order_release);
  while (FutureWaiter* w = waiters_) {
    unlink_locked(w);
    goro::ready(w->g);  // under lock_: w stays alive until we unlock (essay)
  }
}

// park_linked parks the caller, linked as w, with lock_ held (park releases
// it). If run()'s teardown unwinds us out of park(), w is unlinked before the
// exception goes on. A catch-and-rethrow rather than a guard comparing
// std::uncaught_exceptions(): that count is per thread, and another
// goroutine parked in the middle of its own unwinding on this thread would
// skew it.
void FutureCore::park_linked(FutureWaiter* w) {
  try {
    park_releasing(lock_, WaitReason::future_get);
  } catch (...) {
    // Readied by complete() or the timer: unlinked, nothing to undo, and
    // the core may be gone by now (essay: Orphans).
    if (park_abandoned()) {
      UnwindCleanup guard;
      if (guard.alive(this, w->since)) {
        SpinGuard l(lock_);
        if (w->linked) unlink_locked(w);
      }
    }
    throw;
  }
}

// ~FutureCore (essay: Orphans). Waiters never outlive a pending core (the
// job holds a reference until it completes, which unlinks them all); only
// the teardown's plain-thread races need the record.
FutureCore::~FutureCore() {
  if (run_exiting()) primitive_destroyed(this, false);
}

void FutureCore::wait() {
  if (ready()) return;
  FutureWaiter w{self(), this, wait_epoch()};
  lock_.lock();
  while (state_.load(std::memory_order_relaxed) == kPending) {  // lock_ orders it
    push_locked(&w);
    park_linked(&w);
    lock_.lock();
    if (w.linked) unlink_locked(&w);
  }
  lock_.unlock();
}

void FutureCore::on_timeout(void* waiter, std::int64_t) {
  auto* w = static_cast<FutureWaiter*>(waiter);
  FutureCore* core = w->core;
  SpinGuard l(core->lock_);
  w->timed_out = true;
  if (w->linked) {
    core->unlink_locked(w);
    goro::ready(w->g);
  }
}

bool FutureCore::wait_until(std::int64_t deadline_ns) {
  if (ready()) return true;
  if (deadline_ns <= monotonic_now_ns()) return false;
  FutureWaiter w{self(), this, wait_epoch()};
  RuntimeTimer timer(&on_timeout, &w);  // destroyed (stopped) before w
  try {
    timer.start(deadline_ns);
  } catch (const std::logic_error&) {
    return poll_until(deadline_ns);  // a plain thread outside run(): no runtime timers
  }
  lock_.lock();
  while (state_.load(std::memory_order_relaxed) == kPending && !w.timed_out) {
    push_locked(&w);
    park_linked(&w);
    lock_.lock();
    if (w.linked) unlink_locked(&w);
  }
  const bool done = state_.load(std::memory_order_relaxed) != kPending;
  lock_.unlock();
  timer.stop();  // waits out a callback in flight: it may still hold &w
  return done;
}

// poll_until is wait_until for a plain thread outside run(): nothing can
// ready it there, so it sleeps in short steps and looks.
bool FutureCore::poll_until(std::int64_t deadline_ns) {
  // 1 ms steps: outside run() a result can only come from another thread
  // finishing a teardown, which is rare enough that latency does not matter.
  constexpr std::int64_t kStepNs = 1'000'000;
  for (;;) {
    if (ready()) return true;
    const std::int64_t left = deadline_ns - monotonic_now_ns();
    if (left <= 0) return false;
    std::this_thread::sleep_for(std::chrono::nanoseconds(left < kStepNs ? left : kStepNs));
  }
}

}  // namespace detail
}  // namespace goro
