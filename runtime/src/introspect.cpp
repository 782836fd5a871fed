// introspect.cpp: sched_stats(), goroutines(), dumps and schedtrace.
//
// Everything here reads the scheduler racily, as Go's own dump and
// schedtrace do: counters are per P and summed on read, goroutine fields
// are atomics, and the only lock taken is the one guarding the list of
// goroutine records (never held by a hot path).
#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "external.hpp"
#include "goro/detail/debug.hpp"
#include "netpoll.hpp"
#include "scheduler.hpp"
#include "traceback.hpp"

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

// RecordCopy is what a listing reads from a record while it holds the
// record lock (for_each_goroutine): plain words, no allocation, so a
// goroutine starting meanwhile (its first run takes the lock during a
// listing) waits a few loads a record, not the strings built from them.
// The strings are literals or the user's long-lived names, so they are
// read after the lock as safely as under it.
struct RecordCopy {
  std::uint64_t id = 0;
  GStatus status = GStatus::kDead;
  WaitReason wait_reason = WaitReason::none;
  std::int64_t wait_since = 0;
  const char* file = nullptr;
  std::uint32_t line = 0;
  const char* function = nullptr;
  std::uint64_t parent_id = 0;
  const char* name = nullptr;
  const char* job_file = nullptr;
  std::uint32_t job_line = 0;
  const char* job_function = nullptr;
};

RecordCopy copy_of(const Goroutine* g) noexcept {
  RecordCopy r;
  r.id = g->id.load(std::memory_order_relaxed);
  r.status = g->status.load(std::memory_order_acquire);
  r.wait_reason = g->wait_reason.load(std::memory_order_relaxed);
  r.wait_since = g->wait_since.load(std::memory_order_relaxed);
  r.file = g->file.load(std::memory_order_relaxed);
  r.line = g->line.load(std::memory_order_relaxed);
  r.function = g->function.load(std::memory_order_relaxed);
  r.parent_id = g->parent_id.load(std::memory_order_relaxed);
  r.name = g->name.load(std::memory_order_relaxed);
  // The job's file first (acquire): the writer stores it last.
  r.job_file = g->job_file.load(std::memory_order_acquire);
  if (r.job_file != nullptr) {
    r.job_line = g->job_line.load(std::memory_order_relaxed);
    r.job_function = g->job_function.load(std::memory_order_relaxed);
  }
  return r;
}

GoroutineInfo info_of(const RecordCopy& r, std::int64_t now) {
  GoroutineInfo info;
  info.id = r.id;
  info.state = state_of(r.status);
  if (info.state == GoroutineState::waiting) {
    info.wait_reason = to_string(r.wait_reason);
    if (r.wait_since > 0 && now > r.wait_since) info.waiting_for = std::chrono::nanoseconds(now - r.wait_since);
  }
  if (r.file != nullptr) {
    info.created_at = r.line == 0 ? std::string(r.file) : fmt::format("{}:{}", r.file, r.line);  // main: "goro::run"
  }
  if (r.function != nullptr) info.created_by = r.function;
  info.parent_id = r.parent_id;
  if (r.name != nullptr) info.name = r.name;
  if (r.job_file != nullptr) {
    info.submitted_at = fmt::format("{}:{}", r.job_file, r.job_line);
    if (r.job_function != nullptr) info.submitted_by = r.job_function;
  }
  return info;
}

// name_creator names the function that created g as the go() call's
// return address says: with debug information this is the caller's real
// name (closures named as Go names them); the source location's function
// name stays as the fallback.
// CreatorPcs are the addresses name_creator symbolizes, read when the
// goroutine is listed (its record may hold another goroutine by the time
// the names are looked up).
struct CreatorPcs {
  std::uintptr_t spawn = 0;
  std::uintptr_t job = 0;
};

CreatorPcs creator_pcs(const Goroutine* g) noexcept {
  return {g->spawn_pc.load(std::memory_order_relaxed), g->job_pc.load(std::memory_order_relaxed)};
}

