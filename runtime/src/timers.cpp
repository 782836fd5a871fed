// timers.cpp: the per-P timer heap, and RuntimeTimer's start/stop.
//
// Timers (Go 1.14+ design, simplified):
//   - A timer is armed on the P of the thread that arms it (any P for a
//     plain thread) and never moves. Its heap_ field says which P holds it.
//   - Each P's heap is a 4-ary min-heap on when_ under the P's timer_lock;
//     timer0_when caches the minimum so checks need no lock. An entry holds
//     its timer's when_ beside the pointer (as Go 1.23's heap does): a
//     timer lives in its owner's memory (a sleeping goroutine's stack, a
//     context), cold by the time the heap is sifted, so comparisons that
//     read the timers took a cache miss per child (sift_down was 15% of
//     the timers workload).
//   - Timers fire from run_timers(): the M holding the P calls it at each
//     schedule round; an M looking for work calls it on other Ps; the idle
//     M that sleeps until the next timer calls it when it wakes. One M at a
//     time runs a P's timers (timers_busy), callbacks run without the lock.
//   - Arming a timer that becomes the earliest of its P breaks the poller's
//     wait if it would sleep too long (wake_netpoller), so an idle process
//     never polls and never oversleeps.
// Alternatives rejected: a timer thread (a thread hop per timer, and a
// single lock for all timers); a hashed wheel (coarse, and Go's semantics
// want exact ordering).
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <stdexcept>

#include "external.hpp"
#include "scheduler.hpp"

