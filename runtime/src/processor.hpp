// processor.hpp: P, a logical processor.
//
// A P is what an M must hold to run goroutines. It owns:
//   - the local run queue and the runnext slot (run_queue.hpp);
//   - a cache of free goroutines with their stacks (Go's p.gFree);
//   - a cache of goroutine ids (Go's goidcache), so spawning takes no
//     shared counter;
//   - a timer heap (Go 1.14+): timers are armed on the P of the arming
//     goroutine, so arming takes only this P's timer lock;
//   - its statistics counters, written only by the M that holds the P and
//     summed on read by sched_stats().
// Fields marked "owner" are touched only by the M holding the P (or by the
// goroutine running on it, which is the same thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "goro/runtime_timer.hpp"
#include "lock.hpp"
#include "run_queue.hpp"
#include "stack_pool.hpp"

namespace goro {
class Goroutine;
}

namespace goro::rt {

struct Machine;

enum class PStatus : std::uint8_t {
  kIdle = 0,     // on the idle list, no M
  kRunning = 1,  // held by an M
  kSyscall = 2,  // its M is inside blocking(); sysmon may take it
};

inline constexpr std::int64_t kNoTimer = std::numeric_limits<std::int64_t>::max();

// Counter is a statistics counter with one writer (the P's owner): a
// relaxed load and store, no locked instruction; readers may race.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// StatCounter is a Counter that exists only for sched_stats(): building with
// -DGORO_STATS=OFF compiles it out, which is how the cost of the statistics
// on the hot paths is measured (docs/benchmarks.md). Nothing the scheduler
// decides may depend on one.
#ifndef GORO_STATS
#define GORO_STATS 1
#endif
#if GORO_STATS
using StatCounter = Counter;
#else
class StatCounter {
 public:
  void add(std::uint64_t = 1) noexcept {}
  std::uint64_t get() const noexcept { return 0; }
};
#endif

struct alignas(64) Processor {
  explicit Processor(int id_, bool spare_ = false) : id(id_), spare(spare_) {}

  const int id;
  // spare: a P beyond gomaxprocs that sysmon lends to an M while a P's
  // thread is blocked outside blocking() (spare.cpp). Never on the idle
  // list; idle_p_put_locked sends it back to the spare list.
  const bool spare;
  std::atomic<PStatus> status{PStatus::kIdle};
  // m is the M holding the P (also while in kSyscall). Written by acquire/release; read racily by sysmon.
  std::atomic<Machine*> m{nullptr};
  Processor* idle_link = nullptr;  // the idle list (or the spare list), under the scheduler lock
  // stranded: the M holding this P is asleep in the kernel inside a
  // goroutine's own code (not in blocking()), so its queue and timers wait
  // unless others take them (spare.cpp). Written by sysmon only; read by
  // Ms looking for work.
  std::atomic<bool> stranded{false};

  RunQueue runq;
  // runnext: the goroutine readied by the running one, run next. The owner
  // exchanges it; thieves may CAS it to null (last steal pass only).
  alignas(64) std::atomic<Goroutine*> runnext{nullptr};
  // migrant: GORODEBUG=migrate=1 only. The goroutine whose M handed this P
  // to another M so that it resumes there; the next holder runs it first,
  // so a migration keeps the run order. Read and written only by the P's
  // holder (start_m's lock orders the hand-over).
  Goroutine* migrant = nullptr;

  // schedtick counts scheduling rounds (owner writes; sysmon reads to spot a
  // goroutine that has run for 10 ms). syscalltick counts blocking() entries.
  std::atomic<std::uint32_t> schedtick{0};
  std::atomic<std::uint32_t> syscalltick{0};
  // runnext_puts counts puts into runnext (owner writes; sysmon reads it to
  // spot a goroutine left waiting in runnext behind a busy readier).

  // Free goroutines, most recently freed last (owner; the count is read
  // racily by schedtrace). Pointers, so moving a batch to or from the global
  // cache touches no (cold) record.
  static constexpr int kGFreeMax = 64;  // Go's gfput threshold
  Goroutine* gfree[kGFreeMax] = {};
  std::atomic<int> gfree_count{0};
  // Free stack slots (owner), most recently freed last: warm memory for the
  // next goroutine that starts here.
  static constexpr int kSFreeMax = 32;
  StackSlot sfree[kSFreeMax] = {};
  int sfree_count = 0;
  // moving: the owner is moving a goroutine from its spawn record into its
  // stack's record (bind_stack); a listing of all goroutines waits until it
  // reads false (goroutine.cpp, "Moving a record").
  std::atomic<bool> moving{false};

