// sysmon.cpp: the system monitor, a thread of its own that holds no P (Go's
// sysmon).
//
// Every tick it:
//   1. retakes Ps from Ms stuck in blocking(): a P that has been in the same
//      blocking call for at least one tick (>= 20 us) is handed to another M
//      (handoffp), so the other goroutines keep running. Go's exception
//      applies: a P with an empty run queue is left alone for up to 10 ms
//      when other Ps are idle or spinning (they can take any new work);
//   2. flags goroutines that have run for 10 ms without a scheduling round
//      (the P's schedtick has not moved): they yield at their next runtime
//      call. One still running 10 ms after being flagged made no runtime
//      call at all: a hog, counted in sched_stats(). goro cannot preempt
//      such a loop (no async preemption: a signal could land in the middle
//      of malloc or a lock); see docs/design.md. One whose thread is asleep
//      in the kernel instead blocks its thread outside blocking(): its P is
//      stranded, and the goroutines behind it go to an idle P or a spare P
//      (spare.cpp);
//   3. refreshes the coarse clock used for wait times in dumps;
//   4. prints the schedtrace (GORODEBUG=schedtrace=X);
//   5. scavenges stacks (returns the memory of long-unused free stacks);
//   6. wakes an M if a timer is overdue (a P held by a hog cannot run it);
//   7. polls the network if nobody has for 10 ms (Ps busy with goroutines
//      that never run out of work never poll), as Go's sysmon does.
// Tick: 20 us while things happen, doubling after 1 ms of quiet up to 10 ms
// (Go's values), at most 1 ms while a P is stranded. With every P idle, no
// spare lent, no blocking call and nothing to scavenge, it sleeps until a P
// starts running again: an idle process costs no CPU.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "netpoll.hpp"
#include "goro/detail/print.hpp"
#include "scheduler.hpp"

