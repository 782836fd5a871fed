// once.cpp: Go's sync.Once (sync/once.go).
//
// What it is for: lazy initialisation shared by goroutines, where every
// caller must find the work done when call() returns, and the common case
// (done long ago) must cost next to nothing.
//
// State: done_ (0 or 1) and a Mutex m_.
// Invariant: done_ is set only with m_ held, and only after f has returned
// or thrown.
//
// call(f), in order:
//   1. fast path (inline, once.hpp): an acquire load of done_; 1 => return.
//   2. lock m_: concurrent first callers park here, in the Mutex's order.
//   3. done_ again (another caller may have run f while we waited): 1 =>
//      unlock and return.
//   4. run f; whether it returns or throws, store 1 (release) before m_ is
//      unlocked (destructors run in reverse order, so the store's guard is
//      declared after the lock's).
//
// Alternatives rejected:
//   - a CAS on done_ to elect the runner, then return at once in the others
//     (the "obvious" implementation Go's once.go warns about): the losers
//     would return before f finished, breaking "every call() returns with
//     f's work done".
//   - std::call_once: blocks threads, and retries f after an exception,
//     where Go (and API.md) count the Once as done.
//   - an extra state for "running" plus a wait queue: Mutex already parks
//     the waiters, in FIFO order when they wait long; the slow path runs
//     once per Once, so its cost does not matter.
#include "goro/once.hpp"

#include <mutex>

namespace goro {

void Once::call_slow(void (*invoke)(void*), void* f) {
  std::lock_guard<Mutex> lock(m_);
  if (done_.load(std::memory_order_relaxed) != 0) return;  // m_ orders it
  struct MarkDone {
    std::atomic<std::uint32_t>& done;
    // Release pairs with the acquire load in call()'s fast path.
    ~MarkDone() { done.store(1, std::memory_order_release); }
  } mark{done_};
  invoke(f);
}

}  // namespace goro
