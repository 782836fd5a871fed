// Semaphore: a weighted semaphore (golang.org/x/sync/semaphore's Weighted).
//
//   goro::Semaphore mem(1 << 30);            // bound the bytes in flight
//   mem.acquire(job.bytes);                 // parks until that much is free
//   process(job);
//   mem.release(job.bytes);
//
// A Semaphore has a size fixed at construction; acquire(n) takes n units of
// it, parking the caller (a goroutine; a plain thread blocks) until they are
// free, release(n) gives them back. Semantics of x/sync/semaphore:
//   - FIFO: waiters are served in arrival order, and a waiter that does not
//     fit yet holds back those behind it, so a big request is not starved by
//     a stream of small ones;
//   - try_acquire(n) fails while others are waiting, even if n would fit;
//   - acquire(n) with n > size can never succeed: it parks forever (x/sync
//     waits for its context; goro has none here), and it does not hold back
//     the requests behind it;
//   - release(n) of more than is held throws Panic("semaphore: released
//     more than held") and changes nothing.
// Waiting callers report the wait reason "semacquire".
//
// Memory ordering: a release() happens before the acquire() calls it lets
// through return.
#pragma once

#include <cstdint>

#include "goro/detail/lock.hpp"

namespace goro {

class Semaphore {
 public:
  // Semaphore creates a semaphore of `size` units, all free.
  explicit Semaphore(std::int64_t size) noexcept : size_(size) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  // A Semaphore may be destroyed while goroutines wait on it: they stay
  // parked until run()'s teardown unwinds them, which leaves it alone.
  ~Semaphore();

  // acquire takes n units, parking until they are free and every earlier
  // waiter has been served. Any goroutine or thread.
  void acquire(std::int64_t n = 1);
  // try_acquire takes n units if they are free and nobody waits.
  [[nodiscard]] bool try_acquire(std::int64_t n = 1) noexcept;
  // release gives back n units and lets through the waiters that now fit,
  // in FIFO order. Any goroutine or thread; never parks.
  void release(std::int64_t n = 1);

  std::int64_t size() const noexcept { return size_; }

 private:
  struct Waiter;

  void push_back_locked(Waiter* w) noexcept GORO_REQUIRES(lock_);
  void unlink_locked(Waiter* w) noexcept GORO_REQUIRES(lock_);
  void notify_waiters_locked() noexcept GORO_REQUIRES(lock_);
  void abandon_wait(Waiter& w) noexcept;

  const std::int64_t size_;
  detail::Lock lock_;       // guards everything below
  std::int64_t cur_ GORO_GUARDED_BY(lock_) = 0;    // units held
  Waiter* head_ GORO_GUARDED_BY(lock_) = nullptr;  // FIFO queue of waiters, on their own stacks
  Waiter* tail_ GORO_GUARDED_BY(lock_) = nullptr;
};

}  // namespace goro
