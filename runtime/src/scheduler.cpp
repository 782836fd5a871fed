// scheduler.cpp: the GMP scheduler (Go's proc.go, in C++).
//
// Goroutines (G) run on OS threads (M) that hold logical processors (P).
// There are exactly gomaxprocs Ps; Ms come and go (an M stuck in blocking()
// gives its P to a new or idle M).
//
// Run queues.
//   Each P has a bounded local queue (256 slots, lock-free; the owner pushes,
//   thieves steal half) and a runnext slot. A goroutine readied by the
//   running goroutine (a channel hand-off, a new goroutine) goes into runnext
//   and inherits the rest of the time slice, so a producer/consumer pair
//   ping-pongs on one P with no queue traffic. The displaced runnext goes to
//   the tail. When the local queue is full, half of it moves to the global
//   queue (one lock, one batch). The global queue (a list under the scheduler
//   lock) is checked every 61 schedule ticks, so goroutines there cannot
//   starve behind a busy local queue (61: Go's value, a prime so it does not
//   resonate with program periods), and whenever local work runs out.
//
// Finding work (find_runnable), in order: expired timers of our P; the
// global queue on every 61st tick; runnext, then the local queue; the global
// queue; the network poller, without blocking, if goroutines wait on I/O
// and no M is blocked in it; timers of all Ps; stealing from other Ps (4
// passes in a random order, stealing runnext too on the last pass); then
// give up the P and sleep.
//
// Spinning. An M without work "spins" (looks for work to steal) only while
// fewer than half of the busy Ps have a spinning M (2*nmspinning < busy Ps),
// so spinning burns bounded CPU. Making a goroutine runnable wakes an idle P
// (wake_p) only if no M is spinning: a spinning M will find the goroutine.
// A spinning M that finds work stops spinning and calls wake_p, so there is
// always one more looker while work appears. The delicate part (Go's
// "missed wake-up" dance): an M that stops spinning must re-check every
// run queue after decrementing nmspinning, because a goroutine made
// runnable while nmspinning > 0 did not call wake_p.
//
// Sleeping. An idle M sleeps on its note (a futex) and uses no CPU. At most
// one idle M at a time (the poller, Runtime::lastpoll == 0) instead blocks
// in the network poller's epoll_wait, until a descriptor it watches becomes
// ready or the earliest timer of all Ps is due, whichever comes first;
// arming an earlier timer breaks its wait (netpoll_break). So an idle
// process, however many connections it holds, sleeps exactly until its
// next timer or I/O, and not at all otherwise. The poller holds no P: woken
// with goroutines, it takes an idle P to run them, or queues them globally
// and starts Ms for idle Ps (inject_list). See netpoll.cpp.
//
// Locks. The scheduler lock guards the idle M and P lists and the global
// queue. The hot paths (spawn, park/ready, yield) touch only the running P
// and the goroutine, plus one shared counter (num_goroutine) and, only when
// a P is idle and no M spins, the wake-up path.
//
// Alternatives rejected: one global queue (every switch takes a lock);
// unbounded local queues (stealing from them needs locks); marl-style
// pinned fibers (a blocked worker strands its fibers); busy-polling idle
// workers (Boost.Fiber's default: 100% CPU when idle).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <system_error>
#include <thread>

#include "netpoll.hpp"
#include "goro/detail/print.hpp"
#include "sanitizers.hpp"
#include "scheduler.hpp"
#include "traceback.hpp"

