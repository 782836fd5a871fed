// RuntimeTimer: the runtime's timers (Go's runtime timer, Go 1.14+ design).
//
// Timers live in per-P 4-ary heaps, so arming one takes no global lock. They
// fire from the scheduler loop of whichever M holds their P, from an M that
// steals them while looking for work, or from the one idle M that sleeps
// until the earliest timer of all Ps (so an idle process wakes exactly when
// the next timer is due and never polls). sleep_for, channels' after/Timer/
// Ticker and Context deadlines are all built on this.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro {

// monotonic_now_ns is CLOCK_MONOTONIC in nanoseconds (the clock of
// std::chrono::steady_clock and of every runtime timer).
std::int64_t monotonic_now_ns() noexcept;

namespace rt {
struct Processor;
struct Runtime;
}

class RuntimeTimer {
 public:
  // Callback runs when the timer fires, on a scheduler thread, with `now` the
  // time it fired. It must be short and must not block or park; it may call
  // ready(), start other timers, or restart its own timer.
  using Callback = void (*)(void* arg, std::int64_t now_ns);
  // DropFn, if given, is called instead of the callback when the timer is
  // still pending at the end of run() (teardown discards every timer), so
  // an owner that frees itself in the callback is freed either way.
  using DropFn = void (*)(void* arg);

  RuntimeTimer(Callback callback, void* arg, DropFn drop = nullptr) noexcept
      : callback_(callback), drop_(drop), arg_(arg) {}
  // The destructor stops the timer (see stop()).
  ~RuntimeTimer() { stop(); }
  RuntimeTimer(const RuntimeTimer&) = delete;
  RuntimeTimer& operator=(const RuntimeTimer&) = delete;

  // start arms the timer for `when_ns` (monotonic), repeating every
  // `period_ns` if that is positive. A stopped or fired timer may be started
  // again. Throws std::logic_error outside run() and if already pending.
  void start(std::int64_t when_ns, std::int64_t period_ns = 0);

  // stop disarms the timer. Returns true if it was pending, i.e. this arming
  // will never run its callback again. If the callback is running on another
  // thread, stop waits for it to return, so after stop() the callback no
  // longer touches its argument (called from the callback itself, it does
  // not wait).
  bool stop() noexcept;

  // cancel takes the timer out of its heap if it is pending, without
  // waiting for a callback in flight (which then still runs). True if it
  // was pending. For owners whose callback itself decides what to free.
  bool cancel() noexcept;

  bool pending() const noexcept { return heap_.load(std::memory_order_acquire) != nullptr; }

 private:
  friend struct rt::Processor;
  friend class TimerAccess;

  bool stop_locked_in(rt::Runtime* rt) noexcept;  // stop() with the runtime pinned

  Callback callback_;
  DropFn drop_;
  void* arg_;
  std::int64_t when_ = 0;    // written under the owning heap's lock
  std::int64_t period_ = 0;  // likewise
  std::int32_t index_ = -1;  // position in the heap, under the heap's lock
  // heap_ is the P whose heap holds the timer, null when not pending. Set and
  // cleared under that heap's lock; read without it to find the lock.
  std::atomic<rt::Processor*> heap_{nullptr};
};

}  // namespace goro