void name_creator(GoroutineInfo& info, CreatorPcs pcs) {
  Frame creator;
  if (info.id != 1 && caller_frame(pcs.spawn, &creator, nullptr)) info.created_by = creator.function;
  if (!info.submitted_at.empty() && caller_frame(pcs.job, &creator, nullptr)) info.submitted_by = creator.function;
}

// add_stack fills in what the stack walk found, and the creator's name.
// False if the goroutine is gone.
bool add_stack(GoroutineInfo& info, CreatorPcs pcs, const GoroutineStack& walked) {
  if (walked.view == StackView::kGone) {
    // Listed from its spawn record, it has started since (and moved into
    // its stack's record: goroutine.cpp, "Moving a record"): it stays as
    // listed, runnable and never run, as it was when the list was taken.
    if (!walked.spawn) return false;
    name_creator(info, pcs);
    return true;
  }
  // The state that goes with the stack, not the one read before the walk.
  info.state = state_of(walked.status);
  info.wait_reason = info.state == GoroutineState::waiting ? to_string(walked.reason) : "";
  if (info.state != GoroutineState::waiting) info.waiting_for = std::chrono::nanoseconds(0);
  switch (walked.view) {
    case StackView::kGone:
      return false;
    case StackView::kWalked:
    case StackView::kSelf:
      info.stack = symbolize(walked.trace);
      info.stack_elided = walked.trace.elided;
      break;
    case StackView::kRunning:
    case StackView::kNeverRan:
      break;
  }
  name_creator(info, pcs);
  return true;
}

std::vector<GoroutineInfo> collect(Runtime* rt, bool with_stacks) {
  std::vector<RecordCopy> copies;
  std::vector<GoroutineStack> walk;
  std::vector<CreatorPcs> pcs;
  const std::int64_t now = now_ns();
  // Room for everyone, so the listing rarely grows a vector under the
  // record lock.
  const auto expected = static_cast<std::size_t>(std::max<std::int64_t>(0, rt->live.load(std::memory_order_relaxed))) + 64;
  copies.reserve(expected);
  walk.reserve(expected);
  pcs.reserve(expected);
  // Each live goroutine once, even one that starts meanwhile (and so
  // moves from its spawn record into its stack's).
  for_each_goroutine(rt, [&](Goroutine* g, bool started) {
    const RecordCopy r = copy_of(g);
    if (r.status == GStatus::kDead) return;
    copies.push_back(r);
    GoroutineStack e;
    e.g = g;
    e.id = r.id;
    e.spawn = !started;
    walk.push_back(std::move(e));
    pcs.push_back(creator_pcs(g));
  });
  std::vector<GoroutineInfo> out;
  out.reserve(copies.size());
  for (const RecordCopy& r : copies) out.push_back(info_of(r, now));
  if (!with_stacks) {
    std::sort(out.begin(), out.end(), [](const GoroutineInfo& a, const GoroutineInfo& b) { return a.id < b.id; });
    return out;
  }
  // Outside the record lock: walking takes a while and must not hold up go().
  tracebacks_of(walk);
  std::vector<GoroutineInfo> live;
  live.reserve(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (add_stack(out[i], pcs[i], walk[i])) live.push_back(std::move(out[i]));
  }
  std::sort(live.begin(), live.end(), [](const GoroutineInfo& a, const GoroutineInfo& b) { return a.id < b.id; });
  return live;
}

// Text is where dumps are formatted: a buffer written out in one piece
// (to stderr, or to the caller's ostream), 500 bytes of it on the stack.
using Text = fmt::memory_buffer;

