// time.cpp: after(), Timer and Ticker on the runtime's timers.
//
// Each holds a channel of capacity 1 and a RuntimeTimer whose callback does
// a non-blocking send of the firing time (a Ticker's slow receiver thus
// misses ticks, as in Go). stop()/reset() stop the runtime timer, which
// waits for a callback in flight, and then drain the channel: that is how
// Go 1.23's guarantee holds that no value from before the call arrives
// afterwards.
#include "goro/time.hpp"

#include <limits>

namespace goro {
namespace {

TimePoint to_time_point(std::int64_t ns) { return TimePoint(std::chrono::nanoseconds(ns)); }

// when_after is now + d, saturating (a deadline past the end of time never comes).
std::int64_t when_after(std::chrono::nanoseconds d) {
  const std::int64_t now = monotonic_now_ns();
  const std::int64_t max = std::numeric_limits<std::int64_t>::max() - 1;
  if (d.count() > max - now) return max;
  return now + d.count();
}

// AfterState owns itself: freed when it fires, or when run() drops it.
struct AfterState {
  explicit AfterState(Chan<TimePoint> ch) : c(std::move(ch)), timer(&fire, this, &drop) {}
  Chan<TimePoint> c;
  RuntimeTimer timer;

  static void fire(void* self, std::int64_t now) {
    auto* s = static_cast<AfterState*>(self);
    s->c.try_send(to_time_point(now));
    delete s;
  }
  static void drop(void* self) { delete static_cast<AfterState*>(self); }
};

}  // namespace

Chan<TimePoint> after(std::chrono::nanoseconds d) {
  Chan<TimePoint> c(1);
  if (d == std::chrono::nanoseconds::max()) return c;  // never fires
  if (d.count() <= 0) {
    c.try_send(std::chrono::steady_clock::now());
    return c;
  }
  auto* s = new AfterState(c);
  try {
    s->timer.start(when_after(d));
  } catch (...) {
    delete s;
    throw;
  }
  return c;
}

Timer::Timer(std::chrono::nanoseconds d) : c(1), timer_(&fire, this) {
  if (d.count() <= 0) {
    c.try_send(std::chrono::steady_clock::now());
    return;
  }
  if (d == std::chrono::nanoseconds::max()) {
    forever_.store(true, std::memory_order_relaxed);
  } else {
    timer_.start(when_after(d));
  }
}

Timer::~Timer() { timer_.stop(); }

void Timer::fire(void* self, std::int64_t now) { static_cast<Timer*>(self)->c.try_send(to_time_point(now)); }

bool Timer::stop() {
  const bool forever = forever_.exchange(false, std::memory_order_relaxed);
  const bool was_pending = timer_.stop();
  // A value that fired but was not received is stale now: drop it.
  const bool drained = c.try_recv().has_value();
  return forever || was_pending || drained;
}

bool Timer::reset(std::chrono::nanoseconds d) {
  const bool active = stop();
  if (d.count() <= 0) {
    c.try_send(std::chrono::steady_clock::now());
  } else if (d == std::chrono::nanoseconds::max()) {
    forever_.store(true, std::memory_order_relaxed);
  } else {
    timer_.start(when_after(d));
  }
  return active;
}

Ticker::Ticker(std::chrono::nanoseconds d) : c(1), timer_(&fire, this) {
  if (d.count() <= 0) throw Panic("non-positive interval for NewTicker");
  timer_.start(when_after(d), d.count());
}

Ticker::~Ticker() { timer_.stop(); }

void Ticker::fire(void* self, std::int64_t now) {
  static_cast<Ticker*>(self)->c.try_send(to_time_point(now));  // full: the tick is dropped
}

void Ticker::stop() {
  timer_.stop();
  (void)c.try_recv();
}

void Ticker::reset(std::chrono::nanoseconds d) {
  if (d.count() <= 0) throw Panic("non-positive interval for Ticker.Reset");
  stop();
  timer_.start(when_after(d), d.count());
}

}  // namespace goro