namespace goro {

std::int64_t monotonic_now_ns() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace goro

namespace goro::rt {

namespace {
thread_local RuntimeTimer* t_running_timer = nullptr;
constexpr std::size_t kArity = 4;
}  // namespace

}  // namespace goro::rt

namespace goro {

// TimerAccess lets the runtime reach RuntimeTimer's private fields.
class TimerAccess {
 public:
  static std::int64_t& when(RuntimeTimer* t) { return t->when_; }
  static std::int64_t& period(RuntimeTimer* t) { return t->period_; }
  static std::int32_t& index(RuntimeTimer* t) { return t->index_; }
  static std::atomic<rt::Processor*>& heap(RuntimeTimer* t) { return t->heap_; }
  static RuntimeTimer::Callback callback(RuntimeTimer* t) { return t->callback_; }
  static void* arg(RuntimeTimer* t) { return t->arg_; }
  static RuntimeTimer::DropFn drop(RuntimeTimer* t) { return t->drop_; }
};

}  // namespace goro

namespace goro::rt {

using TA = goro::TimerAccess;

void Processor::sift_up(std::size_t i) noexcept {
  const TimerEntry e = timers[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / kArity;
    if (timers[parent].when <= e.when) break;
    timers[i] = timers[parent];
    TA::index(timers[i].t) = static_cast<std::int32_t>(i);
    i = parent;
  }
  timers[i] = e;
  TA::index(e.t) = static_cast<std::int32_t>(i);
}

void Processor::sift_down(std::size_t i) noexcept {
  const std::size_t n = timers.size();
  const TimerEntry e = timers[i];
  for (;;) {
    const std::size_t first = i * kArity + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t last = std::min(first + kArity, n);
    for (std::size_t c = first + 1; c < last; ++c) {
      if (timers[c].when < timers[best].when) best = c;
    }
    if (timers[best].when >= e.when) break;
    timers[i] = timers[best];
    TA::index(timers[i].t) = static_cast<std::int32_t>(i);
    i = best;
  }
  timers[i] = e;
  TA::index(e.t) = static_cast<std::int32_t>(i);
}

void Processor::remove_at(std::size_t i) noexcept {
  RuntimeTimer* t = timers[i].t;
  const TimerEntry last = timers.back();
  timers.pop_back();
  TA::index(t) = -1;
  if (t == last.t) return;
  timers[i] = last;
  TA::index(last.t) = static_cast<std::int32_t>(i);
  if (i > 0 && timers[(i - 1) / kArity].when > last.when) {
    sift_up(i);
  } else {
    sift_down(i);
  }
}

void Processor::update_timer0() noexcept {
  timer0_when.store(timers.empty() ? kNoTimer : timers[0].when, std::memory_order_release);
}

void Processor::add_timer(RuntimeTimer* t) noexcept {
  const std::int64_t when = TA::when(t);
  bool earliest;
  {
    LockGuard l(timer_lock);
    timers.push_back({when, t});
    TA::heap(t).store(this, std::memory_order_release);
    sift_up(timers.size() - 1);
    earliest = TA::index(t) == 0;
    update_timer0();
  }
  if (earliest) wake_netpoller(when);
}

bool Processor::remove_timer(RuntimeTimer* t) noexcept {
  LockGuard l(timer_lock);
  if (TA::heap(t).load(std::memory_order_relaxed) != this) return false;
  remove_at(static_cast<std::size_t>(TA::index(t)));
  TA::heap(t).store(nullptr, std::memory_order_release);
  update_timer0();
  return true;
}

int Processor::run_timers(std::int64_t now) noexcept {
  if (timers_busy.exchange(true, std::memory_order_acquire)) return 0;  // another M is at it
  int ran = 0;
  timer_lock.lock();
  while (!timers.empty()) {
    if (timers[0].when > now) break;
    RuntimeTimer* t = timers[0].t;
    // Release pairs with stop()'s acquire: once it sees null again, the
    // callback is over. Stored before heap_ is cleared below: stop() reads
    // heap_ without the lock, and one that sees it null must also see the
    // callback as running.
    running_timer.store(t, std::memory_order_release);
    if (TA::period(t) > 0) {
      // A periodic timer skips the ticks it missed (a Ticker drops ticks).
      const std::int64_t period = TA::period(t);
      TA::when(t) += period * (1 + (now - TA::when(t)) / period);
      timers[0].when = TA::when(t);
      sift_down(0);
    } else {
      remove_at(0);
      TA::heap(t).store(nullptr, std::memory_order_release);
    }
    update_timer0();
    const RuntimeTimer::Callback cb = TA::callback(t);
    void* arg = TA::arg(t);
    timer_lock.unlock();
    t_running_timer = t;
    cb(arg, now);
    t_running_timer = nullptr;
    running_timer.store(nullptr, std::memory_order_release);
    ++ran;
    timer_lock.lock();
  }
  timer_lock.unlock();
  timers_busy.store(false, std::memory_order_release);
  return ran;
}

void Processor::clear_timers() noexcept {
  std::vector<TimerEntry> dropped;
  {
    LockGuard l(timer_lock);
    for (const TimerEntry& e : timers) {
      TA::index(e.t) = -1;
      TA::heap(e.t).store(nullptr, std::memory_order_release);
    }
    dropped.swap(timers);
    update_timer0();
  }
  for (const TimerEntry& e : dropped) {
    if (RuntimeTimer::DropFn drop = TA::drop(e.t)) drop(TA::arg(e.t));
  }
}

void Processor::move_timers_to(Processor* to) noexcept {
  std::int64_t earliest = kNoTimer;
  {
    LockGuard l(timer_lock);
    if (timers.empty()) return;
    LockGuard lt(to->timer_lock);
    for (const TimerEntry& e : timers) {
      // heap_ changes under both locks: a stop() that read the old P finds
      // the timer gone from it under its lock, reloads heap_ and follows.
      to->timers.push_back(e);
      TA::heap(e.t).store(to, std::memory_order_release);
      to->sift_up(to->timers.size() - 1);
    }
    timers.clear();
    update_timer0();
    if (to->timers[0].when < to->timer0_when.load(std::memory_order_relaxed)) earliest = to->timers[0].when;
    to->update_timer0();
  }
  if (earliest != kNoTimer) wake_netpoller(earliest);
}

std::int64_t Processor::timer_count() noexcept {
  LockGuard l(timer_lock);
  return static_cast<std::int64_t>(timers.size());
}

}  // namespace goro::rt

namespace goro {

using namespace goro::rt;

void RuntimeTimer::start(std::int64_t when_ns, std::int64_t period_ns) {
  if (pending()) throw std::logic_error("goro::RuntimeTimer::start: the timer is already pending");
  Machine* m = current_machine();
  if (m != nullptr && m->p != nullptr) {
    when_ = when_ns;
    period_ = period_ns;
    m->p->add_timer(this);
    return;
  }
  ExternalRef ref;
  if (!ref) throw std::logic_error("goro::RuntimeTimer::start: called outside goro::run()");
  Runtime* rt = ref.get();
  when_ = when_ns;
  period_ = period_ns;
  // A thread without a P spreads its timers over the Ps (the real ones:
  // nobody runs a free spare's timers).
  static std::atomic<unsigned> next{0};
  rt->allp[next.fetch_add(1, std::memory_order_relaxed) % static_cast<unsigned>(rt->procs)]->add_timer(this);
}

bool RuntimeTimer::stop() noexcept {
  Machine* m = current_machine();
  if (m == nullptr) {
    ExternalRef ref;
    if (!ref) return false;  // no run (or it is ending): nothing is pending
    return stop_locked_in(ref.get());
  }
  return g_runtime != nullptr && stop_locked_in(g_runtime);
}

bool RuntimeTimer::cancel() noexcept {
  const auto remove = [this] {
    for (;;) {
      Processor* p = heap_.load(std::memory_order_acquire);
      if (p == nullptr) return false;
      if (p->remove_timer(this)) return true;
    }
  };
  if (current_machine() != nullptr) return remove();
  ExternalRef ref;  // a plain thread: keep the Ps alive while we look
  if (!ref) return false;
  return remove();
}

bool RuntimeTimer::stop_locked_in(rt::Runtime* rt) noexcept {
  bool removed = false;
  for (;;) {
    Processor* p = heap_.load(std::memory_order_acquire);
    if (p == nullptr) break;
    if (p->remove_timer(this)) {
      removed = true;
      break;
    }
  }
  // Wait out a callback of ours running on another thread.
  if (t_running_timer != this) {
    for (const auto& p : rt->allp) {
      while (p->running_timer.load(std::memory_order_acquire) == this) sched_yield();
    }
  }
  return removed;
}

}  // namespace goro