// header writes Go's "goroutine 7 [chan receive, 3 minutes]:".
void write_header(Text& out, const GoroutineInfo& g) {
  const std::string_view what = g.state == GoroutineState::waiting && !g.wait_reason.empty()
                                    ? std::string_view(g.wait_reason)
                                    : std::string_view(to_string(g.state));
  const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(g.waiting_for).count();
  if (minutes >= 1) {
    fmt::format_to(std::back_inserter(out), "goroutine {} [{}, {} {}]:\n", g.id, what, minutes,
                   minutes == 1 ? "minute" : "minutes");
  } else {
    fmt::format_to(std::back_inserter(out), "goroutine {} [{}]:\n", g.id, what);
  }
}

// write_frames writes a stack as Go does: the function, then a tab, the
// file:line of the call and, for the function the address belongs to
// (not an inlined one), its offset from the function's entry.
void write_frames(Text& out, const std::vector<Frame>& stack, bool elided) {
  const std::vector<std::uintptr_t> offsets = function_offsets(stack);
  for (std::size_t i = 0; i < stack.size(); ++i) {
    const Frame& f = stack[i];
    if (f.file.empty()) {
      fmt::format_to(std::back_inserter(out), "{}\n\t?:0", f.function);
    } else {
      fmt::format_to(std::back_inserter(out), "{}\n\t{}:{}", f.function, f.file, f.line);
    }
    if (offsets[i] != 0) fmt::format_to(std::back_inserter(out), " +0x{:x}", offsets[i]);
    out.push_back('\n');
  }
  if (elided) out.append(std::string_view("...additional frames elided...\n"));
}

void write_one(Text& out, const GoroutineInfo& g) {
  write_header(out, g);
  if (!g.name.empty()) fmt::format_to(std::back_inserter(out), "name: {}\n", g.name);
  if (g.stack.empty() && g.state == GoroutineState::running) {
    out.append(std::string_view("\tgoroutine running on other thread; stack unavailable\n"));
  }
  write_frames(out, g.stack, g.stack_elided);
  if (!g.submitted_at.empty()) {
    fmt::format_to(std::back_inserter(out), "job submitted by {}\n\t{}\n",
                   g.submitted_by.empty() ? "?" : g.submitted_by, g.submitted_at);
  }
  if (g.id == 1) {
    if (g.stack.empty()) out.append(std::string_view("goro::run(main)\n"));
  } else if (!g.created_at.empty()) {
    fmt::format_to(std::back_inserter(out), "created by {} in goroutine {}\n\t{}\n",
                   g.created_by.empty() ? "?" : g.created_by, g.parent_id, g.created_at);
  }
}

// write_to copies what was formatted to a caller's stream.
void write_to(std::ostream& out, const Text& text) {
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

// kDumpChunk: dumps and profiles hand their text to the stream in pieces
// of about this size, so a million goroutines' dump is not held twice.
constexpr std::size_t kDumpChunk = 64 * 1024;

// write_if_full hands `text` to the stream once it holds a chunk.
void write_if_full(std::ostream& out, Text& text) {
  if (text.size() < kDumpChunk) return;
  write_to(out, text);
  text.clear();
}

std::string status_word(const GoroutineInfo& g) {
  if (g.state == GoroutineState::waiting && !g.wait_reason.empty()) return g.wait_reason;
  return to_string(g.state);
}

}  // namespace

std::vector<StackGroup> group_goroutines(const std::vector<GoroutineInfo>& all) {
  using Key = std::tuple<std::string, std::string, std::vector<std::tuple<std::string, std::string, int>>>;
  std::map<Key, std::size_t> index;
  std::vector<StackGroup> groups;
  for (const GoroutineInfo& g : all) {
    Key key{status_word(g), g.id == 1 ? "goro::run(main)" : g.created_at, {}};
    for (const Frame& f : g.stack) std::get<2>(key).emplace_back(f.function, f.file, f.line);
    auto [it, fresh] = index.emplace(std::move(key), groups.size());
    if (fresh) {
      StackGroup group;
      group.what = std::get<0>(it->first);
      group.created_at = std::get<1>(it->first);
      group.stack = g.stack;
      group.elided = g.stack_elided;
      groups.push_back(std::move(group));
    }
    StackGroup& group = groups[it->second];
    ++group.count;
    group.ids.push_back(g.id);
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const StackGroup& a, const StackGroup& b) { return a.count > b.count; });
  return groups;
}

