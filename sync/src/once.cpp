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
//   4. run f; whether it returns or throws, store 1 (release) and then
//      unlock m_ (one guard's destructor does both).
//
// Orphans (the runtime's orphans.cpp): a Once may be destroyed while a
// goroutine runs f in it, and run()'s teardown then unwinds f: the guard
// finishing step 4 asks whether the Once died since call() began, and if
// so leaves it alone. Callers parked in m_ are the Mutex's orphans. The
// destructor records the death while f runs (m_ held, done_ still 0).
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
#include "goro/park.hpp"

namespace goro {

void Once::call_slow(void (*invoke)(void*), void* f) {
  const std::uint64_t since = detail::wait_epoch();  // for the teardown (essay: Orphans)
  m_.lock();
  if (done_.load(std::memory_order_relaxed) != 0) {  // m_ orders it
    m_.unlock();
    return;
  }
  // Step 4: whether f returns or throws. A destructor, not a catch: an
  // exception that nothing catches must reach std::terminate with its
  // stack intact (the panic report).
  struct Finish {
    Once* once;
    std::uint64_t since;
    ~Finish() {
      if (detail::unwinding()) [[unlikely]] {
        // run()'s teardown is unwinding f: the Once may be gone.
        detail::UnwindCleanup guard;
        if (guard.alive(once, since)) once->finish();
        return;
      }
      once->finish();
    }
  } finish{this, since};
  invoke(f);
}

void Once::finish() noexcept {
  // Release pairs with the acquire load in call()'s fast path.
  done_.store(1, std::memory_order_release);
  // Without unlock()'s preemption point: this may run during unwinding,
  // which must not switch goroutines (on_unwind.hpp).
  m_.release();
}

// destroyed: ~Once's slow path (essay: Orphans): destroyed while f runs or
// callers wait for it (m_ records its own waiters).
void Once::destroyed() noexcept {
  detail::primitive_destroyed(
      this, m_.state_.load(std::memory_order_acquire) != 0 && done_.load(std::memory_order_relaxed) == 0);
}

}  // namespace goro
