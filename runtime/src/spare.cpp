// spare.cpp: spare Ps, stand-ins for Ps whose thread is blocked outside
// blocking().
//
// The problem. A goroutine that blocks its OS thread in its own code (a
// contended std::mutex, std::this_thread::sleep_for, a blocking read) keeps
// its P: the M holding the P is asleep in the kernel, and the goroutines
// queued on that P (runnext, the local queue, its timers) wait behind it.
// sysmon tells such a thread from a hog by its state in /proc (sysmon.cpp)
// and marks the P stranded. Other Ps steal from it as from any P, but with
// GOMAXPROCS=1, or every other P busy or stranded too, nobody would.
//
// Why not hand the P itself to another M, as blocking() does? blocking()
// gives the P up at a known point (enter_blocking: m->p = null, the P in
// kSyscall), and takes it back with one CAS on the way out. A goroutine
// asleep in its own code gave nothing up: when its thread wakes it runs on
// with its M's P and enters the runtime through any of a dozen paths that
// use that P as its owner (spawn, ready, park, yield, channel operations,
// timers). Taking the P away would need every one of those paths to check,
// with a CAS or a fence, that the P is still theirs: a cost on every
// switch, for the sake of a bug in the program. (A membarrier handshake
// like the stack walker's, traceback.cpp, makes such a check a plain load,
// but the store it pairs with would go on every runtime entry, and a
// thread that sleeps in a page fault between its check and its use of the
// P would look blocked while it owns the P.)
//
// So the stranded P stays with its M, and only what a thief may do is done
// to it: its queue and runnext are stolen (grab_half and the CAS on
// runnext are safe against the owner, whatever the owner is doing) and its
// due timers run elsewhere (run_timers is any M's, one at a time). What is
// missing is a P for the thief to run them on: a spare P.
//
// Spare Ps. Beyond the gomaxprocs real Ps, a run has up to kMaxSpareProcs
// spares, created by sysmon the first time it needs one and reused after
// (allp holds them after the real Ps, so every loop over all Ps, for
// timers, statistics or teardown, sees them). A spare is never on the idle
// list and never counted in npidle: idle_p_get_locked cannot hand one out,
// and wake_p, start_m(nullptr), the deadlock check and the spinning rules
// see gomaxprocs Ps as before. Only sysmon lends one (lend_spare), to an M
// it starts with start_m, and only while fewer spares are lent than Ps are
// stranded. The M then runs an ordinary scheduling loop on the spare, which
// finds the stranded Ps' goroutines through steal_stranded (any M's
// find_runnable calls it while a P is stranded; idle real Ps are woken for
// the same work first, a spare is lent only when none is idle).
//
// Giving it back. sysmon clears a P's stranded flag when its schedtick
// moves, when it finds the thread running again (it looks every
// millisecond while the P is stranded), or when the M lets go of the P.
// Then more spares are lent than Ps are stranded, and an M holding a spare
// returns it at its next scheduling round (find_runnable's top: at most 61
// direct switches later, or when its goroutine yields to a preemption
// request): the spare's queue goes to the global queue, its timers to a
// real P, and the M takes an idle real P if there is one or goes idle. An
// M that runs out of work on a spare puts it back the same way. A spare
// whose M enters blocking() is handed off by sysmon like any P.
//
// The count. While a thread sleeps, spares lent <= Ps stranded, so at most
// gomaxprocs Ms run goroutines on the CPU (a stranded M is asleep, as Go's
// M in a system call is). When the thread wakes, it runs alongside the
// spare until sysmon notices (<= ~1 ms) and the spare's M reaches a
// scheduling round: a brief overlap, one goroutine more than gomaxprocs.
// A spare's goroutine that blocks its thread too strands the spare, and
// sysmon lends another: a convoy of goroutines blocked on one std::mutex
// whose holder waits in a queue still makes progress, up to kMaxSpareProcs
// deep. Past that, the queues wait, as they did before spares existed.
//
// Alternatives rejected: one hidden spare (a second blocked thread, say a
// goroutine of the spare's contending for the same std::mutex, stalls
// everything again); putting spares on the idle list (npidle would count
// Ps that do not exist, and every "all Ps idle" test, the deadlock check's
// first, would need to know better); sysmon running the stranded timers
// itself (callbacks would run on a thread with no M, and a slow one would
// stall sysmon).
#include <memory>

#include "scheduler.hpp"