namespace goro::rt {

void schedtrace(Runtime* rt, bool detailed);  // introspect.cpp

namespace {

constexpr std::int64_t kForcePreemptNs = 10'000'000;  // Go's forcePreemptNS
constexpr std::int64_t kMinDelayNs = 20'000;
constexpr std::int64_t kMaxDelayNs = 10'000'000;
constexpr std::int64_t kScavengePeriodNs = 250'000'000;
constexpr std::int64_t kRunnextDelayNs = 1'000'000;
constexpr std::int64_t kScavengeBatch = 1 << 18;
constexpr std::int64_t kNetpollStaleNs = 10'000'000;  // Go's sysmon: 10 ms
// How often the thread of a P that has not switched since it was flagged is
// looked at again (/proc costs ~10 us a read): often while the P is
// stranded, so a woken thread gets its spare back soon; seldom while it
// computes, to catch a hog that goes on to block.
constexpr std::int64_t kStrandedLookNs = 1'000'000;
constexpr std::int64_t kHogLookNs = 10'000'000;

struct PWatch {
  std::uint32_t schedtick = 0;
  std::int64_t schedwhen = 0;
  std::uint32_t syscalltick = 0;
  std::int64_t syscallwhen = 0;
  Goroutine* flagged = nullptr;  // the goroutine last asked to yield
  std::int64_t flagged_at = 0;
  std::uint64_t flagged_switches = 0;  // the P's switch-ins when it was flagged
  // An episode: the flagged goroutine made no switch for 10 ms after the
  // flag. Its thread was looked at (at looked_at): counted as a hog and/or
  // as a thread block once each.
  bool episode = false;
  bool counted_hog = false;
  bool counted_block = false;
  std::int64_t looked_at = 0;
  Machine* blocked_m = nullptr;  // non-null while the P is stranded: its M, found asleep
  std::uint64_t runnext_puts = 0;  // at the previous tick, with runnext occupied
};

// thread_asleep reports whether m's thread is asleep in the kernel (state
// S or D in /proc/self/task/<tid>/stat): blocked, not computing.
bool thread_asleep(const Machine* m) {
  const int tid = m->tid.load(std::memory_order_relaxed);
  if (tid == 0) return false;
  char path[64];
  *fmt::format_to_n(path, sizeof path - 1, "/proc/self/task/{}/stat", tid).out = '\0';
  std::FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char buf[512];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');  // the command name may contain anything
  return close != nullptr && close[1] == ' ' && (close[2] == 'S' || close[2] == 'D');
}

// report_blocked prints GORODEBUG=blockwarn=1's line for g, which blocks
// m's thread outside blocking() while holding p.
void report_blocked(Runtime* rt, Processor* p, Machine* m, Goroutine* g) {
  const char* file = g->file.load(std::memory_order_relaxed);
  const std::int64_t queued = static_cast<std::int64_t>(p->runq.size()) +
                              (p->runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
  print_stderr("goro: goroutine {} (created at {}:{}) has blocked its thread (M{}) for {} ms outside "
               "goro::blocking(): {} goroutine(s) queued on its P run elsewhere meanwhile; wrap the blocking call "
               "in goro::blocking() (GORODEBUG=blockwarn=1)\n",
               g->id.load(std::memory_order_relaxed), file != nullptr ? file : "?",
               g->line.load(std::memory_order_relaxed), m->id, kForcePreemptNs / 1000000, queued);
  std::fflush(stderr);
  (void)rt;
}

// check_runnext wakes an M when a goroutine has sat in a running P's
// runnext for a whole tick: ready() does not wake anyone for a goroutine it
// puts there (the readier usually parks at once), so if the readier keeps
// running instead, this is what lets another M steal the readied one.
// Returns true if runnext is occupied (sysmon then keeps its ticks short).
bool check_runnext(Processor* p, PWatch& w) {
  if (p->runnext.load(std::memory_order_acquire) == nullptr) {
    w.runnext_puts = 0;
    return false;
  }
  const std::uint64_t puts = p->runnext_puts.get();
  if (puts == w.runnext_puts) {
    wake_p();
  }
  w.runnext_puts = puts;
  return true;
}

// strand marks p stranded: m, holding it, was found asleep in the kernel
// in a goroutine's own code. Ms looking for work now take its queue and
// timers (steal_stranded), and sysmon wakes or lends them a P (spare.cpp).
void strand(Runtime* rt, Processor* p, Machine* m, PWatch& w) {
  w.blocked_m = m;
  m->thread_blocked.store(true, std::memory_order_relaxed);
  // Release, and the count before the flag: an M that sees the flag
  // finds the count > 0 at its next look.
  rt->stranded.store(rt->stranded.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  p->stranded.store(true, std::memory_order_release);
}

// unstrand ends p's stranding (its thread runs again, or its M let go of
// it): a spare lent for it goes back at its M's next scheduling round.
void unstrand(Runtime* rt, Processor* p, PWatch& w) {
  if (w.blocked_m == nullptr) return;
  w.blocked_m->thread_blocked.store(false, std::memory_order_relaxed);
  w.blocked_m = nullptr;
  p->stranded.store(false, std::memory_order_relaxed);
  rt->stranded.store(rt->stranded.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

// look_at_thread classifies p's M, whose goroutine g was asked to yield
// 10 ms ago and made no switch since: computing (a hog) or asleep in the
// kernel (blocking its thread outside blocking(): a contended std::mutex,
// sleep_for, a blocking read). Each is counted once per episode
// (sched_stats().hogs, thread_blocks; a blocked one is also reported with
// GORODEBUG=blockwarn=1); an asleep thread strands p, a running one
// unstrands it. Called every tick of the episode; looks at /proc only
// every kStrandedLookNs while stranded, every kHogLookNs otherwise
// (reading it every tick would cost sysmon a core).
void look_at_thread(Runtime* rt, Processor* p, Machine* m, Goroutine* g, PWatch& w, std::int64_t now) {
  if (w.episode && now - w.looked_at < (w.blocked_m != nullptr ? kStrandedLookNs : kHogLookNs)) return;
  w.episode = true;
  w.looked_at = now;
  if (!thread_asleep(m)) {
    if (!w.counted_hog && !w.counted_block) {
      w.counted_hog = true;
      rt->hogs.add();
    }
    unstrand(rt, p, w);
    return;
  }
  if (!w.counted_block) {
    w.counted_block = true;
    rt->thread_blocks.add();
    if (rt->debug.blockwarn) report_blocked(rt, p, m, g);
  }
  if (w.blocked_m == nullptr) strand(rt, p, m, w);
}

// stranded_work reports whether goroutines wait that only a P other than
// the busy ones can run soon: queued on a stranded P, due on its timers, or
// in the global queue.
bool stranded_work(Runtime* rt, std::int64_t now) {
  if (rt->runq_size.load(std::memory_order_relaxed) > 0) return true;
  for (const auto& p : rt->allp) {
    if (!p->stranded.load(std::memory_order_relaxed)) continue;
    if (!p->runq.empty() || p->runnext.load(std::memory_order_relaxed) != nullptr ||
        p->timer0_when.load(std::memory_order_relaxed) <= now) {
      return true;
    }
  }
  return false;
}

// help_stranded gets the goroutines of stranded Ps run: by an idle P's M
// if there is one (it finds them through steal_stranded), else by an M on
// a spare P.
void help_stranded(Runtime* rt, std::int64_t now) {
  if (!stranded_work(rt, now)) return;
  if (rt->npidle.load(std::memory_order_seq_cst) > 0) {
    wake_p();
  } else {
    lend_spare(rt);
  }
}

int retake(Runtime* rt, std::vector<PWatch>& watch, std::int64_t now, bool* runnext_busy) {
  int n = 0;
  *runnext_busy = false;
  if (watch.size() < rt->allp.size()) {  // lend_spare made a spare
    PWatch fresh;
    fresh.schedwhen = now;
    watch.resize(rt->allp.size(), fresh);
  }
  for (std::size_t i = 0; i < rt->allp.size(); ++i) {
    Processor* p = rt->allp[i].get();
    PWatch& w = watch[i];
    const PStatus s = p->status.load(std::memory_order_acquire);
    // The M of a stranded P let go of it (it parked and went idle, or
    // entered blocking()): the P is no longer stuck behind its thread.
    if (w.blocked_m != nullptr && (s != PStatus::kRunning || p->m.load(std::memory_order_relaxed) != w.blocked_m)) {
      unstrand(rt, p, w);
    }
    if (s == PStatus::kRunning && check_runnext(p, w)) *runnext_busy = true;
    if (s == PStatus::kRunning || s == PStatus::kSyscall) {
      const std::uint32_t t = p->schedtick.load(std::memory_order_relaxed);
      if (w.schedtick != t) {
        w.schedtick = t;
        w.schedwhen = now;
        w.flagged = nullptr;
        w.episode = false;
        unstrand(rt, p, w);
      } else if (s == PStatus::kRunning && w.schedwhen + kForcePreemptNs <= now) {
        // The time slice (which goroutines handed over through runnext
        // share, as in Go) is used up: ask whoever runs now to yield, and
        // keep asking every tick. A goroutine still running 10 ms after
        // being asked, with no switch on its P meanwhile, made no runtime
        // call at all: a hog, or a goroutine asleep in the kernel. (Without
        // the switch count, two goroutines handing the P back and forth
        // through runnext, which keeps the schedtick, could be sampled as
        // one that never stopped.)
        Machine* m = p->m.load(std::memory_order_relaxed);
        Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_acquire) : nullptr;
        if (g != nullptr) {
          if (std::atomic<bool>* flag = m->preempt.load(std::memory_order_acquire)) {
            flag->store(true, std::memory_order_relaxed);
          }
          const std::uint64_t switches = p->switches.get();
          if (g != w.flagged || switches != w.flagged_switches) {
            if (g != w.flagged) rt->preempt_requests.add();
            w.flagged = g;
            w.flagged_at = now;
            w.flagged_switches = switches;
            w.episode = false;
            w.counted_hog = false;
            w.counted_block = false;
            unstrand(rt, p, w);
          } else if (now - w.flagged_at >= kForcePreemptNs) {
            look_at_thread(rt, p, m, g, w, now);
          }
        }
      }
    }
    if (s != PStatus::kSyscall) continue;
    const std::uint32_t t = p->syscalltick.load(std::memory_order_relaxed);
    if (w.syscalltick != t) {
      w.syscalltick = t;
      w.syscallwhen = now;
      continue;
    }
    // In the same blocking call since at least our previous tick.
    if (p->runq.empty() && p->runnext.load(std::memory_order_relaxed) == nullptr &&
        rt->nmspinning.load(std::memory_order_relaxed) + rt->npidle.load(std::memory_order_relaxed) > 0 &&
        w.syscallwhen + kForcePreemptNs > now) {
      continue;
    }
    PStatus expected = PStatus::kSyscall;
    if (p->status.compare_exchange_strong(expected, PStatus::kIdle, std::memory_order_acq_rel)) {
      rt->handoffs.add();
      ++n;
      // A spare that goes back to the spare list must not take timers
      // with it (nobody runs a free spare's); it holds none while lent
      // on to another M either, which is fine.
      if (p->spare) drop_spare_timers(rt, p);
      handoff_p(p);
    }
  }
  if (rt->stranded.load(std::memory_order_relaxed) > 0) help_stranded(rt, now);
  return n;
}

bool any_blocked(Runtime* rt) {
  for (const auto& p : rt->allp) {
    if (p->status.load(std::memory_order_relaxed) == PStatus::kSyscall) return true;
  }
  return false;
}

}  // namespace

void wake_sysmon() noexcept {
  if (g_runtime != nullptr) g_runtime->sysmon_note.wakeup();
}

void handle_sigquit(Runtime* rt) {
  std::fputs("SIGQUIT: quit\n", stderr);
  dump_all_goroutines_to_stderr(nullptr, 1 << 30);
  std::fflush(stderr);
  if (rt->debug.sigquit_exits) _exit(2);  // Go's exit status after the dump
}

void sysmon_main(Runtime* rt) {
  std::vector<PWatch> watch(rt->allp.size());
  std::int64_t delay = kMinDelayNs;
  int idle = 0;
  std::int64_t last_trace = rt->start_ns;
  std::int64_t last_scavenge = rt->start_ns;
  const std::int64_t trace_ns = std::int64_t{rt->debug.schedtrace_ms} * 1'000'000;
  while (!rt->sysmon_stop.load(std::memory_order_acquire)) {
    if (idle == 0) {
      delay = kMinDelayNs;
    } else if (idle > 50) {
      delay = std::min(delay * 2, kMaxDelayNs);
    }
    rt->sysmon_note.clear();
    if (rt->sysmon_stop.load(std::memory_order_acquire)) break;
    rt->sysmon_note.sleep(now_ns() + delay);
    if (g_sigquit_pending.exchange(false, std::memory_order_acq_rel)) handle_sigquit(rt);
    std::int64_t now = now_ns();
    rt->coarse_now.store(now, std::memory_order_relaxed);

    // Nothing runs: sleep until a P starts (acquire_p wakes us), unless there
    // is a schedtrace to print or memory to give back.
    if (trace_ns == 0 && rt->npidle.load(std::memory_order_seq_cst) == rt->procs &&
        rt->spares_lent.load(std::memory_order_seq_cst) == 0 && !any_blocked(rt)) {
      if (rt->stacks.scavenge_pending()) {
        if (now - last_scavenge >= kScavengePeriodNs) {
          rt->stacks.scavenge(INT64_MAX);
          last_scavenge = now;
        }
        delay = kScavengePeriodNs / 4;
        idle = 1;
        continue;
      }
      rt->sysmon_note.clear();
      rt->sysmon_deep_sleep.store(true, std::memory_order_seq_cst);
      if (rt->npidle.load(std::memory_order_seq_cst) == rt->procs &&
          rt->spares_lent.load(std::memory_order_seq_cst) == 0 && !rt->sysmon_stop.load() &&
          !g_sigquit_pending.load(std::memory_order_acquire)) {
        rt->sysmon_note.sleep();
      }
      rt->sysmon_deep_sleep.store(false, std::memory_order_seq_cst);
      now = now_ns();
      rt->coarse_now.store(now, std::memory_order_relaxed);
      idle = 0;
      continue;
    }

    bool runnext_busy = false;
    if (retake(rt, watch, now, &runnext_busy) > 0) {
      idle = 0;
    } else {
      ++idle;
    }
    // A goroutine waiting in runnext is noticed within ~2 ms at worst; so
    // are a stranded P's goroutines and a thread that woke up.
    if (runnext_busy || rt->stranded.load(std::memory_order_relaxed) > 0) delay = std::min(delay, kRunnextDelayNs);
    if (trace_ns > 0 && now - last_trace >= trace_ns) {
      schedtrace(rt, rt->debug.scheddetail);
      last_trace = now;
    }
    if (now - last_scavenge >= kScavengePeriodNs) {
      rt->stacks.scavenge(kScavengeBatch);
      last_scavenge = now;
    }
    const std::int64_t next = next_timer_when();
    if (next != kNoTimer && next + 1'000'000 < now) wake_netpoller(next);
    std::int64_t last = rt->lastpoll.load(std::memory_order_seq_cst);
    if (last != 0 && last + kNetpollStaleNs < now && netpoll_waiters() > 0 &&
        rt->lastpoll.compare_exchange_strong(last, now, std::memory_order_seq_cst)) {
      Goroutine* list[kNetpollMax];
      if (const int n = netpoll(0, list); n > 0) inject_list(nullptr, list, n);
    }
  }
}

}  // namespace goro::rt