namespace {

}  // namespace

std::vector<GoroutineInfo> goroutines_of(Runtime* rt) { return collect(rt, true); }

GoroutineInfo goroutine_info(Goroutine* g) {
  GoroutineInfo info = info_of(copy_of(g), now_ns());
  name_creator(info, creator_pcs(g));
  return info;
}

void dump_all_goroutines_to_stderr(Goroutine* skip, int max) noexcept {
  try {
    Runtime* rt = g_runtime;
    if (rt == nullptr) return;
    std::vector<GoroutineInfo> all = collect(rt, true);
    Text out;
    int shown = 0;
    const std::uint64_t skip_id = skip != nullptr ? skip->id.load(std::memory_order_relaxed) : 0;
    for (const GoroutineInfo& g : all) {
      if (g.id == skip_id) continue;
      if (shown == max) {
        fmt::format_to(std::back_inserter(out), "\n... {} more goroutines not shown\n",
                       all.size() - static_cast<std::size_t>(shown) - (skip_id != 0 ? 1 : 0));
        break;
      }
      out.push_back('\n');
      write_one(out, g);
      ++shown;
    }
    std::fwrite(out.data(), 1, out.size(), stderr);
  } catch (...) {
  }
}

void schedtrace(Runtime* rt, bool detailed) {
  const SchedStats s = sched_stats();
  Text out;
  const auto to = std::back_inserter(out);
  // Go 1.19's format (threads counts sysmon, as Go's mcount does).
  fmt::format_to(to, "SCHED {}ms: gomaxprocs={} idleprocs={} threads={} spinningthreads={} idlethreads={} runqueue={}",
                 (now_ns() - rt->start_ns) / 1000000, s.gomaxprocs, s.idle_procs, s.threads + 1, s.spinning_threads,
                 s.idle_threads, s.global_runq);
  // Spare Ps (stand-ins for Ps whose thread is blocked outside blocking()):
  // shown only while one is lent, with the queue lengths of those lent.
  std::vector<std::uint32_t> spare_queues;
  if (s.spare_procs > 0) {
    for (const auto& p : rt->allp) {
      if (!p->spare || p->status.load(std::memory_order_relaxed) == PStatus::kIdle) continue;
      spare_queues.push_back(p->runq.size() + (p->runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0));
    }
  }
  const auto write_spares = [&] {
    if (s.spare_procs > 0) fmt::format_to(to, " spareprocs={} [{}]", s.spare_procs, fmt::join(spare_queues, " "));
  };
  if (detailed) {
    write_spares();
    fmt::format_to(to, " gcwaiting=0 nmidlelocked=0 stopwait=0 sysmonwait={}\n",
                   rt->sysmon_deep_sleep.load(std::memory_order_relaxed) ? 1 : 0);
    for (const auto& p : rt->allp) {
      Machine* m = p->m.load(std::memory_order_relaxed);
      fmt::format_to(to, "  P{}: status={} schedtick={} syscalltick={} m={} runqsize={} gfreecnt={} timerslen={}{}{}\n",
                     p->id, static_cast<int>(p->status.load(std::memory_order_relaxed)),
                     p->schedtick.load(std::memory_order_relaxed), p->syscalltick.load(std::memory_order_relaxed),
                     m ? m->id : -1, p->runq.size(), p->gfree_count.load(std::memory_order_relaxed),
                     p->timer_count(), p->spare ? " spare=true" : "",
                     p->stranded.load(std::memory_order_relaxed) ? " stranded=true" : "");
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
        fmt::format_to(to,
                       "  M{}: p={} curg={} mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning={} "
                       "blocked={} lockedg=-1\n",
                       m->id, p ? p->id : -1, g ? static_cast<std::int64_t>(g->id.load(std::memory_order_relaxed)) : -1,
                       m->spinning.load(std::memory_order_relaxed),
                       m->blocked.load(std::memory_order_relaxed) || m->thread_blocked.load(std::memory_order_relaxed));
      }
    }
    for (const GoroutineInfo& g : collect(rt, false)) {
      int status = 0;
      switch (g.state) {
        case GoroutineState::runnable: status = 1; break;
        case GoroutineState::running: status = 2; break;
        case GoroutineState::blocking: status = 3; break;
        case GoroutineState::waiting: status = 4; break;
        default: status = 6; break;
      }
      fmt::format_to(to, "  G{}: status={}({}) m=-1 lockedm=-1\n", g.id, status, g.wait_reason);
    }
  } else {
    fmt::format_to(to, " [{}]", fmt::join(s.local_runq, " "));
    write_spares();
    fmt::format_to(to, "\n");
  }
  std::fwrite(out.data(), 1, out.size(), stderr);
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
    s.spare_procs = rt->spares_lent.load(std::memory_order_relaxed);
    for (const auto& p : rt->allp) {
      const auto queued = static_cast<std::int64_t>(p->runq.size()) +
                          (p->runnext.load(std::memory_order_relaxed) != nullptr ? 1 : 0);
      if (p->spare) {
        s.spare_runq += queued;
      } else {
        s.local_runq.push_back(queued);
      }
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
    s.thread_blocks = rt->thread_blocks.get();
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

void dump_goroutine(std::ostream& out, const GoroutineInfo& g) {
  Text text;
  write_one(text, g);
  write_to(out, text);
}

namespace detail {

std::atomic<bool> g_lockorder{false};

std::vector<Frame> current_stack() {
  const char* lo = nullptr;
  const char* hi = nullptr;
  Machine* m = current_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (g != nullptr) {
    lo = g->stack.lo;
    hi = g->stack.hi;
  } else {
    // A plain thread (or g0): its own stack's bounds.
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) return {};
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    lo = static_cast<const char*>(addr);
    hi = lo + size;
  }
  return symbolize(traceback_here(lo, hi));
}

void write_stack(std::ostream& out, const std::vector<Frame>& stack) {
  Text text;
  write_frames(text, stack, false);
  write_to(out, text);
}

}  // namespace detail

