// Timers on channels: Go's time.After, time.NewTimer and time.NewTicker.
//
// All run on the runtime's per-P timer heaps (runtime_timer.hpp): no thread
// per timer, and an idle process sleeps until the next one is due.
//
// Timer and Ticker follow Go 1.23: after stop() or reset() returns, no value
// from before the call is received from c (a fired but unreceived value is
// discarded, and counts as "still active" for stop()'s result).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "goro/chan.hpp"
#include "goro/runtime_timer.hpp"

namespace goro {

using TimePoint = std::chrono::steady_clock::time_point;

// after(d): a channel that receives the current time once, d from now
// (time.After). A zero or negative d fires at once; nanoseconds::max() never
// fires. Callable inside run() only (std::logic_error otherwise).
Chan<TimePoint> after(std::chrono::nanoseconds d);

// Timer: a single event (time.NewTimer).
class Timer {
 public:
  explicit Timer(std::chrono::nanoseconds d);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // c receives the time when the timer fires.
  Chan<TimePoint> c;

  // stop prevents the timer from firing. True if it was active (not yet
  // fired, or fired with its value not yet received: that value is dropped).
  // A timer of nanoseconds::max() is active until stopped: it never fires.
  bool stop();
  // reset re-arms the timer for d from now; returns what stop() would have.
  bool reset(std::chrono::nanoseconds d);

 private:
  static void fire(void* self, std::int64_t now_ns);
  RuntimeTimer timer_;
  // forever_: armed for nanoseconds::max(), Go's maxDuration: active, yet
  // never due, so it takes no place in the runtime's timer heaps.
  std::atomic<bool> forever_{false};
};

// Ticker: a tick every period (time.NewTicker). A slow receiver misses
// ticks rather than queueing them. Throws Panic("non-positive interval for
// NewTicker") for d <= 0.
class Ticker {
 public:
  explicit Ticker(std::chrono::nanoseconds d);
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  Chan<TimePoint> c;

  // stop turns the ticker off; no tick from before the call is received afterwards.
  void stop();
  // reset changes the period (and restarts the count from now).
  void reset(std::chrono::nanoseconds d);

 private:
  static void fire(void* self, std::int64_t now_ns);
  RuntimeTimer timer_;
};

}  // namespace goro
