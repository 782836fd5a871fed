// Mutex: a mutual exclusion lock that parks goroutines (Go's sync.Mutex).
//
//   goro::Mutex mu;
//   std::map<std::string, int> counts;  // guarded by mu
//   goro::go([&] { std::lock_guard l(mu); ++counts["x"]; });
//
// lock() parks the calling goroutine, never its thread, while another holds
// the lock; from a plain thread it blocks that thread. Mutex is Lockable:
// std::lock_guard, std::unique_lock and std::scoped_lock work.
//
// As in Go:
//   - the zero state is an unlocked mutex; a Mutex is neither copyable nor
//     movable, and it is not recursive (locking it twice parks forever);
//   - a Mutex is not tied to a goroutine: one may lock it and another (or a
//     plain thread) unlock it;
//   - unlock() of an unlocked Mutex throws Panic("sync: unlock of unlocked
//     mutex") and leaves the Mutex as it was;
//   - fairness: normally a woken waiter competes with newcomers, which keeps
//     throughput high; a waiter that has waited more than 1 ms switches the
//     mutex to starvation mode, where ownership goes straight to the longest
//     waiter. docs/sync.md explains both modes.
// A goroutine parked in lock() reports the wait reason "sync.Mutex.Lock".
//
// Memory ordering: an unlock() happens before the lock() (or successful
// try_lock()) that next acquires the mutex returns.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/lockorder.hpp"
#include "goro/detail/fast_path.hpp"
#include "goro/wait_reason.hpp"

namespace goro {

namespace detail {
struct SemaUnwind;
}

class Mutex {
 public:
  constexpr Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  // A Mutex may be destroyed while goroutines wait in lock(): they can
  // never get it, and stay parked until run()'s teardown unwinds them,
  // which leaves the dead Mutex alone (docs/guide.md, "What a goroutine
  // may touch after main returns").
  ~Mutex() {
    if ((state_.load(std::memory_order_acquire) & ~kLocked) != 0 || detail::run_exiting()) [[unlikely]] {
      destroyed();
    }
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_forget(this);
  }

  // lock acquires the mutex, parking the caller until it is free. Callable
  // from goroutines and plain threads.
  void lock() {
    lock_as(WaitReason::sync_mutex_lock);
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.Mutex", false);
  }

  // try_lock acquires the mutex if that needs no waiting. It fails in
  // starvation mode even when the mutex looks free: ownership is then
  // reserved for the waiters.
  [[nodiscard]] bool try_lock() noexcept {
    std::uint32_t old = state_.load(std::memory_order_relaxed);
    if ((old & (kLocked | kStarving)) != 0) return false;
    // Acquire pairs with the release in release().
    if (!state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) {
      return false;
    }
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.Mutex", true);
    return true;
  }

  // unlock releases the mutex and wakes a waiter if one should run. Any
  // goroutine or thread may call it; throws Panic if the mutex is unlocked.
  void unlock() {
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_released(this);
    release();
    // Outside the critical section: a goroutine sysmon flagged yields here.
    detail::preempt_point();
  }

 private:
  // RWMutex queues its writers here with its own wait reason, and releases
  // without the preemption point in its unwinding cleanups.
  friend class RWMutex;
  // Once reads whether its Mutex is in use (its destructor) and releases it
  // without the preemption point on the way out of a function it ran.
  friend class Once;

  // lock_as is lock(), reporting `reason` while parked.
  void lock_as(WaitReason reason) {
    std::uint32_t unlocked = 0;
    // Fast path, one CAS. Acquire pairs with the release in release().
    if (state_.compare_exchange_strong(unlocked, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow(reason);
  }

  // release is unlock() without its preemption point.
  void release() {
    std::uint32_t locked = kLocked;
    // Release pairs with the acquire CAS in lock_as()/try_lock() and in
    // lock_slow(); with waiters, unlock_slow() retries from the seen state.
    if (!state_.compare_exchange_strong(locked, 0, std::memory_order_release, std::memory_order_relaxed)) {
      unlock_slow(locked);
    }
  }

  // state_ bits (Go's layout): locked, a waiter has been woken (or a
  // spinner is about to take the lock, so unlock need not wake anyone),
  // starvation mode; the number of parked waiters above them.
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kWoken = 2;
  static constexpr std::uint32_t kStarving = 4;
  static constexpr int kWaiterShift = 3;
  static constexpr std::uint32_t kWaiter = 1u << kWaiterShift;

  void lock_slow(WaitReason reason);
  void unlock_slow(std::uint32_t old);
  void wake_one(std::uint32_t old);
  void abandon_wait(const detail::SemaUnwind& unwind) noexcept;
  void destroyed() noexcept;
  void take_ownership_from_handoff(bool starving) noexcept;

  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint32_t> sema_{0};  // the waiters' semaphore (sema.hpp)
};

}  // namespace goro
