// sema.cpp: the semaphore table (Go's sema.go, simplified).
//
// The table has 251 buckets (Go's semTabSize, a prime, so addresses spread
// evenly); each is a lock, a count of waiters (nwait, read without the lock
// so an uncontended release costs one atomic load) and a FIFO list of
// waiters, each on its waiter's stack with the address it waits on.
//
// semacquire, in order:
//   1. fast path: CAS the count down if positive;
//   2. lock the bucket, nwait++, and try again (a release that ran before
//      our nwait++ left the count positive: no lost wake-up);
//   3. enqueue (at the front of its address's waiters if lifo) and park;
//      the bucket lock is released after the switch;
//   4. woken: if the releaser handed us the count (ticket), done; else
//      compete for it from step 1 again (a newcomer may have taken it).
// semrelease: count++, then if nwait > 0, lock, dequeue the first waiter for
// the address, nwait--, unlock, ready it (with handoff, take the count for
// it first).
//
// Simplification against Go: one list per bucket instead of a treap of
// per-address lists. Releases scan past waiters of other addresses that
// share the bucket, which is rare with 251 buckets; waiters of one address
// stay in FIFO order.
//
// Unwinding (run()'s teardown throws out of park()): the waiter takes the
// bucket lock and looks at its record. Still queued: nobody chose it, it
// unlinks itself and nwait drops, as if it had never come. Dequeued: a
// releaser chose it, and the unit is either its ticket or in the count
// (unless a newcomer took it first, when the waiter would have re-queued):
// the waiter takes it and reports it to the caller (SemaUnwind::granted),
// who knows what the unit means (a Mutex's ownership, a reader's admission)
// and passes it on. So no unit is ever lost or duplicated by an unwinding
// waiter, and the primitive above can restore its own counters.
//
// Orphans. A primitive may be destroyed while goroutines wait on it (they
// captured `this`, and main destroyed the object): its destructor calls
// sema_orphan, which takes its waiters out of the table, since a primitive
// built later at the same address must not wake them, and records the
// death (the runtime's orphans.cpp). An unwinding waiter first asks, under
// the runtime's UnwindCleanup gate, whether its primitive is still alive
// (the owner and the wait_epoch() stamp in SemaUnwind); if not, it touches
// neither the table entry nor the count, and reports `gone`.
#include "goro/detail/sema.hpp"

#include <cstddef>
#include <exception>
#include <thread>

#include "goro/detail/lock.hpp"
#include "goro/runtime.hpp"
#include "goro/park.hpp"

namespace goro::detail {
namespace {

struct SemaWaiter {
  const std::atomic<std::uint32_t>* addr;
  Goroutine* g;
  SemaWaiter* next = nullptr;
  SemaWaiter* prev = nullptr;
  bool queued = false;
  bool ticket = false;  // the releaser handed us the count
};

struct alignas(64) Bucket {
  Lock lock;
  std::atomic<std::uint32_t> nwait{0};
  SemaWaiter* head = nullptr;
  SemaWaiter* tail = nullptr;

  void insert_before(SemaWaiter* at, SemaWaiter* w) noexcept {
    w->next = at;
    w->prev = at != nullptr ? at->prev : tail;
    if (w->prev != nullptr) {
      w->prev->next = w;
    } else {
      head = w;
    }
    if (at != nullptr) {
      at->prev = w;
    } else {
      tail = w;
    }
    w->queued = true;
  }

  void enqueue(SemaWaiter* w, bool lifo) noexcept {
    SemaWaiter* at = nullptr;  // append
    if (lifo) {
      for (at = head; at != nullptr && at->addr != w->addr; at = at->next) {
      }
    }
    insert_before(at, w);
  }

  void remove(SemaWaiter* w) noexcept {
    if (!w->queued) return;
    (w->prev != nullptr ? w->prev->next : head) = w->next;
    (w->next != nullptr ? w->next->prev : tail) = w->prev;
    w->next = w->prev = nullptr;
    w->queued = false;
  }

