// park.hpp: THE blocking seam. Every primitive above the runtime (channels,
// select, sync, pool, timers) blocks and wakes goroutines through these few
// functions, which are the C++ form of Go's gopark/goready.
//
// The protocol, as in Go:
//   1. The waiter takes the primitive's lock, finds it must wait, and links a
//      record that points at self() into the primitive's wait queue.
//   2. It calls park(unlock, arg, reason). The runtime switches away from the
//      goroutine FIRST and only then, on the scheduler's stack, calls
//      unlock(g, arg), which releases the primitive's lock. A waker can only
//      find the goroutine after that unlock, and by then its context is fully
//      saved, so ready() can never race with a half-parked goroutine: no lost
//      wake-ups.
//   3. A waker takes the lock, unlinks the record, and calls ready(g). ready()
//      may be called from any thread: a goroutine, the scheduler, a timer, or
//      a plain thread that is not a goroutine.
//
// Plain threads use the same seam: self() then returns a per-thread record,
// park() blocks the OS thread on a futex and ready() wakes it. Primitives
// therefore need no separate code path for threads.
//
// Memory ordering: everything the waker did before ready(g) happens before
// park() returns in g.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro {

// WaitReason is why a goroutine is parked, in Go's words (runtime2.go's
// waitReasonStrings); it is what dumps and goroutines() report.
enum class WaitReason : std::uint8_t {
  none,
  sleep,
  chan_receive,
  chan_send,
  chan_receive_nil_chan,
  chan_send_nil_chan,
  select,
  select_no_cases,
  sync_cond_wait,
  sync_mutex_lock,
  sync_rwmutex_rlock,
  sync_rwmutex_lock,
  sync_waitgroup_wait,
  semacquire,
  io_wait,
  future_get,
  preempted,
};

// to_string returns Go's text for a wait reason ("chan receive", ...).
const char* to_string(WaitReason reason) noexcept;

// Goroutine is the opaque record of a goroutine, or of a plain thread that
// blocks through this seam.
class Goroutine;

// self returns the caller's record: the running goroutine, or the calling
// plain thread's own record. Never null. Cheap (a thread-local read).
Goroutine* self() noexcept;

// in_goroutine reports whether the caller runs on a goroutine.
bool in_goroutine() noexcept;

// UnlockFn is called by park() after the goroutine has been switched out, on
// the scheduler's stack (or, on a plain thread, before it blocks). It must
// release whatever lock the parking code holds and must not block. Returning
// false cancels the park: the goroutine resumes at once, as in Go.
using UnlockFn = bool (*)(Goroutine* g, void* arg);

// park blocks the caller until some other party calls ready() on it.
// Preconditions: the caller's record is (or is about to be, under the lock
// that unlock releases) reachable by exactly the wakers that will ready it.
void park(UnlockFn unlock, void* arg, WaitReason reason);

// park with any callable `bool(Goroutine*)` (a lambda that unlocks).
template <class F>
void park_with(F& unlock, WaitReason reason) {
  park([](Goroutine* g, void* f) -> bool { return (*static_cast<F*>(f))(g); }, &unlock, reason);
}

// ready makes a parked goroutine (or thread) runnable again. Callable from
// any thread. A goroutine readied by a running goroutine goes into its P's
// runnext slot and inherits the rest of the time slice (Go's goready).
void ready(Goroutine* g) noexcept;

namespace detail {
// t_preempt is the preemption flag of the M running on this thread (false
// forever on plain threads). sysmon sets it, through the M's pointer to it,
// when the M's goroutine has run for 10 ms; the M clears it when it
// switches goroutines. The flag itself is thread-local, not a pointer to
// the M's: the check on every fast path is then a single load.
extern constinit thread_local std::atomic<bool> t_preempt;

void preempt_slow() noexcept;

// preempt_point is a cooperative preemption check: primitives call it on
// their fast paths so that a goroutine flagged by sysmon yields at its next
// runtime call. One thread-local relaxed load when not flagged.
inline void preempt_point() noexcept {
  if (t_preempt.load(std::memory_order_relaxed)) [[unlikely]] preempt_slow();
}
}  // namespace detail

}  // namespace goro