std::vector<GoroutineInfo> goroutines() {
  std::vector<GoroutineInfo> out;
  with_runtime([&](Runtime* rt) { out = collect(rt, true); });
  return out;
}

std::vector<GoroutineInfo> goroutines(bool with_stacks) {
  std::vector<GoroutineInfo> out;
  with_runtime([&](Runtime* rt) { out = collect(rt, with_stacks); });
  return out;
}

void dump_goroutines(std::ostream& out, bool grouped) {
  const std::vector<GoroutineInfo> all = goroutines();
  Text text;
  if (!grouped) {
    bool first = true;
    for (const GoroutineInfo& g : all) {
      if (!first) text.push_back('\n');
      first = false;
      write_one(text, g);
      write_if_full(out, text);
    }
    write_to(out, text);
    return;
  }
  // pprof debug=1 style: one entry per wait reason (or state), creation
  // site and stack, biggest first.
  const auto to = std::back_inserter(text);
  fmt::format_to(to, "goroutine profile: total {}\n", all.size());
  for (const StackGroup& group : group_goroutines(all)) {
    fmt::format_to(to, "{} @ {}, created at {}\n", group.count, group.what, group.created_at);
    for (const Frame& f : group.stack) {
      fmt::format_to(to, "{}\n\t{}:{}\n", f.function, f.file.empty() ? "?" : f.file, f.line);
    }
    if (group.elided) text.append(std::string_view("...additional frames elided...\n"));
    text.push_back('\n');
    write_if_full(out, text);
  }
  write_to(out, text);
}

}  // namespace goro
