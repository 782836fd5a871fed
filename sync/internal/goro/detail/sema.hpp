// sema.hpp: the address-keyed semaphore table under goro's sync primitives
// (Go's runtime/sema.go). Not user API: Mutex, RWMutex and WaitGroup are
// built on it.
//
// A semaphore is any std::atomic<uint32_t> count; its waiters are kept in a
// table keyed by the count's address, so a primitive needs only a word, not
// a queue of its own. Waiters park (goroutines or plain threads) and are
// woken in FIFO order; a mutex re-queues a woken-but-unlucky waiter at the
// front (lifo) so it does not lose its place.
//
// Memory ordering: a semrelease() happens before the semacquire() that takes
// its unit returns.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/park.hpp"

namespace goro::detail {

// SemaUnwind is what semacquire needs and reports when run()'s teardown
// unwinds its caller out of park() (orphans.cpp in the runtime).
struct SemaUnwind {
  const void* owner = nullptr;  // the primitive the semaphore belongs to
  std::uint64_t since = 0;      // wait_epoch() when the caller started waiting
  bool granted = false;         // out: a releaser's unit is now the caller's
  bool gone = false;            // out: the owner was destroyed: leave it alone
};

// semacquire waits until *addr > 0 and decrements it; it parks the caller
// (goroutine or plain thread) with `reason` while it waits. With lifo, the
// caller queues in front of the other waiters of addr.
//
// If park() throws (run() is unwinding this goroutine), semacquire unlinks
// its waiter and rethrows. A releaser may already have picked this waiter,
// though; the unit it released is then taken by the waiter, and
// unwind.granted is set to true: the caller owns that unit and must account
// for it. If unwind.owner (when not null) was destroyed meanwhile (a primitive may die with
// goroutines parked on it: they are orphans), semacquire touches neither
// it nor *addr and sets unwind.gone.
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason, SemaUnwind& unwind);
// This form is for a caller whose semaphore outlives every waiter (it holds
// a reference to the semaphore's owner while it waits: unwind.owner stays
// null and no death is checked); a unit granted to a caller that is
// unwound is released again.
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason);

// semrelease increments *addr and wakes the first waiter, if any. With
// handoff, the count goes straight to that waiter, and a goroutine caller
// yields so the waiter runs at once (the mutex's starvation mode). Callable
// from any thread; never parks.
void semrelease(std::atomic<std::uint32_t>* addr, bool handoff);

// semtryacquire decrements *addr if it is positive, without waiting.
bool semtryacquire(std::atomic<std::uint32_t>* addr) noexcept;

// semacquire_spin takes one unit that a releaser has made, or is about to
// make, available: it never parks, and spins (yielding the OS thread) until
// the unit is there. Only for the unwinding paths of the primitives, which
// know from their own state that a unit is on its way to them.
void semacquire_spin(std::atomic<std::uint32_t>* addr) noexcept;

// sema_orphan takes every waiter of addr out of the table: the primitive
// that owns addr is being destroyed, nobody can wake them any more, and a
// primitive built later at the same address must not find them. They stay
// parked (goroutines until the teardown unwinds them).
void sema_orphan(const std::atomic<std::uint32_t>* addr) noexcept;

// sema_waiters: how many parties wait on addr (tests and diagnostics).
int sema_waiters(const std::atomic<std::uint32_t>* addr);

}  // namespace goro::detail