namespace goro::rt {

Runtime* g_runtime = nullptr;

namespace {

std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// Global run queue, under rt->lock.
void global_runq_put_locked(Runtime* rt, Goroutine* g) GORO_REQUIRES(rt->lock) {
  rt->runq.push_back(g);
  rt->runq_size.store(static_cast<std::int64_t>(rt->runq.size()), std::memory_order_relaxed);
}

Goroutine* global_runq_pop_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock) {
  Goroutine* g = rt->runq.pop_front();
  rt->runq_size.store(static_cast<std::int64_t>(rt->runq.size()), std::memory_order_relaxed);
  return g;
}

// global_runq_get_locked takes a share of the global queue: one to run and
// the rest into p's local queue (Go's globrunqget). max = 0: no limit but
// the fair share. The caller's local queue must be empty when max != 1.
Goroutine* global_runq_get_locked(Runtime* rt, Processor* p, std::int64_t max) noexcept GORO_REQUIRES(rt->lock) {
  const auto size = static_cast<std::int64_t>(rt->runq.size());
  if (size == 0) return nullptr;
  std::int64_t n = std::min<std::int64_t>(size, size / rt->procs + 1);
  if (max > 0 && n > max) n = max;
  n = std::min<std::int64_t>(n, RunQueue::kCapacity / 2);
  Goroutine* g = rt->runq.pop_front();
  for (--n; n > 0; --n) {
    Goroutine* extra = rt->runq.pop_front();
    if (!p->runq.push(extra)) {  // cannot happen when the queue was empty; be safe
      rt->runq.push_front(extra);
      break;
    }
  }
  rt->runq_size.store(static_cast<std::int64_t>(rt->runq.size()), std::memory_order_relaxed);
  return g;
}

namespace {

// runq_put_slow moves half of a full local queue, plus g, to the global queue.
bool runq_put_slow(Runtime* rt, Processor* p, Goroutine* g) noexcept {
  Goroutine* batch[RunQueue::kCapacity / 2 + 1];
  const std::uint32_t n = p->runq.take_half_for_overflow(batch);
  if (n == 0) return false;
  batch[n] = g;
  std::size_t size;
  {
    LockGuard l(rt->lock);
    for (std::uint32_t i = 0; i <= n; ++i) rt->runq.push_back(batch[i]);
    size = rt->runq.size();
    rt->runq_size.store(static_cast<std::int64_t>(size), std::memory_order_relaxed);
  }
  // A goroutine that floods the global queue (spawning in a loop, say) is
  // asked to yield at its next runtime call, as if its time slice were
  // over: it goes to the back of the queue it filled, so the queue drains
  // before it adds more. Without this it adds a time slice's worth (10 ms
  // of go() calls: tens of thousands) and each queued goroutine holds a
  // record, fresh memory the whole program pays page faults for. Set on
  // g0 (a timer readying many), the request is dropped at the next switch.
  if (size >= kFloodedGlobalQueue) detail::t_preempt.store(true, std::memory_order_relaxed);
  return true;
}

}  // namespace

Goroutine* runq_steal(Processor* p, Processor* p2, bool steal_next) noexcept {
  const std::uint32_t t = p->runq.tail_for_owner();
  std::uint32_t n = p2->runq.grab_half(p->runq.slots(), t);
  if (n == 0) {
    if (!steal_next) return nullptr;
    Goroutine* next = p2->runnext.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;
    if (p2->status.load(std::memory_order_relaxed) == PStatus::kRunning) {
      // The owner is likely about to run it (a channel hand-off takes well
      // under a microsecond); give it that chance before taking it away,
      // as Go does: 3 us is ~50x a sync channel operation.
      usleep(3);
    }
    if (!p2->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
      return nullptr;
    }
    p->steals.add();
    return next;
  }
  p->steals.add();
  --n;
  Goroutine* g = p->runq.slots()[(t + n) % RunQueue::kCapacity].load(std::memory_order_relaxed);
  if (n > 0) p->runq.publish_stolen(n);
  return g;
}

namespace {

Machine* idle_m_get_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock) {
  Machine* m = rt->midle;
  if (m == nullptr) return nullptr;
  rt->midle = m->idle_link;
  m->idle_link = nullptr;
  m->on_idle_list = false;
  --rt->nmidle;
  return m;
}

void idle_m_put_locked(Runtime* rt, Machine* m) noexcept GORO_REQUIRES(rt->lock) {
  m->idle_link = rt->midle;
  rt->midle = m;
  m->on_idle_list = true;
  ++rt->nmidle;
}

void idle_m_remove_locked(Runtime* rt, Machine* m) noexcept GORO_REQUIRES(rt->lock) {
  for (Machine** pp = &rt->midle; *pp != nullptr; pp = &(*pp)->idle_link) {
    if (*pp == m) {
      *pp = m->idle_link;
      m->idle_link = nullptr;
      m->on_idle_list = false;
      --rt->nmidle;
      return;
    }
  }
}

void mstart(Machine* m);

void new_m(Runtime* rt, Processor* p, bool spinning) {
  auto owned = std::make_unique<Machine>(rt->mcount.fetch_add(1, std::memory_order_relaxed));
  Machine* m = owned.get();
  m->nextp = p;
  m->spinning = spinning;
  m->rng = static_cast<std::uint64_t>(now_ns()) ^ (std::uint64_t{static_cast<unsigned>(m->id)} << 32);
  // In allm before the thread exists: begin_exit wakes every M in allm,
  // and an M that is not there yet could stop (stop_m) before begin_exit,
  // be missed by its wake-ups and sleep forever; run()'s join loop, too,
  // must not finish while an M it cannot see is starting.
  {
    LockGuard l(rt->lock);
    rt->allm.push_back(std::move(owned));
  }
  std::thread t;
  try {
    t = std::thread([m] { mstart(m); });
  } catch (const std::system_error&) {
    fatal("runtime: failed to create new OS thread");  // Go's words
  }
  LockGuard l(rt->lock);
  m->thread = std::move(t);
}

void reset_spinning(Machine* m) noexcept {
  m->spinning = false;
  if (g_runtime->nmspinning.fetch_sub(1, std::memory_order_acq_rel) - 1 < 0) {
    fatal("goro: negative nmspinning");
  }
  wake_p();
}

void release_p(Machine* m) noexcept {
  Processor* p = m->p;
  m->p = nullptr;
  p->m.store(nullptr, std::memory_order_relaxed);
}

// stop_m puts m (holding no P) on the idle list and sleeps until start_m hands
// it a P (returns true, m->p set) or the run exits (false).
bool stop_m(Runtime* rt, Machine* m) {
  {
    LockGuard l(rt->lock);
    if (rt->exiting.load(std::memory_order_relaxed)) return false;
    m->nextp = nullptr;
    m->park_note.clear();
    idle_m_put_locked(rt, m);
  }
  m->park_note.sleep();
  Processor* p;
  {
    LockGuard l(rt->lock);
    if (m->on_idle_list) {
      // Woken for the exit.
      idle_m_remove_locked(rt, m);
      return false;
    }
    // start_m took us off the list and set nextp under the lock.
    p = m->nextp;
    m->nextp = nullptr;
  }
  if (p == nullptr) return false;
  acquire_p(m, p);
  return true;
}

// check_all_timers runs the due timers of every P. Returns how many ran.
int check_all_timers(Runtime* rt) noexcept {
  std::int64_t now = 0;
  int ran = 0;
  for (const auto& p2 : rt->allp) {
    const std::int64_t when = p2->timer0_when.load(std::memory_order_acquire);
    if (when == kNoTimer) continue;
    if (now == 0) now = now_ns();
    if (when <= now) ran += p2->run_timers(now);
  }
  return ran;
}

Goroutine* steal_work(Runtime* rt, Machine* m, Processor* p) noexcept {
  constexpr int kStealTries = 4;  // Go's stealTries
  const int procs = rt->procs;
  for (int i = 0; i < kStealTries; ++i) {
    const bool last = i == kStealTries - 1;
    const std::uint64_t r = splitmix(m->rng);
    const std::uint32_t start = static_cast<std::uint32_t>(r % static_cast<std::uint64_t>(procs));
    const std::int32_t stride = rt->steal_strides[(r >> 32) % rt->steal_strides.size()];
    std::uint32_t pos = start;
    for (int k = 0; k < procs; ++k, pos = (pos + static_cast<std::uint32_t>(stride)) % static_cast<std::uint32_t>(procs)) {
      Processor* p2 = rt->allp[pos].get();
      if (p2 == p) continue;
      if (rt->exiting.load(std::memory_order_relaxed)) return nullptr;
      if (p2->status.load(std::memory_order_relaxed) == PStatus::kIdle) continue;
      if (Goroutine* g = runq_steal(p, p2, last)) return g;
    }
  }
  return nullptr;
}

// find_runnable returns the next goroutine for m, or null when the run
// exits. It may give up m's P and sleep; it returns with a P held.
Goroutine* find_runnable(Runtime* rt, Machine* m, bool* inherit) {
top:
  if (m->p == nullptr) goto idle;
  {
    Processor* p = m->p;
    if (rt->exiting.load(std::memory_order_relaxed)) return nullptr;
    if (p->migrant != nullptr) [[unlikely]] {
      *inherit = false;
      return std::exchange(p->migrant, nullptr);
    }
    // A spare P goes back once the thread it stood in for runs again.
    if (p->spare && spare_surplus(rt)) [[unlikely]] {
      if (return_spare(rt, m)) goto top;
    }

    const std::int64_t t0 = p->timer0_when.load(std::memory_order_relaxed);
    if (t0 != kNoTimer) {
      const std::int64_t now = now_ns();
      if (t0 <= now) p->run_timers(now);
    }

    // Fairness: every 61st tick, and after a streak of direct switches, the
    // global queue goes first.
    const bool fairness_due = std::exchange(p->fairness_due, false);
    if ((fairness_due || p->schedtick.load(std::memory_order_relaxed) % 61 == 0) &&
        rt->runq_size.load(std::memory_order_relaxed) > 0) {
      LockGuard l(rt->lock);
      if (Goroutine* g = global_runq_get_locked(rt, p, 1)) {
        *inherit = false;
        return g;
      }
    }

    if (Goroutine* g = runq_get(p, inherit)) return g;

    if (rt->runq_size.load(std::memory_order_relaxed) > 0) {
      LockGuard l(rt->lock);
      if (Goroutine* g = global_runq_get_locked(rt, p, 0)) {
        *inherit = false;
        return g;
      }
    }

    // The queue and timers of a P whose M is asleep in a goroutine's own
    // code: nobody else would run them (spare.cpp).
    if (rt->stranded.load(std::memory_order_relaxed) > 0) [[unlikely]] {
      if (Goroutine* g = steal_stranded(rt, p)) {
        *inherit = false;
        return g;
      }
    }

    // The network, without blocking: only worth a system call if goroutines
    // wait on I/O, and not while an M is blocked in the poller (it gets the
    // events anyway). Before stealing, as Go does: I/O-ready goroutines are
    // this P's to run as much as another P's queued ones.
    if (netpoll_waiters() > 0 && rt->lastpoll.load(std::memory_order_relaxed) != 0) {
      Goroutine* list[kNetpollMax];
      if (const int n = netpoll(0, list); n > 0) {
        inject_list(m, list + 1, n - 1);
        if (make_runnable(list[0])) {
          *inherit = false;
          return list[0];
        }
      }
    }

    if (check_all_timers(rt) > 0) {
      if (Goroutine* g = runq_get(p, inherit)) return g;
    }

    // Steal, if spinning is allowed: at most half the busy Ps have a spinner.
    if (m->spinning || 2 * rt->nmspinning.load(std::memory_order_relaxed) <
                           rt->procs - rt->npidle.load(std::memory_order_relaxed)) {
      if (!m->spinning) {
        m->spinning = true;
        rt->nmspinning.fetch_add(1, std::memory_order_acq_rel);
      }
      if (Goroutine* g = steal_work(rt, m, p)) {
        *inherit = false;
        return g;
      }
    }

    // Before giving up the P: if goroutines wait on I/O and the check above
    // was skipped because an M is blocked in the poller, look anyway. That
    // M wakes when an event arrives, but on a loaded machine the kernel may
    // not run it for milliseconds; meanwhile this M would sleep too, and
    // the events would wait for both. One non-blocking epoll call on the
    // way to idle is cheap (Go skips it; its spinning Ms hide the gap).
    if (netpoll_waiters() > 0 && rt->lastpoll.load(std::memory_order_relaxed) == 0) {
      Goroutine* list[kNetpollMax];
      if (const int n = netpoll(0, list); n > 0) {
        inject_list(m, list + 1, n - 1);
        if (make_runnable(list[0])) {
          *inherit = false;
          return list[0];
        }
      }
    }

    // Nothing. Give up the P, re-checking the global queue under the lock.
    // A spare's timers go to a real P first: nobody runs a free spare's.
    if (p->spare) [[unlikely]] drop_spare_timers(rt, p);
    {
      LockGuard l(rt->lock);
      if (rt->exiting.load(std::memory_order_relaxed)) return nullptr;
      if (Goroutine* g = global_runq_get_locked(rt, p, 0)) {
        *inherit = false;
        return g;
      }
      release_p(m);
      idle_p_put_locked(rt, p);
    }

    if (m->spinning) {
      m->spinning = false;
      if (rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst) - 1 < 0) fatal("goro: negative nmspinning");
      // The delicate dance: anything made runnable while we spun saw
      // nmspinning > 0 and did not wake anyone. Look again.
      bool work = rt->runq_size.load(std::memory_order_seq_cst) > 0;
      for (const auto& p2 : rt->allp) {
        if (work) break;
        work = !p2->runq.empty() || p2->runnext.load(std::memory_order_seq_cst) != nullptr;
      }
      if (work) {
        Processor* np;
        {
          LockGuard l(rt->lock);
          np = idle_p_get_locked(rt);
        }
        if (np != nullptr) {
          acquire_p(m, np);
          m->spinning = true;
          rt->nmspinning.fetch_add(1, std::memory_order_acq_rel);
          goto top;
        }
      }
    }
  }

idle:
  // No P. One idle M at a time blocks in the poller, until I/O or the
  // earliest timer; the others sleep until start_m hands them a P.
  for (;;) {
    if (rt->exiting.load(std::memory_order_relaxed)) return nullptr;
    std::int64_t next = next_timer_when();
    if ((netpoll_waiters() > 0 || next != kNoTimer) && rt->lastpoll.exchange(0, std::memory_order_seq_cst) != 0) {
      rt->poll_until.store(next == kNoTimer ? 0 : next, std::memory_order_seq_cst);
      // A timer armed before we swapped lastpoll saw nobody polling and
      // woke a P instead (wake_netpoller); one armed after sees poll_until.
      // One armed in between is caught here.
      if (const std::int64_t again = next_timer_when(); again < next) {
        next = again;
        rt->poll_until.store(next, std::memory_order_seq_cst);
      }
      std::int64_t delay = -1;
      if (next != kNoTimer) delay = std::max<std::int64_t>(0, next - now_ns());
      Goroutine* list[kNetpollMax];
      const int n = netpoll(delay, list);
      rt->poll_until.store(0, std::memory_order_seq_cst);
      rt->lastpoll.store(now_ns(), std::memory_order_seq_cst);
      // Exiting: goroutines in `list` stay parked; teardown unwinds them.
      if (rt->exiting.load(std::memory_order_relaxed)) return nullptr;
      Processor* np;
      {
        LockGuard l(rt->lock);
        np = idle_p_get_locked(rt);
      }
      if (np != nullptr) {
        acquire_p(m, np);
        if (n > 0) {
          inject_list(m, list + 1, n - 1);
          if (make_runnable(list[0])) {
            *inherit = false;
            return list[0];
          }
        }
        goto top;  // timers are due, or a break asked us to look again
      }
      // Every P is busy: they will run what we found.
      inject_list(m, list, n);
    } else if (next != kNoTimer && rt->lastpoll.load(std::memory_order_seq_cst) == 0) {
      // Another M polls: make sure it wakes for our earliest timer.
      const std::int64_t until = rt->poll_until.load(std::memory_order_seq_cst);
      if (until == 0 || until > next) netpoll_break();
    }
    if (rt->debug.deadlock_check) check_dead(rt);
    if (stop_m(rt, m)) goto top;
  }
}

