// goro/detail/lock.hpp: the runtime's low-level locks. Public only because
// goro's own classes embed them by value (Cond, Semaphore, a Future's
// state); not part of the user-facing API. The futex calls and the Note
// behind them are internal (goro/detail/futex.hpp).
//
// Lock is the runtime's internal mutex (Go's lock_futex.go): one CAS when
// uncontended, a short spin, then sleep on the futex. The scheduler, timer
// heaps, channels and the semaphore table use it. It is not std::mutex
// because a Lock taken by a goroutine is often released by the scheduler
// after the goroutine has switched out (park's unlock function), and because
// it must be usable from the scheduler's own context without allocating.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/thread_annotations.hpp"

namespace goro::detail {

class GORO_CAPABILITY("mutex") Lock {
 public:
  void lock() noexcept GORO_ACQUIRE() {
    std::uint32_t expected = kUnlocked;
    // Pairs with the release exchange in unlock().
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }

  bool try_lock() noexcept GORO_TRY_ACQUIRE(true) {
    std::uint32_t expected = kUnlocked;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept GORO_RELEASE() {
    // Pairs with the acquire CAS/exchange in lock().
    if (state_.exchange(kUnlocked, std::memory_order_release) == kSleeping) wake_sleeper();
  }

  // assert_held tells clang's analysis that the caller holds this lock,
  // taken where the analysis cannot follow; debug builds check it is held.
  void assert_held() const noexcept GORO_ASSERT_CAPABILITY(this) {
#ifndef NDEBUG
    if (state_.load(std::memory_order_relaxed) == kUnlocked) __builtin_trap();
#endif
  }

 private:
  static constexpr std::uint32_t kUnlocked = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kSleeping = 2;  // locked, and someone may sleep on the futex

  void lock_slow() noexcept;
  void wake_sleeper() noexcept;  // a futex wake: out of line, so no system header here

  std::atomic<std::uint32_t> state_{kUnlocked};
};

// SpinLock guards the tiny critical sections of channels and the
// semaphore table: a few dozen instructions, never held across a park (the
// park's unlock function releases it after the switch). Its unlock is a
// plain release store, not a locked exchange: Lock's unlock must exchange
// to learn whether someone sleeps on the futex, which costs a locked
// instruction on every channel operation. Waiters spin two pauses, then
// yield the thread at each further look (lock.cpp says why), so a holder
// preempted by the kernel (likely with more Ms than cores) gets the CPU
// back. Not for long critical sections.
class GORO_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept GORO_ACQUIRE() {
    // Pairs with the release store in unlock().
    if (!held_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept GORO_TRY_ACQUIRE(true) {
    return !held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept GORO_RELEASE() { held_.store(false, std::memory_order_release); }
  // assert_held: as Lock's.
  void assert_held() const noexcept GORO_ASSERT_CAPABILITY(this) {
#ifndef NDEBUG
    if (!held_.load(std::memory_order_relaxed)) __builtin_trap();
#endif
  }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> held_{false};
};

// LockGuard is std::lock_guard for Lock and SpinLock (kept local so this
// header stays tiny).
template <class L>
class GORO_SCOPED_CAPABILITY BasicLockGuard {
 public:
  explicit BasicLockGuard(L& l) noexcept GORO_ACQUIRE(l) : l_(l) { l_.lock(); }
  ~BasicLockGuard() GORO_RELEASE() { l_.unlock(); }
  BasicLockGuard(const BasicLockGuard&) = delete;
  BasicLockGuard& operator=(const BasicLockGuard&) = delete;

 private:
  L& l_;
};
using LockGuard = BasicLockGuard<Lock>;
using SpinGuard = BasicLockGuard<SpinLock>;

}  // namespace goro::detail
