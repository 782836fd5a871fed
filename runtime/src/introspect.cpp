// introspect.cpp: sched_stats(), goroutines(), dumps and schedtrace.
//
// Everything here reads the scheduler racily, as Go's own dump and
// schedtrace do: counters are per P and summed on read, goroutine fields
// are atomics, and the only lock taken is the one guarding the list of
// goroutine records (never held by a hot path).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>

#include "external.hpp"
#include "netpoll.hpp"
#include "scheduler.hpp"

namespace goro::rt {
namespace {

// with_runtime runs f with the active runtime pinned (from an M, or from a
// plain thread through an external reference). Returns false outside run().
template <class F>
bool with_runtime(F&& f) {
  if (current_machine() != nullptr && g_runtime != nullptr) {
    f(g_runtime);
    return true;
  }
  ExternalRef ref;
  if (!ref) return false;
  f(ref.get());
  return true;
}

GoroutineState state_of(GStatus s) noexcept {
  switch (s) {
    case GStatus::kDead: return GoroutineState::dead;
    case GStatus::kRunnable: return GoroutineState::runnable;
    case GStatus::kRunning: return GoroutineState::running;
    case GStatus::kSyscall: return GoroutineState::blocking;
    case GStatus::kWaiting: return GoroutineState::waiting;
  }
  return GoroutineState::idle;
}

GoroutineInfo info_of(Runtime* rt, Goroutine* g, std::int64_t now) {
  GoroutineInfo info;
  info.id = g->id.load(std::memory_order_relaxed);
  info.state = state_of(g->status.load(std::memory_order_acquire));
  if (info.state == GoroutineState::waiting) {
    info.wait_reason = to_string(g->wait_reason.load(std::memory_order_relaxed));
    const std::int64_t since = g->wait_since.load(std::memory_order_relaxed);
    if (since > 0 && now > since) info.waiting_for = std::chrono::nanoseconds(now - since);
  }
  const char* file = g->file.load(std::memory_order_relaxed);
  if (file != nullptr) {
    const std::uint32_t line = g->line.load(std::memory_order_relaxed);
    info.created_at = line == 0 ? std::string(file) : std::string(file) + ":" + std::to_string(line);  // main: "goro::run"
  }
  const char* func = g->function.load(std::memory_order_relaxed);
  if (func != nullptr) info.created_by = func;
  info.parent_id = g->parent_id.load(std::memory_order_relaxed);
  if (const char* name = g->name.load(std::memory_order_relaxed)) info.name = name;
  (void)rt;
  return info;
}

std::vector<GoroutineInfo> collect(Runtime* rt) {
  std::vector<GoroutineInfo> out;
  const std::int64_t now = now_ns();
  rt->records.for_each([&](Goroutine* g) {
    if (g->status.load(std::memory_order_acquire) == GStatus::kDead) return;
    out.push_back(info_of(rt, g, now));
  });
  std::sort(out.begin(), out.end(), [](const GoroutineInfo& a, const GoroutineInfo& b) { return a.id < b.id; });
  return out;
}

// header writes Go's "goroutine 7 [chan receive, 3 minutes]:".
void write_header(std::ostream& out, const GoroutineInfo& g) {
  out << "goroutine " << g.id << " [";
  if (g.state == GoroutineState::waiting && !g.wait_reason.empty()) {
    out << g.wait_reason;
  } else {
    out << to_string(g.state);
  }
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(g.waiting_for).count();
  if (minutes >= 1) out << ", " << minutes << (minutes == 1 ? " minute" : " minutes");
  out << "]:\n";
}

void write_one(std::ostream& out, const GoroutineInfo& g) {
  write_header(out, g);
  if (!g.name.empty()) out << "name: " << g.name << "\n";
  if (g.id == 1) {
    out << "goro::run(main)\n";
  } else if (!g.created_at.empty()) {
    out << "created by " << (g.created_by.empty() ? "?" : g.created_by) << " in goroutine " << g.parent_id
        << "\n\t" << g.created_at << "\n";
  }
}

std::string status_word(const GoroutineInfo& g) {
  if (g.state == GoroutineState::waiting && !g.wait_reason.empty()) return g.wait_reason;
  return to_string(g.state);
}

}  // namespace

std::vector<GoroutineInfo> goroutines_of(Runtime* rt) { return collect(rt); }

void dump_all_goroutines_to_stderr(Goroutine* skip, int max) noexcept {
  try {
    Runtime* rt = g_runtime;
    if (rt == nullptr) return;
    std::vector<GoroutineInfo> all = collect(rt);
    std::ostringstream out;
    int shown = 0;
    const std::uint64_t skip_id = skip != nullptr ? skip->id.load(std::memory_order_relaxed) : 0;
    for (const GoroutineInfo& g : all) {
      if (g.id == skip_id) continue;
      if (shown == max) {
        out << "\n... " << (all.size() - static_cast<std::size_t>(shown) - (skip_id != 0 ? 1 : 0))
            << " more goroutines not shown\n";
        break;
      }
      out << "\n";
      write_one(out, g);
      ++shown;
    }
    const std::string s = out.str();
    std::fwrite(s.data(), 1, s.size(), stderr);
  } catch (...) {
  }
}

void schedtrace(Runtime* rt, bool detailed) {
  const SchedStats s = sched_stats();
  std::ostringstream out;
  // Go 1.19's format (threads counts sysmon, as Go's mcount does).
  out << "SCHED " << (now_ns() - rt->start_ns) / 1000000 << "ms: gomaxprocs=" << s.gomaxprocs
      << " idleprocs=" << s.idle_procs << " threads=" << s.threads + 1 << " spinningthreads=" << s.spinning_threads
      << " idlethreads=" << s.idle_threads << " runqueue=" << s.global_runq;
  if (detailed) {
    out << " gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait="
        << (rt->sysmon_deep_sleep.load(std::memory_order_relaxed) ? 1 : 0) << "\n";
    for (const auto& p : rt->allp) {
      Machine* m = p->m.load(std::memory_order_relaxed);
      out << "  P" << p->id << ": status=" << static_cast<int>(p->status.load(std::memory_order_relaxed))
          << " schedtick=" << p->schedtick.load(std::memory_order_relaxed)
          << " syscalltick=" << p->syscalltick.load(std::memory_order_relaxed) << " m=" << (m ? m->id : -1)
          << " runqsize=" << p->runq.size() << " gfreecnt=" << p->gfree_count.load(std::memory_order_relaxed)
          << " timerslen=" << p->timer_count() << "\n";
    }
    {
      LockGuard l(rt->lock);
      for (const auto& m : rt->allm) {
        if (m->exited.load(std::memory_order_relaxed)) continue;
        Processor* p = nullptr;  // the P whose m is this M (m->p is the owner's)
        for (const auto& q : rt->allp) {
          if (q->m.load(std::memory_order_relaxed) == m.get()) p = q.get();
        }
        Goroutine* g = m->curg.load(std::memory_order_acquire);
        out << "  M" << m->id << ": p=" << (p ? p->id : -1)
            << " curg=" << (g ? static_cast<std::int64_t>(g->id.load(std::memory_order_relaxed)) : -1)
            << " mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=" << (m->spinning.load(std::memory_order_relaxed) ? "true" : "false")
            << " blocked=" << (m->blocked.load(std::memory_order_relaxed) ? "true" : "false") << " lockedg=-1\n";
      }
    }
    for (const GoroutineInfo& g : collect(rt)) {
      int status = 0;
      switch (g.state) {
        case GoroutineState::runnable: status = 1; break;
        case GoroutineState::running: status = 2; break;
        case GoroutineState::blocking: status = 3; break;
        case GoroutineState::waiting: status = 4; break;
        default: status = 6; break;
      }
      out << "  G" << g.id << ": status=" << status << "(" << g.wait_reason << ") m=-1 lockedm=-1\n";
    }
  } else {
    out << " [";
    for (std::size_t i = 0; i < s.local_runq.size(); ++i) out << (i ? " " : "") << s.local_runq[i];
    out << "]\n";
  }
  const std::string text = out.str();
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace goro::rt

namespace goro {

using namespace goro::rt;

SchedStats sched_stats() {
  SchedStats s;
  with_runtime([&](Runtime* rt) {
    s.gomaxprocs = rt->procs;
    s.idle_procs = rt->npidle.load(std::memory_order_relaxed);
    s.threads = rt->mcount.load(std::memory_order_relaxed);
    s.spinning_threads = rt->nmspinning.load(std::memory_order_relaxed);
    {
      LockGuard l(rt->lock);
      s.idle_threads = rt->nmidle;
      s.threads = 0;
      for (const auto& m : rt->allm) {
        if (!m->exited.load(std::memory_order_relaxed)) ++s.threads;
      }
    }
    s.global_runq = rt->runq_size.load(std::memory_order_relaxed);
    s.goroutines = rt->live.load(std::memory_order_relaxed);
    for (const auto& p : rt->allp) {
      s.local_runq.push_back(static_cast<std::int64_t>(p->runq.size()) +
                             (p->runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0));
      s.created += p->created.get();
      s.steals += p->steals.get();
      s.context_switches += p->switches.get();
      s.parks += p->parks.get();
      s.blocking_calls += p->blocking_calls.get();
      s.timers += p->timer_count();
    }
    s.handoffs = rt->handoffs.get();
    s.preempt_requests = rt->preempt_requests.get();
    s.hogs = rt->hogs.get();
    s.stacks_in_use = rt->stacks.slots_carved() - rt->stacks.free_slots();
    s.stack_bytes_reserved = rt->stacks.reserved_bytes();
    s.guarded_stacks = rt->stacks.guarded();
    s.uptime_ms = (now_ns() - rt->start_ns) / 1000000;
    s.poll_descriptors = netpoll_descriptors();
    s.io_waiters = netpoll_waiters();
    s.polls = netpoll_polls() - rt->netpoll_polls_base;
    s.poll_events = netpoll_events() - rt->netpoll_events_base;
  });
  return s;
}

void dump_goroutine(std::ostream& out, const GoroutineInfo& g) { write_one(out, g); }

std::vector<GoroutineInfo> goroutines() {
  std::vector<GoroutineInfo> out;
  with_runtime([&](Runtime* rt) { out = collect(rt); });
  return out;
}

void dump_goroutines(std::ostream& out, bool grouped) {
  const std::vector<GoroutineInfo> all = goroutines();
  if (!grouped) {
    bool first = true;
    for (const GoroutineInfo& g : all) {
      if (!first) out << "\n";
      first = false;
      write_one(out, g);
    }
    return;
  }
  // pprof debug=1 style: one line per (state or wait reason, creation site).
  std::map<std::tuple<std::string, std::string>, std::int64_t> groups;
  for (const GoroutineInfo& g : all) ++groups[{status_word(g), g.id == 1 ? "goro::run(main)" : g.created_at}];
  std::vector<std::pair<std::int64_t, std::tuple<std::string, std::string>>> sorted;
  for (const auto& [key, n] : groups) sorted.emplace_back(n, key);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  out << "goroutine profile: total " << all.size() << "\n";
  for (const auto& [n, key] : sorted) {
    out << n << " @ " << std::get<0>(key) << ", created at " << std::get<1>(key) << "\n";
  }
}

}  // namespace goro
