// Introspection: what the scheduler is doing and what every goroutine waits
// for. The C++ side of runtime.NumGoroutine, GODEBUG=schedtrace and the
// goroutine dump.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace goro {

// SchedStats is a snapshot of the scheduler. Counters are kept per P and
// summed on read, so reading is O(gomaxprocs) and the hot paths share no
// cache line; the snapshot is therefore not atomic across Ps.
struct SchedStats {
  int gomaxprocs = 0;
  int idle_procs = 0;
  int threads = 0;           // Ms (OS threads running the scheduler), sysmon excluded
  int spinning_threads = 0;  // Ms looking for work
  int idle_threads = 0;      // Ms asleep with no P
  std::int64_t global_runq = 0;
  std::vector<std::int64_t> local_runq;  // one length per P (runnext included)
  std::int64_t goroutines = 0;           // == num_goroutine()
  std::uint64_t created = 0;             // goroutines created since run() began
  std::uint64_t steals = 0;              // successful steals from another P
  std::uint64_t context_switches = 0;    // goroutine switch-ins
  std::uint64_t parks = 0;               // park() calls by goroutines
  std::uint64_t handoffs = 0;            // Ps taken from an M stuck in blocking()
  std::uint64_t preempt_requests = 0;    // goroutines flagged by sysmon after 10 ms
  std::uint64_t hogs = 0;                // flagged goroutines that kept running with no runtime call
  std::uint64_t blocking_calls = 0;      // blocking() calls from goroutines
  std::int64_t timers = 0;               // pending runtime timers
  std::int64_t stacks_in_use = 0;        // goroutine stacks held (live or cached)
  std::int64_t stack_bytes_reserved = 0; // address space reserved for stacks
  std::int64_t guarded_stacks = 0;       // stacks with a guard page (the rest use a canary)
  std::int64_t uptime_ms = 0;            // since run() began
  // The network poller (goro::net, wait_readable):
  std::int64_t poll_descriptors = 0;     // descriptors registered with it now (the whole process)
  std::int64_t io_waiters = 0;           // goroutines parked in "IO wait"
  std::uint64_t polls = 0;               // epoll_wait calls since run() began
  std::uint64_t poll_events = 0;         // readiness events they returned
};

// sched_stats returns a snapshot; all zero outside run().
SchedStats sched_stats();

enum class GoroutineState : std::uint8_t { idle, runnable, running, waiting, blocking, dead };

// to_string: "runnable", "running", "waiting", "syscall" (a goroutine inside
// blocking(), in Go's word), ...
const char* to_string(GoroutineState state) noexcept;

// GoroutineInfo describes one live goroutine.
struct GoroutineInfo {
  std::uint64_t id = 0;
  GoroutineState state = GoroutineState::idle;
  std::string wait_reason;  // Go's words: "chan receive", "sleep", ...; empty unless waiting
  std::chrono::nanoseconds waiting_for{0};
  std::string created_at;   // "file.cpp:42" of the go() call
  std::string created_by;   // the function that called go()
  std::uint64_t parent_id = 0;
  std::string name;
};

// goroutines lists the live goroutines (a racy snapshot, as Go's is).
std::vector<GoroutineInfo> goroutines();

// dump_goroutines writes a Go-style dump ("goroutine 7 [chan receive, 2 minutes]:").
// grouped = true prints one entry per (state, wait reason, creation site)
// with a count, like pprof's debug=1.
void dump_goroutines(std::ostream& out, bool grouped = false);

// dump_goroutine writes one goroutine as dump_goroutines does (for reports
// that list a selection, such as goro::testing::LeakCheck's).
void dump_goroutine(std::ostream& out, const GoroutineInfo& g);

}  // namespace goro
