// lock.cpp: slow paths of Lock and Note (see lock.hpp).
#include "goro/detail/lock.hpp"

#include "goro/detail/futex.hpp"

#include <sched.h>

namespace goro::detail {

void Lock::lock_slow() noexcept {
  // Spin briefly: critical sections under these locks are a few dozen
  // instructions, so the holder usually releases within the spin. Then
  // yield the thread a few times (the holder may have been preempted on an
  // oversubscribed machine), then sleep on the futex.
  constexpr int kActiveSpin = 64;
  constexpr int kPassiveSpin = 2;
  for (int i = 0; i < kActiveSpin + kPassiveSpin; ++i) {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    if (s == kUnlocked && state_.compare_exchange_weak(s, kLocked, std::memory_order_acquire,
                                                        std::memory_order_relaxed)) {
      return;
    }
    if (i < kActiveSpin) {
      cpu_relax();
    } else {
      sched_yield();
    }
  }
  // Mark the lock as having sleepers; whoever unlocks wakes one. We may
  // thereby take the lock in state kSleeping with nobody asleep: one
  // spurious wake-up, harmless.
  while (state_.exchange(kSleeping, std::memory_order_acquire) != kUnlocked) {
    futex_wait(&state_, kSleeping);
  }
}

void Lock::wake_sleeper() noexcept { futex_wake(&state_, 1); }

void SpinLock::lock_slow() noexcept {
  // Spin on a plain load (no cache-line ping-pong) for a couple of pauses,
  // then yield the thread at each further look. A critical section under
  // a SpinLock lasts about as long as two pauses; a lock still held after
  // them has a holder stalled on the lock's line (each look of ours pulls
  // it back to shared) or descheduled, and looking again only slows it.
  // On this project's 2-vCPU machines, 64 pauses before the first yield
  // made worker_pool 1.7x slower than 2 (457 vs 270 ns a job, with a
  // third more CPU time) and chan_mpmc 1.7x (68 vs 40), pipeline 1.15x;
  // select2 gained 12% with 64 (98 vs 111 ns), the one workload that did.
  constexpr int kSpinPauses = 2;
  for (int i = 0;; ++i) {
    if (!held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire)) return;
    if (i < kSpinPauses) {
      cpu_relax();
    } else {
      sched_yield();
    }
  }
}

bool Note::sleep(std::int64_t deadline_ns) noexcept {
  for (;;) {
    if (key_.load(std::memory_order_acquire) != 0) return true;
    if (deadline_ns >= 0) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      const std::int64_t now = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
      if (now >= deadline_ns) return key_.load(std::memory_order_acquire) != 0;
    }
    futex_wait(&key_, 0, deadline_ns);
  }
}

}  // namespace goro::detail
