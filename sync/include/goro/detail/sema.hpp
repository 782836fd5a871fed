// sema.hpp: the address-keyed semaphore table under goro's sync primitives
// (Go's runtime/sema.go). Not user API: Mutex, RWMutex, WaitGroup, Cond and
// Semaphore are built on it.
//
// A semaphore is any std::atomic<uint32_t> count; its waiters are kept in a
// table keyed by the count's address, so a primitive needs only a word, not
// a queue of its own. Waiters park (goroutines or plain threads) and are
// woken in FIFO order; a mutex re-queues a woken-but-unlucky waiter at the
// front (lifo) so it does not lose its place.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/park.hpp"

namespace goro::detail {

// semacquire waits until *addr > 0 and decrements it.
void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason);

// semrelease increments *addr and wakes the first waiter, if any. With
// handoff, the count goes straight to that waiter, and the caller yields so
// the waiter runs at once (the mutex's starvation mode).
void semrelease(std::atomic<std::uint32_t>* addr, bool handoff);

// sema_waiters: how many parties wait on addr (tests and diagnostics).
int sema_waiters(const std::atomic<std::uint32_t>* addr);

}  // namespace goro::detail
