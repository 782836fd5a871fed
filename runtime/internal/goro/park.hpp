// park.hpp: THE blocking seam. Every primitive above the runtime (channels,
// select, sync, pool, timers) blocks and wakes goroutines through these few
// functions, which are the C++ form of Go's gopark/goready. Internal to
// goro (runtime/internal: its modules and tests see it, users do not).
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

#include "goro/detail/fast_path.hpp"
#include "goro/detail/thread_annotations.hpp"
#include "goro/runtime.hpp"
#include "goro/wait_reason.hpp"

namespace goro {

// self returns the caller's record: the running goroutine, or the calling
// plain thread's own record. Never null. Cheap (a thread-local read).
Goroutine* self() noexcept;

// UnlockFn is called by park() after the goroutine has been switched out, on
// the scheduler's stack (or, on a plain thread, before it blocks). It must
// release whatever lock the parking code holds and must not block. Returning
// false cancels the park: the goroutine resumes at once, as in Go.
using UnlockFn = bool (*)(Goroutine* g, void* arg);

// park blocks the caller until some other party calls ready() on it.
// Preconditions: the caller's record is (or is about to be, under the lock
// that unlock releases) reachable by exactly the wakers that will ready it.
void park(UnlockFn unlock, void* arg, WaitReason reason);

namespace detail {
template <class L>
bool unlock_after_park(Goroutine*, void* lock) GORO_NO_THREAD_SAFETY_ANALYSIS {  // taken by the parker
  static_cast<L*>(lock)->unlock();
  return true;
}
}  // namespace detail

// park_releasing is park() whose unlock function releases `lock` (a
// detail::Lock or SpinLock the caller holds): the common case, and the one
// clang's lock analysis can follow.
template <class L>
void park_releasing(L& lock, WaitReason reason) GORO_RELEASE(lock) GORO_NO_THREAD_SAFETY_ANALYSIS {
  park(&detail::unlock_after_park<L>, &lock, reason);
}

// park_forever parks the caller where nothing can ever ready it (a nil
// channel, a select with no cases, a Semaphore acquire larger than the
// semaphore): only run()'s teardown ends it, by unwinding it.
[[noreturn]] inline void park_forever(WaitReason reason) {
  for (;;) park(nullptr, nullptr, reason);
}

// ready makes a parked goroutine (or thread) runnable again. Callable from
// any thread. A goroutine readied by a running goroutine goes into its P's
// runnext slot and inherits the rest of the time slice (Go's goready).
void ready(Goroutine* g) noexcept;

namespace detail {
// --- After main returns: what a primitive's unwinding cleanup may touch ----
//
// When main returns, run() resumes every goroutine still parked and throws
// out of its park() (design.md, "Lifecycle of a run"); each primitive's
// cleanup then takes its waiter out of the primitive so that a primitive
// that outlives the run stays consistent. But the primitive may be dead by
// then: a goroutine that captured `this` or [&] and parked on a member of
// an object main has destroyed is the most common leak there is. The rules
// (orphans.cpp has the whole story):
//   - A waiter stamps wait_epoch() when it starts waiting.
//   - A primitive's destructor calls primitive_destroyed() when a
//     goroutine may still touch it in such a cleanup: when goroutines wait
//     on it or wake-ups to them are in flight ("busy"), and, whatever its
//     state, while run_exiting(). It also unlinks its waiters from any
//     table that outlives it (the semaphore table): they can never be
//     woken (they are "orphans"), and a new primitive at the same address
//     must not find them.
//   - A cleanup holds an UnwindCleanup and touches its primitive only if
//     alive(primitive, stamp) says it was not destroyed since the stamp.
//   - A cleanup whose waiter was already taken by a waker (park_abandoned()
//     is false) has nothing to undo in a channel or a Future, and leaves
//     them alone: they may be gone without a trace.
// A primitive destroyed while goroutines wait on it is therefore allowed:
// they stay parked (dumps and leak checks show them) until the teardown
// unwinds them, which leaves the dead primitive alone.

// g_destroyed_epoch counts the primitive_destroyed() records ever made.
extern std::atomic<std::uint64_t> g_destroyed_epoch;
inline std::uint64_t wait_epoch() noexcept { return g_destroyed_epoch.load(std::memory_order_acquire); }

// primitive_destroyed records that the primitive at p is gone (see above);
// busy: goroutines wait on it or wake-ups to them are in flight. Any thread.
void primitive_destroyed(const void* p, bool busy) noexcept;

// UnwindCleanup is held by a primitive's unwinding cleanup while it touches
// the primitive: the destruction of any primitive while run_exiting() waits
// for it to finish. Never held across a park (it is a lock). Nests.
class UnwindCleanup {
 public:
  UnwindCleanup() noexcept;
  ~UnwindCleanup();
  UnwindCleanup(const UnwindCleanup&) = delete;
  UnwindCleanup& operator=(const UnwindCleanup&) = delete;

  // alive: the primitive at p, waited on since wait_epoch() was `since`,
  // has not been destroyed since.
  bool alive(const void* p, std::uint64_t since) const noexcept;
};

// park_abandoned, in a handler around park() that run()'s teardown threw
// out of, tells whether the park was abandoned with nothing having woken
// it (the caller's waiter may still be linked into the primitive, or being
// taken out of it by a plain thread right now), or whether a ready() had
// ended it first (the waker has finished with the waiter).
bool park_abandoned() noexcept;

// unwinding reports whether the caller is a goroutine that run()'s teardown
// is unwinding right now (an exception in flight): a destructor of goro's
// own that finishes an operation on a primitive (Once's, on the way out of
// a function it ran) must then ask whether the primitive is still alive.
bool unwinding() noexcept;
}  // namespace detail

}  // namespace goro
