// time.cpp: after(), Timer and Ticker on the runtime's timers.
//
// Each holds a channel of capacity 1 and a RuntimeTimer whose callback does
// a non-blocking send of the firing time (after()'s timer lives in its
// channel's block and goes when the channel's last handle does: see
// AfterTimer) (a Ticker's slow receiver thus
// misses ticks, as in Go). stop()/reset() stop the runtime timer, which
// waits for a callback in flight, and then drain the channel: that is how
// Go 1.23's guarantee holds that no value from before the call arrives
// afterwards.
#include "goro/time.hpp"

#include <atomic>
#include <limits>
#include <new>

#include "goro/detail/chan_core.hpp"

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

// AfterTimer: after()'s timer, in its channel's memory block
// (chan_make_with), so after() makes one allocation. The block's reference
// count covers the user's handles and, while it is armed, the timer.
//
// When the last handle goes while the timer is still armed, nobody can
// ever receive its value: the timer is cancelled and the block freed at
// once (Go 1.23 lets the garbage collector take such timers too). So the
// timeout idiom, select { case v := <-c: ...; case <-after(1s): ... } in
// a loop, keeps one timer pending rather than one per iteration.
//
// Who drops the timer's reference: the callback (fire, or drop at the end
// of run()), or the release hook if its cancel() took the timer out of the
// heap first. `state` decides whether the callback still sends: kArmed ->
// kFired (the callback got there first: it sends) or kArmed -> kOrphaned
// (the last handle went first: no receiver can exist, nothing is sent).
struct AfterTimer {
  enum : std::uint8_t { kArmed, kFired, kOrphaned };

  explicit AfterTimer(detail::ChanBase* ch) noexcept : c(ch), timer(&fire, this, &drop) {}

  detail::ChanBase* const c;
  std::atomic<std::uint8_t> state{kArmed};
  RuntimeTimer timer;

  static void fire(void* self, std::int64_t now) {
    auto* t = static_cast<AfterTimer*>(self);
    std::uint8_t expected = kArmed;
    if (t->state.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel)) {
      TimePoint v = to_time_point(now);
      detail::chan_try_send(t->c, &v);  // capacity 1 and nobody else sends: never blocks
    }
    drop_ref(t->c);
  }

  static void drop(void* self) {
    auto* t = static_cast<AfterTimer*>(self);
    std::uint8_t expected = kArmed;
    t->state.compare_exchange_strong(expected, kFired, std::memory_order_acq_rel);
    drop_ref(t->c);
  }

  // release is chan_release for these channels (a user handle going away).
  static void release(detail::ChanBase* c) noexcept {
    auto* t = static_cast<AfterTimer*>(detail::chan_extra(c));
    // Two references and the timer armed: ours and the timer's, so this is
    // the last handle (another could only be copied from ours). Read while
    // we still hold ours, so the block cannot go away underneath.
    if (c->refs.load(std::memory_order_acquire) == 2 && t->state.load(std::memory_order_acquire) == kArmed) {
      std::uint8_t expected = kArmed;
      if (t->state.compare_exchange_strong(expected, kOrphaned, std::memory_order_acq_rel) && t->timer.cancel()) {
        drop_ref(c);  // the timer's: it left the heap, its callback will never run
      }
    }
    drop_ref(c);
  }

  static void drop_ref(detail::ChanBase* c) noexcept {
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // The timer is not pending (see above), so ~RuntimeTimer would have
    // nothing to stop: skipping it spares a walk over every P.
    detail::chan_free(c);
  }
};

const detail::ChanHooks kAfterHooks{&AfterTimer::release};

}  // namespace

Chan<TimePoint> after(std::chrono::nanoseconds d) {
  if (d == std::chrono::nanoseconds::max()) return Chan<TimePoint>(1);  // never fires
  if (d.count() <= 0) {
    Chan<TimePoint> c(1);
    c.try_send(std::chrono::steady_clock::now());
    return c;
  }
  static_assert(alignof(AfterTimer) <= detail::kChanExtraAlign);
  void* extra = nullptr;
  detail::ChanBase* c =
      detail::chan_make_with(1, &detail::elem_ops<TimePoint>, sizeof(AfterTimer), &kAfterHooks, &extra);
  auto* t = ::new (extra) AfterTimer(c);
  // The handle's reference and the armed timer's, counted before the timer
  // can fire.
  c->refs.store(2, std::memory_order_relaxed);
  try {
    t->timer.start(when_after(d));
  } catch (...) {
    detail::chan_free(c);  // never armed
    throw;
  }
  return Chan<TimePoint>(c, detail::AdoptRef{});
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
