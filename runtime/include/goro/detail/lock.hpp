// goro/detail/lock.hpp: the runtime's low-level lock and sleep/wake note, on
// Linux futexes. Public so that primitives built on park.hpp (channels, sync)
// use the same lock as the runtime; not part of the user-facing API.
//
// Lock is the runtime's internal mutex (Go's lock_futex.go): one CAS when
// uncontended, a short spin, then sleep on the futex. The scheduler, timer
// heaps, channels and the semaphore table use it. It is not std::mutex
// because a Lock taken by a goroutine is often released by the scheduler
// after the goroutine has switched out (park's unlock function), and because
// it must be usable from the scheduler's own context without allocating.
//
// Note is a one-shot wake-up (Go's note): an M sleeps on its note when idle;
// whoever hands it work wakes it. sleep() may time out (the M that waits for
// the next timer).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace goro::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// futex_wait sleeps while *addr == expected, until woken or until the absolute
// CLOCK_MONOTONIC deadline (ns; < 0 = none). Spurious returns are possible.
inline void futex_wait(std::atomic<std::uint32_t>* addr, std::uint32_t expected,
                       std::int64_t deadline_ns = -1) noexcept {
  struct timespec ts;
  struct timespec* tsp = nullptr;
  if (deadline_ns >= 0) {
    ts.tv_sec = deadline_ns / 1000000000;
    ts.tv_nsec = deadline_ns % 1000000000;
    tsp = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, so a spurious
  // wake-up does not stretch the deadline.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
          expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
}

inline void futex_wake(std::atomic<std::uint32_t>* addr, int count) noexcept {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count,
          nullptr, nullptr, 0);
}

class Lock {
 public:
  void lock() noexcept {
    std::uint32_t expected = kUnlocked;
    // Pairs with the release exchange in unlock().
    if (state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    lock_slow();
  }

  bool try_lock() noexcept {
    std::uint32_t expected = kUnlocked;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() noexcept {
    // Pairs with the acquire CAS/exchange in lock().
    if (state_.exchange(kUnlocked, std::memory_order_release) == kSleeping) {
      futex_wake(&state_, 1);
    }
  }

  bool is_locked() const noexcept { return state_.load(std::memory_order_relaxed) != kUnlocked; }

 private:
  static constexpr std::uint32_t kUnlocked = 0;
  static constexpr std::uint32_t kLocked = 1;
  static constexpr std::uint32_t kSleeping = 2;  // locked, and someone may sleep on the futex

  void lock_slow() noexcept;

  std::atomic<std::uint32_t> state_{kUnlocked};
};

// SpinLock guards the tiny critical sections of channels and the
// semaphore table: a few dozen instructions, never held across a park (the
// park's unlock function releases it after the switch). Its unlock is a
// plain release store, not a locked exchange: Lock's unlock must exchange
// to learn whether someone sleeps on the futex, which costs a locked
// instruction on every channel operation. Waiters spin briefly, then yield
// the thread, so a holder preempted by the kernel (likely with more Ms than
// cores) gets the CPU back. Not for long critical sections.
class SpinLock {
 public:
  void lock() noexcept {
    // Pairs with the release store in unlock().
    if (!held_.exchange(true, std::memory_order_acquire)) return;
    lock_slow();
  }
  bool try_lock() noexcept {
    return !held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { held_.store(false, std::memory_order_release); }

 private:
  void lock_slow() noexcept;
  std::atomic<bool> held_{false};
};

// LockGuard is std::lock_guard for Lock and SpinLock (kept local so this
// header stays tiny).
template <class L>
class BasicLockGuard {
 public:
  explicit BasicLockGuard(L& l) noexcept : l_(l) { l_.lock(); }
  ~BasicLockGuard() { l_.unlock(); }
  BasicLockGuard(const BasicLockGuard&) = delete;
  BasicLockGuard& operator=(const BasicLockGuard&) = delete;

 private:
  L& l_;
};
using LockGuard = BasicLockGuard<Lock>;
using SpinGuard = BasicLockGuard<SpinLock>;

class Note {
 public:
  // clear re-arms the note. Only the sleeper calls it, before publishing
  // itself where wakers can find it.
  void clear() noexcept { key_.store(0, std::memory_order_relaxed); }

  // wakeup wakes the sleeper (or makes its next sleep return at once).
  void wakeup() noexcept {
    // Pairs with the acquire load in sleep().
    key_.store(1, std::memory_order_release);
    futex_wake(&key_, 1);
  }

  // sleep waits for wakeup() or the deadline (absolute monotonic ns; < 0 =
  // none). Returns true if woken.
  bool sleep(std::int64_t deadline_ns = -1) noexcept;

  bool woken() const noexcept { return key_.load(std::memory_order_acquire) != 0; }

 private:
  std::atomic<std::uint32_t> key_{0};
};

}  // namespace goro::detail