void mstart(Machine* m) {
  set_current_machine(m);
  machine_context_init(m);
  machine_signal_init(m);
  Processor* p = m->nextp;
  m->nextp = nullptr;
  acquire_p(m, p);
  schedule_loop(m);
  machine_signal_fini(m);
  set_current_machine(nullptr);
  m->exited.store(true, std::memory_order_release);
}

}  // namespace

bool runq_put(Processor* p, Goroutine* g, bool next) noexcept {
  if (next) {
    p->runnext_puts.add();
    // Thieves only ever CAS a non-null runnext to null, so an empty slot
    // stays empty until we fill it: a plain store will do (release: the
    // thief that takes g sees it whole). Occupied: exchange, racing thieves.
    if (p->runnext.load(std::memory_order_relaxed) == nullptr) {
      p->runnext.store(g, std::memory_order_release);
      return false;
    }
    g = p->runnext.exchange(g, std::memory_order_acq_rel);
    if (g == nullptr) return false;
    // The displaced runnext goes to the tail.
  }
  while (!p->runq.push(g)) {
    if (runq_put_slow(g_runtime, p, g)) return true;
  }
  return true;
}

void global_runq_put(Goroutine* g) noexcept {
  Runtime* rt = g_runtime;
  LockGuard l(rt->lock);
  global_runq_put_locked(rt, g);
}