  // Goroutine id cache (owner): [goid_next, goid_end).
  std::uint64_t goid_next = 0;
  std::uint64_t goid_end = 0;

  int direct_streak = 0;  // owner: direct switches since the last trip through g0
  // fairness_due: the direct-switch streak sent us through g0; look at the
  // global queue first (owner). Without it the streak and the 61-tick check
  // could stay out of phase forever and starve the global queue.
  bool fairness_due = false;

  // Timers: a 4-ary min-heap on when_, under timer_lock. timer0_when caches
  // the earliest when (kNoTimer if none) so others can check without the lock.
  Lock timer_lock;
  struct TimerEntry {
    std::int64_t when;  // == t->when_ while t is in the heap
    RuntimeTimer* t;
  };
  std::vector<TimerEntry> timers GORO_GUARDED_BY(timer_lock);
  std::atomic<std::int64_t> timer0_when{kNoTimer};
  // running_timer is the timer whose callback is running (null if none);
  // one M at a time runs a P's timers (timers_busy). stop() waits while
  // its timer is running here, so every stop() reads this field on every
  // P: it has a line of its own, written only when timers fire. Beside
  // timer_lock, each stop() pulled every other P's lock line, and arming
  // and stopping timers on two Ps (a context per request) ran 1.8x slower
  // than on one.
  alignas(64) std::atomic<RuntimeTimer*> running_timer{nullptr};
  std::atomic<bool> timers_busy{false};

  alignas(64) Counter runnext_puts;

  // Statistics (owner writes).
  StatCounter created;
  StatCounter switches;
  StatCounter parks;
  StatCounter steals;
  StatCounter blocking_calls;

  // add_timer pushes t (not pending) with t->when_ set. Takes timer_lock.
  void add_timer(RuntimeTimer* t) noexcept;
  // remove_timer deletes t if it is in this heap. Takes timer_lock.
  bool remove_timer(RuntimeTimer* t) noexcept;
  // run_timers fires every timer due at `now`; returns how many fired.
  // Callable by any M (stealing timers of an idle P).
  int run_timers(std::int64_t now) noexcept;
  // clear_timers drops every timer without firing it (teardown).
  void clear_timers() noexcept;
  // move_timers_to moves every timer of this P into to's heap (a spare P
  // going back to the spare list, spare.cpp). Takes this P's timer lock,
  // then to's: only spares move timers, always to a real P, so the order
  // is the same everywhere.
  void move_timers_to(Processor* to) noexcept;
  std::int64_t timer_count() noexcept;

 private:
  void sift_up(std::size_t i) noexcept GORO_REQUIRES(timer_lock);
  void sift_down(std::size_t i) noexcept GORO_REQUIRES(timer_lock);
  void remove_at(std::size_t i) noexcept GORO_REQUIRES(timer_lock);
  void update_timer0() noexcept GORO_REQUIRES(timer_lock);
};

// ProcessorTable holds every P of a run: the gomaxprocs real ones at
// indices [0, procs), then the spare Ps sysmon creates when it needs one
// (spare.cpp). Append-only, and a P once published stays at its index until
// the run ends, so anyone may iterate it without a lock: push_back writes
// the slot before publishing the new size (release), readers load the size
// (acquire) and never look past it.
class ProcessorTable {
 public:
  explicit ProcessorTable(std::size_t capacity)
      : slots_(std::make_unique<std::unique_ptr<Processor>[]>(capacity)), capacity_(capacity) {}

  const std::unique_ptr<Processor>* begin() const noexcept { return slots_.get(); }
  const std::unique_ptr<Processor>* end() const noexcept { return slots_.get() + size(); }
  std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
  std::size_t capacity() const noexcept { return capacity_; }
  const std::unique_ptr<Processor>& operator[](std::size_t i) const noexcept { return slots_[i]; }

  // push_back appends p (size() < capacity()). One appender at a time:
  // the caller serialises (run()'s start, then the scheduler lock).
  void push_back(std::unique_ptr<Processor> p) noexcept {
    const std::size_t n = size_.load(std::memory_order_relaxed);
    slots_[n] = std::move(p);
    size_.store(n + 1, std::memory_order_release);
  }

 private:
  std::unique_ptr<std::unique_ptr<Processor>[]> slots_;
  const std::size_t capacity_;
  std::atomic<std::size_t> size_{0};
};

}  // namespace goro::rt
