// Cond: a condition variable bound to a Mutex (Go's sync.Cond).
//
//   goro::Mutex mu;
//   goro::Cond ready(mu);
//   std::deque<Job> jobs;                     // guarded by mu
//   // consumer:
//   std::unique_lock l(mu);
//   while (jobs.empty()) ready.wait();        // unlocks mu while parked
//   // producer:
//   { std::lock_guard l(mu); jobs.push_back(j); }
//   ready.signal();
//
// wait() atomically unlocks the Mutex and parks the caller (a goroutine;
// a plain thread blocks), and locks the Mutex again before it returns. The
// caller must hold the Mutex. As with Go's Cond (and any condition
// variable), re-check the condition in a loop: between the wake-up and the
// re-lock, another goroutine may have changed it.
//
// signal() wakes the waiter that has waited longest, broadcast() wakes all:
// waiters are woken in the order they called wait() (FIFO). Neither needs
// the Mutex held, though holding it is usually what makes the condition
// correct. A signal with nobody waiting is lost, as in Go.
// Waiting callers report the wait reason "sync.Cond.Wait".
//
// If run() tears down while a goroutine waits, wait() re-locks the Mutex
// before the unwinding leaves it (as std::condition_variable does), so a
// std::unique_lock around it stays balanced; the Mutex should then be free
// (docs/sync.md).
//
// Memory ordering: a signal() or broadcast() happens before the wait() it
// wakes returns (and the Mutex orders everything else).
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/detail/lock.hpp"
#include "goro/mutex.hpp"

namespace goro {

class Cond {
 public:
  // Cond keeps a reference to m (Go's c.L); m must outlive the Cond.
  explicit Cond(Mutex& m) noexcept : mu_(m) {}
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;
  // A Cond may be destroyed while goroutines wait on it: they stay parked
  // until run()'s teardown unwinds them, which leaves it alone (their
  // wait() still re-locks the Mutex, which must outlive every wait()).
  ~Cond() {
    if (waiting_.load(std::memory_order_acquire) != 0 || detail::run_exiting()) [[unlikely]] destroyed();
  }

  // wait unlocks mutex(), parks until signal() or broadcast() picks this
  // caller, then locks mutex() again. The caller must hold mutex(); if it
  // does not, the Mutex's Panic is thrown and nothing waits.
  void wait();
  // signal wakes the longest waiter, if any. Any goroutine or thread.
  void signal() noexcept;
  // broadcast wakes every waiter. Any goroutine or thread.
  void broadcast() noexcept;

  Mutex& mutex() const noexcept { return mu_; }

 private:
  struct Waiter;

  Waiter* pop_front_locked() noexcept GORO_REQUIRES(lock_);
  void unlink_locked(Waiter* w) noexcept GORO_REQUIRES(lock_);
  void leave_queue(Waiter& w) noexcept;
  void abandon_wait(Waiter& w, Mutex* mu) noexcept;
  void destroyed() noexcept;

  Mutex& mu_;
  detail::Lock lock_;       // guards the queue and every Waiter's flags
  Waiter* head_ GORO_GUARDED_BY(lock_) = nullptr;  // FIFO: the order of the wait() calls
  Waiter* tail_ GORO_GUARDED_BY(lock_) = nullptr;
  // waiting_ counts the wait() calls between their enqueue and their last
  // touch of the Cond: the queue length plus the waiters picked and not yet
  // gone. signal()'s lock-free fast path reads it; so does the destructor.
  std::atomic<std::uint32_t> waiting_{0};
};

}  // namespace goro