void idle_p_put_locked(Runtime* rt, Processor* p) noexcept GORO_REQUIRES(rt->lock) {
  if (p->spare) [[unlikely]] {
    spare_put_locked(rt, p);  // never on the idle list
    return;
  }
  p->status.store(PStatus::kIdle, std::memory_order_release);
  p->m.store(nullptr, std::memory_order_relaxed);
  p->idle_link = rt->pidle;
  rt->pidle = p;
  rt->npidle.fetch_add(1, std::memory_order_seq_cst);
}

Processor* idle_p_get_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock) {
  Processor* p = rt->pidle;
  if (p == nullptr) return nullptr;
  rt->pidle = p->idle_link;
  p->idle_link = nullptr;
  rt->npidle.fetch_sub(1, std::memory_order_seq_cst);
  return p;
}

void acquire_p(Machine* m, Processor* p) noexcept {
  g_runtime->p_acquires.fetch_add(1, std::memory_order_relaxed);
  m->p = p;
  p->m.store(m, std::memory_order_relaxed);
  p->status.store(PStatus::kRunning, std::memory_order_release);
  // seq_cst pairs with sysmon's store of sysmon_deep_sleep and its re-check of npidle.
  if (g_runtime->sysmon_deep_sleep.load(std::memory_order_seq_cst)) wake_sysmon();
}