  SemaWaiter* first_for(const std::atomic<std::uint32_t>* addr) noexcept {
    for (SemaWaiter* w = head; w != nullptr; w = w->next) {
      if (w->addr == addr) return w;
    }
    return nullptr;
  }
};

constexpr std::size_t kBuckets = 251;
Bucket g_table[kBuckets];

Bucket& bucket_for(const void* addr) noexcept {
  return g_table[(reinterpret_cast<std::uintptr_t>(addr) >> 3) % kBuckets];
}

bool can_acquire(std::atomic<std::uint32_t>* addr) noexcept {
  std::uint32_t v = addr->load(std::memory_order_relaxed);  // feeds the CAS
  while (v != 0) {
    // Acquire pairs with semrelease's release increment.
    if (addr->compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  }
  return false;
}


}  // namespace

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason, SemaUnwind& unwind) {
  if (can_acquire(addr)) return;
  Bucket& b = bucket_for(addr);
  SemaWaiter w{addr, self()};
  for (;;) {
    b.lock.lock();
    // seq_cst pairs with the seq_cst load of nwait in semrelease: either the
    // releaser sees this waiter, or the can_acquire below sees its unit.
    b.nwait.fetch_add(1, std::memory_order_seq_cst);
    if (can_acquire(addr)) {
      b.nwait.fetch_sub(1, std::memory_order_relaxed);  // under the bucket lock
      b.lock.unlock();
      return;
    }
    w.ticket = false;
    b.enqueue(&w, lifo);
    try {
      park_releasing(b.lock, reason);
    } catch (...) {
      // Unwound at the end of run(): leave the queue as we found it, and
      // keep (and report) a unit a releaser already meant for us; unless
      // the primitive is gone, when its destructor took us out of the
      // table and *addr is no longer ours to read.
      UnwindCleanup guard;
      if (unwind.owner != nullptr && !guard.alive(unwind.owner, unwind.since)) {
        unwind.gone = true;
        throw;
      }
      LockGuard l(b.lock);
      if (w.queued) {
        b.remove(&w);
        b.nwait.fetch_sub(1, std::memory_order_relaxed);  // under the bucket lock
      } else {
        unwind.granted = w.ticket || can_acquire(addr);
      }
      throw;
    }
    // w.ticket was written under the bucket lock before ready(); ready()
    // happens before park() returns.
    if (w.ticket || can_acquire(addr)) return;
    lifo = true;  // woken but beaten to it: keep our place at the front
  }
}

void semrelease(std::atomic<std::uint32_t>* addr, bool handoff) {
  Bucket& b = bucket_for(addr);
  // Release pairs with the acquire CAS in can_acquire().
  addr->fetch_add(1, std::memory_order_release);
  // seq_cst pairs with semacquire's nwait increment: either it sees our
  // count, or we see its nwait.
  if (b.nwait.load(std::memory_order_seq_cst) == 0) return;
  SemaWaiter* w;
  {
    LockGuard l(b.lock);
    if (b.nwait.load(std::memory_order_relaxed) == 0) return;  // under the bucket lock
    w = b.first_for(addr);
    if (w == nullptr) return;  // waiters of other addresses only
    b.remove(w);
    b.nwait.fetch_sub(1, std::memory_order_relaxed);
    if (handoff && can_acquire(addr)) w->ticket = true;
  }
  Goroutine* g = w->g;
  ready(g);
  // Let the waiter run now (Go: goyield in starvation mode). Not while this
  // goroutine unwinds (a destructor unlocking during run()'s teardown): a
  // goroutine switch in the middle of exception handling would let others
  // run with this thread's C++ exception state (see on_unwind.hpp). The
  // count is per thread, so this is a heuristic; a wrong answer only skips
  // or makes a yield that is an optimisation anyway.
  if (handoff && in_goroutine() && std::uncaught_exceptions() == 0) goro::yield();
}

void semacquire(std::atomic<std::uint32_t>* addr, bool lifo, WaitReason reason) {
  SemaUnwind unwind;  // no owner: the caller keeps its semaphore alive
  try {
    semacquire(addr, lifo, reason, unwind);
  } catch (...) {
    if (unwind.granted) semrelease(addr, false);  // pass the unit on
    throw;
  }
}

bool semtryacquire(std::atomic<std::uint32_t>* addr) noexcept { return can_acquire(addr); }

void semacquire_spin(std::atomic<std::uint32_t>* addr) noexcept {
  // The releaser is between its state change and its count increment: a
  // few instructions, unless its thread was descheduled.
  while (!can_acquire(addr)) std::this_thread::yield();
}

void sema_orphan(const std::atomic<std::uint32_t>* addr) noexcept {
  Bucket& b = bucket_for(addr);
  LockGuard l(b.lock);
  for (SemaWaiter* w = b.head; w != nullptr;) {
    SemaWaiter* next = w->next;
    if (w->addr == addr) {
      b.remove(w);
      b.nwait.fetch_sub(1, std::memory_order_relaxed);  // under the bucket lock
    }
    w = next;
  }
}

int sema_waiters(const std::atomic<std::uint32_t>* addr) {
  Bucket& b = bucket_for(addr);
  LockGuard l(b.lock);
  int n = 0;
  for (SemaWaiter* w = b.head; w != nullptr; w = w->next) n += w->addr == addr;
  return n;
}

}  // namespace goro::detail
