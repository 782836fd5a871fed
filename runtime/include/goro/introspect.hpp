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
  // Spare Ps: stand-ins that run the goroutines queued behind a thread
  // blocked outside blocking() (see thread_blocks). Not counted in
  // gomaxprocs or idle_procs; while spares are lent, at least as many Ps
  // are held by threads asleep in the kernel.
  int spare_procs = 0;                   // spare Ps lent to an M now
  std::int64_t spare_runq = 0;           // goroutines queued on them
  std::int64_t goroutines = 0;           // == num_goroutine()
  std::uint64_t created = 0;             // goroutines created since run() began
  std::uint64_t steals = 0;              // successful steals from another P
  std::uint64_t context_switches = 0;    // goroutine switch-ins
  std::uint64_t parks = 0;               // park() calls by goroutines
  std::uint64_t handoffs = 0;            // Ps taken from an M stuck in blocking()
  std::uint64_t preempt_requests = 0;    // goroutines flagged by sysmon after 10 ms
  std::uint64_t hogs = 0;                // flagged goroutines that kept running with no runtime call
  std::uint64_t thread_blocks = 0;       // goroutines found blocking their OS thread outside blocking()
                                         // (asleep in the kernel for 10 ms: a std::mutex, a sleep, a read)
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

// Frame is one call frame of a goroutine's stack, innermost first. An
// inlined call is a frame of its own, as in Go's tracebacks.
struct Frame {
  std::string function;     // demangled: "Server::drain(goro::Chan<Job>&)"; closures as Go names them,
                            // "main::{lambda#1}"; "?" when the binary has no symbol for it
  std::string file;         // source file ("" when the binary has no debug information)
  int line = 0;             // the line of the call (0 when unknown)
  std::uintptr_t pc = 0;    // the return address (or resume address) in this process
};

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
  // stack is where the goroutine stands: for a parked, runnable or
  // blocking() goroutine its call stack at that point, innermost first,
  // goro's own frames left out (GOROTRACEBACK=system keeps them). Empty
  // for a goroutine running on another thread at that instant, or one that
  // has never run. At most 100 physical frames (stack_elided: more followed).
  std::vector<Frame> stack;
  bool stack_elided = false;
  // submitted_at is, for a worker-pool goroutine running a job, where that
  // job was submitted ("file.cpp:42"), and submitted_by the function
  // that submitted it; empty otherwise.
  std::string submitted_at;
  std::string submitted_by;
};

// goroutines lists the live goroutines (a racy snapshot, as Go's is), with
// their stacks. Walking the stacks holds each goroutine still for a moment
// (it never stops the world); a process with a million goroutines takes
// seconds.
std::vector<GoroutineInfo> goroutines();
// goroutines(false) skips the stacks: the cheap listing for code that needs
// ids and states only (a leak check's snapshot). goroutines(true) is goroutines().
std::vector<GoroutineInfo> goroutines(bool with_stacks);

// dump_goroutines writes a Go-style dump: for each goroutine its header
// ("goroutine 7 [chan receive, 2 minutes]:"), its stack (a function line,
// then a tab-indented "file:line +0x4c") and "created by F in goroutine N".
// grouped = true prints one entry per wait reason (or state) and identical
// stack, with a count, like pprof's debug=1: "100000 @ chan receive".
void dump_goroutines(std::ostream& out, bool grouped = false);

// write_goroutine_profile writes the goroutine profile in pprof's format
// (profile.proto, gzipped), as Go's /debug/pprof/goroutine does: one
// sample per distinct stack with the number of goroutines standing there,
// labelled with their wait reason; `go tool pprof` reads it.
void write_goroutine_profile(std::ostream& out);

// dump_goroutine writes one goroutine as dump_goroutines does (for reports
// that list a selection, such as goro::testing::LeakCheck's).
void dump_goroutine(std::ostream& out, const GoroutineInfo& g);

}  // namespace goro