void wake_p() noexcept {
  Runtime* rt = g_runtime;
  // Only one spinning M is started at a time; it starts the next one when it
  // finds work (reset_spinning).
  if (rt->npidle.load(std::memory_order_seq_cst) == 0) return;
  if (rt->nmspinning.load(std::memory_order_seq_cst) != 0) return;
  int expected = 0;
  if (!rt->nmspinning.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return;
  start_m(nullptr, true);
}

void start_m(Processor* p, bool spinning) {
  Runtime* rt = g_runtime;
  Machine* m;
  {
    LockGuard l(rt->lock);
    if (rt->exiting.load(std::memory_order_relaxed) || rt->tearing_down) {
      if (p != nullptr) idle_p_put_locked(rt, p);
      if (spinning) rt->nmspinning.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
    if (p == nullptr) {
      p = idle_p_get_locked(rt);
      if (p == nullptr) {
        if (spinning) rt->nmspinning.fetch_sub(1, std::memory_order_acq_rel);
        return;
      }
    }
    m = idle_m_get_locked(rt);
    if (m != nullptr) {
      // Set under the lock: stop_m reads them after seeing itself off the list.
      m->nextp = p;
      m->spinning = spinning;
    }
  }
  if (m != nullptr) {
    m->park_note.wakeup();
    return;
  }
  new_m(rt, p, spinning);
}

void handoff_p(Processor* p) {
  Runtime* rt = g_runtime;
  // Local or global work: an M must run it.
  if (!p->runq.empty() || p->runnext.load(std::memory_order_acquire) != nullptr ||
      rt->runq_size.load(std::memory_order_relaxed) > 0) {
    start_m(p, false);
    return;
  }
  // No one is spinning or idle: start a spinner to look for work.
  if (rt->nmspinning.load(std::memory_order_relaxed) + rt->npidle.load(std::memory_order_relaxed) == 0) {
    int expected = 0;
    if (rt->nmspinning.compare_exchange_strong(expected, 1)) {
      start_m(p, true);
      return;
    }
  }
  bool start;
  {
    LockGuard l(rt->lock);
    const bool exiting = rt->exiting.load(std::memory_order_relaxed);
    start = !exiting && rt->runq_size.load(std::memory_order_relaxed) > 0;
    // The last running P, with goroutines waiting on I/O and nobody
    // polling: an M must poll (Go's handoffp does the same).
    start = start || (!exiting && rt->npidle.load(std::memory_order_relaxed) == rt->procs - 1 &&
                      netpoll_waiters() > 0 && rt->lastpoll.load(std::memory_order_seq_cst) != 0);
    if (!start) idle_p_put_locked(rt, p);
  }
  if (start) {
    start_m(p, false);
    return;
  }
  // Its timers lost their M: make sure the poller wakes for them.
  const std::int64_t when = p->timer0_when.load(std::memory_order_acquire);
  if (when != kNoTimer) wake_netpoller(when);
}

std::int64_t next_timer_when() noexcept {
  std::int64_t next = kNoTimer;
  for (const auto& p : g_runtime->allp) {
    next = std::min(next, p->timer0_when.load(std::memory_order_seq_cst));
  }
  return next;
}

void wake_netpoller(std::int64_t when) noexcept {
  Runtime* rt = g_runtime;
  if (rt == nullptr) return;
  if (rt->lastpoll.load(std::memory_order_seq_cst) == 0) {
    // An M is blocked in the poller (or about to be: then poll_until may
    // still be 0, and the break is spurious, never missed).
    const std::int64_t until = rt->poll_until.load(std::memory_order_seq_cst);
    if (until == 0 || until > when) netpoll_break();
    return;
  }
  // Nobody polls: if a P is idle, start an M; it will find the timer and
  // either run it or become the poller.
  wake_p();
}

void inject_list(Machine* m, Goroutine** list, int n) noexcept {
  Runtime* rt = g_runtime;
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (make_runnable(list[i])) list[k++] = list[i];
  }
  if (k == 0) return;
  Processor* p = m != nullptr ? m->p : nullptr;
  // Idle Ps get a share through the global queue, each with an M started
  // for it; the rest stay on our P, where they are cheapest to run.
  int global = k;
  if (p != nullptr) global = std::min(k, rt->npidle.load(std::memory_order_seq_cst));
  if (global > 0) {
    {
      LockGuard l(rt->lock);
      for (int i = 0; i < global; ++i) global_runq_put_locked(rt, list[i]);
    }
    for (int i = 0; i < global && rt->npidle.load(std::memory_order_seq_cst) > 0; ++i) start_m(nullptr, false);
  }
  for (int i = global; i < k; ++i) runq_put(p, list[i], false);
}

bool finish_switch_out(Machine* m, Goroutine* g) noexcept {
  // First: did the goroutine overflow its stack?
  if (g->reason != SwitchReason::kExit &&
      (static_cast<char*>(g->ctx) < g->stack.lo || !StackPool::canary_intact({g->stack.slot, g->stack.index, g->stack.guarded}))) {
    stack_overflow(g);
  }
  switch (g->reason) {
    case SwitchReason::kPark: {
      // Release: whoever readies g sees its saved context.
      set_status<GStatus::kRunning, GStatus::kWaiting>(g, std::memory_order_release);
      const UnlockFn unlock = g->park_unlock;
      // After a successful unlock g may already be running elsewhere: hands off.
      return unlock != nullptr && !unlock(g, g->park_arg);
    }
    // kRunnable is stored with release, as kWaiting is: a stack walker
    // that loads it (acquire) sees the saved context.
    case SwitchReason::kYield:
      set_status<GStatus::kRunning, GStatus::kRunnable>(g, std::memory_order_release);
      runq_put(m->p, g, false);
      return false;
    case SwitchReason::kPreempt:
      // Go puts preempted goroutines on the global queue, so any P may pick them up.
      set_status<GStatus::kRunning, GStatus::kRunnable>(g, std::memory_order_release);
      global_runq_put(g);
      return false;
    case SwitchReason::kExit:
      goexit0(m, g);
      return false;
    case SwitchReason::kBlockingHandoff:
      // The goroutine left blocking() and found no P: queue it globally.
      // Look for an idle P again in the same lock hold (Go's exitsyscall0):
      // the P's owner may have gone idle since exit_blocking looked, after
      // its last look at the global queue, and nobody else would wake up
      // for g. With a P this M runs g itself; without one it stops in
      // find_runnable.
      set_status<GStatus::kSyscall, GStatus::kRunnable>(g, std::memory_order_release);
      {
        Runtime* rt = g_runtime;
        Processor* np = nullptr;
        {
          LockGuard l(rt->lock);
          global_runq_put_locked(rt, g);
          m->blocked.store(false, std::memory_order_relaxed);
          if (!rt->exiting.load(std::memory_order_relaxed)) np = idle_p_get_locked(rt);
        }
        if (np != nullptr) acquire_p(m, np);
      }
      return false;
  }
  return false;
}

void finish_switch_out_direct(Machine* m, Goroutine* g) noexcept {
  if (finish_switch_out(m, g)) {
    // A cancelled park: g resumes as soon as the goroutine we switched to
    // gives up the P.
    set_status<GStatus::kWaiting, GStatus::kRunnable>(g, std::memory_order_release);
    if (runq_put(m->p, g, /*next=*/true)) wake_p();
  }
}

// prepare_to_run readies g to be switched in by m; returns its record (a
// goroutine's first run moves it into its stack: bind_stack).
Goroutine* prepare_to_run(Machine* m, Processor* p, Goroutine* g, bool inherit_time) noexcept {
  if (g->stack.slot == nullptr) g = bind_stack(p, g);  // first run: it gets its stack now
  if (!inherit_time) p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  p->switches.add();
  g->m = m;
  detail::t_preempt.store(false, std::memory_order_relaxed);  // m's own flag: this is m's thread
  set_status<GStatus::kRunnable, GStatus::kRunning>(g, std::memory_order_relaxed);
  hold_check(g);  // a stack walker may be reading g's stack: wait for it
  // After the hold check: a walker that sees kRunnable must not see
  // started set for a goroutine whose first context is being built.
  g->started = true;
  // Release: sysmon and dumps that load curg (acquire) see the record
  // fully built.
  m->curg.store(g, std::memory_order_release);
  return g;
}

// migrate_elsewhere is GORODEBUG=migrate=1's move: g last ran on m, so m
// hands its P, with g queued on it, to another M (an idle one,
// or a new one) and goes idle itself; that M runs g. Code that keeps
// thread_local state (errno, a library's per-thread cache) across a park
// then sees it change in tests, not first in production. Handing over the
// P rather than g alone works with one P too, and keeps g on its P.
static void migrate_elsewhere(Machine* m, Goroutine* g) {
  Processor* p = m->p;
  // In the P's migrant slot, which the next holder runs first: g was
  // chosen to run now, and putting it back in a queue would let the
  // goroutines behind it overtake it (on one P, yield would no longer
  // alternate). Not runnext: the M that takes g counts a schedule tick (a
  // goroutine handed around in runnext would inherit its time slice
  // forever, and the global queue's every-61st-tick turn would never come).
  p->migrant = g;
  release_p(m);
  start_m(p, /*spinning=*/false);
}

void execute(Machine* m, Goroutine* g, bool inherit_time) {
  if (m->spinning) reset_spinning(m);
  Runtime* rt = g_runtime;
  if (rt->debug.migrate && g->started && g->m == m && !rt->tearing_down) [[unlikely]] {
    migrate_elsewhere(m, g);
    return;  // to schedule_loop, which finds no P and idles
  }
  g = prepare_to_run(m, m->p, g, inherit_time);
  for (;;) {
    Goroutine* out = resume(m, g);
    m->curg.store(nullptr, std::memory_order_relaxed);
    if (!finish_switch_out(m, out)) return;
    // Park cancelled: resume at once, keeping the time slice.
    g = out;
    if (rt->debug.migrate && !rt->tearing_down) [[unlikely]] {
      // Not on this M under GORODEBUG=migrate=1: a park its waker beat
      // is a park too (with a short sleep, under load, that is common).
      // Release, as for any runnable goroutine: a stack walker that loads
      // kRunnable (acquire) sees the saved context.
      set_status<GStatus::kWaiting, GStatus::kRunnable>(g, std::memory_order_release);
      migrate_elsewhere(m, g);
      return;
    }
    set_status<GStatus::kWaiting, GStatus::kRunning>(g, std::memory_order_relaxed);
    hold_check(g);
    m->curg.store(g, std::memory_order_release);
  }
}

Goroutine* take_direct_next(Machine* m, Goroutine* g) noexcept {
#if GORO_ASAN
  // ASan's fiber switch protocol has no room for code on the new stack
  // before the switch completes: always go through g0.
  (void)m;
  (void)g;
  return nullptr;
#else
  Runtime* rt = g_runtime;
  Processor* p = m->p;
  if (p == nullptr || rt->tearing_down || rt->exiting.load(std::memory_order_relaxed)) return nullptr;
  // GORODEBUG=migrate=1: every switch goes through g0, where execute()
  // moves a goroutine to another M.
  if (rt->debug.migrate) return nullptr;
  // Main's exit ends the run: g0 handles it.
  if (g->reason == SwitchReason::kExit && g->id.load(std::memory_order_relaxed) == 1) return nullptr;
  // Every kDirectStreak-th switch goes through g0 anyway, so timers, the
  // global queue and the idle Ms get looked at even while goroutines hand
  // the P back and forth.
  if (++p->direct_streak >= kDirectStreak) {
    p->direct_streak = 0;
    p->fairness_due = true;
    return nullptr;
  }
  // A due timer of this P: through g0 too, which runs it first thing. Else
  // a timer waits out the streak, and when each switch pays for a fresh
  // stack (~20 us) that is a millisecond late. The clock is read only while
  // a timer is pending, on every 4th switch.
  const std::int64_t t0 = p->timer0_when.load(std::memory_order_relaxed);
  if (t0 != kNoTimer && (p->direct_streak & 3) == 0 && t0 <= now_ns()) {
    p->direct_streak = 0;
    return nullptr;
  }
  bool inherit = false;
  Goroutine* next = runq_get(p, &inherit);
  if (next == nullptr) return nullptr;
  if (next->stack.slot == nullptr && p->sfree_count == 0 && g->reason == SwitchReason::kPark &&
      g->park_unlock != nullptr) {
    // next would start on a stack that is not in the P's cache: likely
    // fresh memory, whose first touch costs ~10 us on a VM, and g still
    // holds what park() unlocks after the switch (a channel's lock, say).
    // Through g0 instead, which unlocks before binding the stack: with
    // a million goroutines parking on one channel, the other P spun on
    // that lock for a quarter of the run. Back into runnext, where it came
    // from or would have gone next anyway.
    p->direct_streak = 0;
    runq_put(p, next, /*next=*/true);
    return nullptr;
  }
  return prepare_to_run(m, p, next, inherit);
#endif
}

void schedule_loop(Machine* m) {
  Runtime* rt = g_runtime;
  for (;;) {
    bool inherit = false;
    Goroutine* g = find_runnable(rt, m, &inherit);
    if (g == nullptr) break;
    execute(m, g, inherit);
  }
  if (m->spinning) {
    m->spinning = false;
    rt->nmspinning.fetch_sub(1, std::memory_order_acq_rel);
  }
  if (m->p != nullptr) {
    Processor* p = m->p;
    LockGuard l(rt->lock);
    release_p(m);
    idle_p_put_locked(rt, p);
  }
}

}  // namespace goro::rt

