// goro/detail/futex.hpp: Linux futexes, the sleep/wake note built on them,
// and the spin-wait hint. Internal to goro: Lock's slow paths, the Ms' idle
// sleep and the mutex's spinning use them.
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