namespace goro::rt {

namespace {

// timer_home picks the real P a spare's timers move to: one that is not
// stranded (its owner, a thief or the poller runs them), else P0 (where
// steal_stranded runs them).
Processor* timer_home(Runtime* rt) noexcept {
  for (int i = 0; i < rt->procs; ++i) {
    Processor* p = rt->allp[static_cast<std::size_t>(i)].get();
    if (!p->stranded.load(std::memory_order_relaxed)) return p;
  }
  return rt->allp[0].get();
}

// spare_free_put_locked links a spare that holds nothing into the free list.
void spare_free_put_locked(Runtime* rt, Processor* p) noexcept GORO_REQUIRES(rt->lock) {
  p->status.store(PStatus::kIdle, std::memory_order_release);
  p->m.store(nullptr, std::memory_order_relaxed);
  p->idle_link = rt->spare_free;
  rt->spare_free = p;
}

// take_own_next pops p's runnext or queue head; p's owner only.
Goroutine* take_own_next(Processor* p) noexcept {
  bool inherit = false;
  return runq_get(p, &inherit);
}

}  // namespace

Goroutine* steal_stranded(Runtime* rt, Processor* p) noexcept {
  // Timers first: a goroutine whose sleep is over is as runnable as a
  // queued one, and the callbacks ready goroutines onto our own P.
  std::int64_t now = 0;
  bool fired = false;
  for (const auto& owned : rt->allp) {
    Processor* p2 = owned.get();
    if (p2 == p || !p2->stranded.load(std::memory_order_acquire)) continue;
    const std::int64_t when = p2->timer0_when.load(std::memory_order_acquire);
    if (when == kNoTimer) continue;
    if (now == 0) now = now_ns();
    if (when <= now && p2->run_timers(now) > 0) fired = true;
  }
  if (fired) {
    if (Goroutine* g = take_own_next(p)) return g;
  }
  // Then their queues, and those of lent spares (steal_work knows only the
  // real Ps; an idle P's M woken for a spare's surplus work finds it here).
  for (const auto& owned : rt->allp) {
    Processor* p2 = owned.get();
    if (p2 == p) continue;
    if (!p2->stranded.load(std::memory_order_acquire) &&
        !(p2->spare && p2->status.load(std::memory_order_relaxed) != PStatus::kIdle)) {
      continue;
    }
    if (Goroutine* g = runq_steal(p, p2, /*steal_next=*/true)) return g;
  }
  return nullptr;
}

bool spare_surplus(Runtime* rt) noexcept {
  return rt->spares_lent.load(std::memory_order_relaxed) > rt->stranded.load(std::memory_order_relaxed);
}

void drop_spare_timers(Runtime* rt, Processor* spare) noexcept { spare->move_timers_to(timer_home(rt)); }

bool return_spare(Runtime* rt, Machine* m) {
  Processor* p = m->p;
  {
    LockGuard l(rt->lock);
    // Decided under the lock, so two spares' Ms do not both go back for
    // one thread that woke up.
    if (rt->spares_lent.load(std::memory_order_relaxed) <= rt->stranded.load(std::memory_order_relaxed)) {
      return false;
    }
    rt->spares_lent.fetch_sub(1, std::memory_order_relaxed);
  }
  // Its goroutines to the global queue, runnext first (it was to run
  // next). We own p; thieves may take some meanwhile, which is fine.
  Goroutine* batch[RunQueue::kCapacity + 1];
  std::size_t n = 0;
  while (n < RunQueue::kCapacity + 1) {
    Goroutine* g = take_own_next(p);
    if (g == nullptr) break;
    batch[n++] = g;
  }
  drop_spare_timers(rt, p);
  Processor* np = nullptr;
  {
    LockGuard l(rt->lock);
    for (std::size_t i = 0; i < n; ++i) global_runq_put_locked(rt, batch[i]);
    m->p = nullptr;
    spare_free_put_locked(rt, p);
    if (!rt->exiting.load(std::memory_order_relaxed)) np = idle_p_get_locked(rt);
  }
  if (np != nullptr) {
    acquire_p(m, np);
    return true;
  }
  // No P: find_runnable goes idle. A spinning M stops spinning first (the
  // idle path counts no spinners).
  if (m->spinning) {
    m->spinning = false;
    if (rt->nmspinning.fetch_sub(1, std::memory_order_seq_cst) - 1 < 0) fatal("goro: negative nmspinning");
  }
  if (n > 0) wake_p();
  return true;
}

void spare_put_locked(Runtime* rt, Processor* p) noexcept {
  // Whoever puts it here owns it (its M let go of it, or sysmon took it
  // from an M inside blocking()), and its queue is empty; should a
  // goroutine still be there, it must not be lost with the spare.
  while (Goroutine* g = take_own_next(p)) global_runq_put_locked(rt, g);
  rt->spares_lent.fetch_sub(1, std::memory_order_relaxed);
  spare_free_put_locked(rt, p);
}

void lend_spare(Runtime* rt) {
  Processor* p = nullptr;
  {
    LockGuard l(rt->lock);
    if (rt->exiting.load(std::memory_order_relaxed) ||
        rt->spares_lent.load(std::memory_order_relaxed) >= rt->stranded.load(std::memory_order_relaxed)) {
      return;
    }
    p = rt->spare_free;
    if (p != nullptr) {
      rt->spare_free = p->idle_link;
      p->idle_link = nullptr;
      rt->spares_lent.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (p == nullptr) {
    // A new one (sysmon is the only caller, hence the only appender).
    if (rt->allp.size() == rt->allp.capacity()) return;
    auto owned = std::make_unique<Processor>(static_cast<int>(rt->allp.size()), /*spare=*/true);
    p = owned.get();
    LockGuard l(rt->lock);
    rt->allp.push_back(std::move(owned));
    rt->spares_lent.fetch_add(1, std::memory_order_relaxed);
  }
  // start_m puts it back (spare_put_locked) if the run is exiting.
  start_m(p, /*spinning=*/false);
}

}  // namespace goro::rt
