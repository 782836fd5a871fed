// scheduler.hpp: the process-wide scheduler state of one run() (Go's
// schedt) and the functions the runtime's files share. See scheduler.cpp for
// the design essay.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "global_queue.hpp"
#include "goroutine.hpp"
#include "lock.hpp"
#include "machine.hpp"
#include "processor.hpp"
#include "stack_pool.hpp"

namespace goro::rt {

struct DebugSettings {
  int schedtrace_ms = 0;        // GORODEBUG=schedtrace=N
  bool scheddetail = false;     // GORODEBUG=scheddetail=1
  bool deadlock_check = true;   // GORODEBUG=deadlock=0 turns the detector off
  bool sigquit_exits = true;    // GORODEBUG=sigquit=dump: dump and keep running
  bool introspect = true;       // GORODEBUG=introspect=0: no socket for `goro stat`
  bool lockorder = false;       // GORODEBUG=lockorder=1: report lock-order inversions
  bool migrate = false;         // GORODEBUG=migrate=1: a goroutine resumes on another M than it left
  bool blockwarn = false;       // GORODEBUG=blockwarn=1: say when a goroutine blocks its thread
};

struct Runtime {
  Runtime(int procs, std::size_t stack_size);
  ~Runtime();

  const int procs;
  // allp: the procs real Ps, then the spares created so far (spare.cpp).
  // Loops over every P (timers, statistics, sysmon, teardown) see both;
  // the idle list, stealing and gomaxprocs know only the real ones.
  ProcessorTable allp;
  std::vector<std::int32_t> steal_strides;  // numbers coprime with procs (random steal order)
  StackPool stacks;
  RecordPool records;

  // lock is the scheduler lock (Go's sched.lock). It guards the idle M and
  // idle P lists, the global run queue and the M list.
  Lock lock;
  Machine* midle GORO_GUARDED_BY(lock) = nullptr;  // idle Ms
  int nmidle GORO_GUARDED_BY(lock) = 0;
  std::vector<std::unique_ptr<Machine>> allm GORO_GUARDED_BY(lock);
  std::atomic<int> mcount{0};
  Processor* pidle GORO_GUARDED_BY(lock) = nullptr;  // idle Ps
  // npidle and nmspinning are changed under lock (npidle) or atomically
  // (nmspinning) and read lock-free by wake_p().
  std::atomic<int> npidle{0};
  std::atomic<int> nmspinning{0};
  GlobalQueue runq GORO_GUARDED_BY(lock);  // global run queue
  std::atomic<std::int64_t> runq_size{0};  // its size: written under lock, read lock-free
  // Spare Ps (spare.cpp): the free ones, linked through idle_link, and how
  // many are lent out (held by an M, or reserved for one). spares_lent is
  // changed under lock and read lock-free, as npidle is.
  Processor* spare_free GORO_GUARDED_BY(lock) = nullptr;
  std::atomic<int> spares_lent{0};

  // Goroutine ids: main is 1; Ps take batches of kGoidBatch from goid_gen.
  std::atomic<std::uint64_t> goid_gen{2};

  // live is num_goroutine(): one counter, on its own cache line, so the
  // value is exact at all times (spawn adds, exit subtracts).
  alignas(64) std::atomic<std::int64_t> live{0};
  alignas(64) std::atomic<bool> exiting{false};
  bool tearing_down = false;  // teardown thread only

  // The network poller (netpoll.cpp). lastpoll is when an M last returned
  // from a blocking poll, or 0 while one is blocked in it (Go's
  // sched.lastpoll): one M at a time polls blocking, and that M is also the
  // one that sleeps until the earliest timer. poll_until is the time that
  // M will wake by itself (0: never, or not polling), so that arming an
  // earlier timer knows to break its poll.
  std::atomic<std::int64_t> lastpoll{0};
  std::atomic<std::int64_t> poll_until{0};
  std::uint64_t netpoll_run = 0;          // this run's tag for the descriptors it opens
  std::uint64_t netpoll_polls_base = 0;   // the poller's counters when the run began
  std::uint64_t netpoll_events_base = 0;

  // sysmon
  std::thread sysmon_thread;
  Note sysmon_note;
  std::atomic<bool> sysmon_stop{false};
  std::atomic<bool> sysmon_deep_sleep{false};
  StatCounter handoffs;          // written by sysmon only
  StatCounter preempt_requests;  // likewise
  StatCounter hogs;              // likewise
  StatCounter thread_blocks;     // likewise: goroutines found blocking their thread outside blocking()
  // coarse_now is a clock sysmon refreshes every tick (<= 10 ms stale while
  // any P runs): cheap timestamps for wait_since.
  std::atomic<std::int64_t> coarse_now{0};

  std::int64_t start_ns = 0;
  // debug is read on the switch path (migrate) and written only at start:
  // a cache line of its own, away from counters that change all the time
  // (sharing one with p_acquires cost spawn_join 1.6x).
  alignas(64) DebugSettings debug;
  // listing counts the listings of all goroutines under way (dumps,
  // goroutines()): bind_stack reads it on every goroutine's first run, and
  // while it is not zero moves the goroutine under the record lock
  // (goroutine.cpp, "Moving a record"). Written only by listings: it may
  // share debug's line.
  std::atomic<int> listing{0};
  // Threads of the runtime's own besides its Ms (sysmon, the introspection
  // server): what the deadlock check does not count as foreign.
  alignas(64) std::atomic<int> runtime_threads{0};
  // p_acquires counts acquire_p() calls: nothing runs after every P went
  // idle without one, so the deadlock check compares it across its scan.
  std::atomic<std::uint64_t> p_acquires{0};
  // stranded counts the Ps whose flag of that name is set (spare.cpp).
  // Written by sysmon only, read lock-free by Ms looking for work: zero
  // nearly always, so a line of its own that stays shared in every cache.
  alignas(64) std::atomic<int> stranded{0};
};

// The active runtime (null outside run()). Set before any M starts and
// cleared after all have stopped, so code on an M may read it plainly.
extern Runtime* g_runtime;

inline constexpr int kGFreeBatch = 32;  // moved to/from the global cache at once
inline constexpr std::uint64_t kGoidBatch = 16;  // Go's _GoidCacheBatch
// One switch in kDirectStreak goes through g0 even when the next goroutine
// is at hand (61, like the global queue's fairness tick: a prime that does
// not resonate with program periods). Bounds how long timers and the global
// queue wait behind goroutines handing the P back and forth: ~60 switches,
// a few microseconds.
inline constexpr int kDirectStreak = 61;
// A global queue this long after a local queue overflowed into it makes the
// goroutine that overflowed it yield (runq_put_slow).
inline constexpr std::size_t kFloodedGlobalQueue = 1024;
// At most this many spare Ps per run (spare.cpp): past it, a thread blocked
// outside blocking() gets no stand-in and its queue waits, as before spares.
inline constexpr int kMaxSpareProcs = 256;

// --- scheduler.cpp -------------------------------------------------------
void schedule_loop(Machine* m);
void execute(Machine* m, Goroutine* g, bool inherit_time);
// take_direct_next returns the goroutine g may switch to directly, already
// made m's current goroutine, or null (then g goes through g0).
Goroutine* take_direct_next(Machine* m, Goroutine* g) noexcept;
// runq_put queues g on p (owner only): in runnext if next, else at the
// tail. Returns true if the local queue grew (a displaced runnext, or a
// plain put): the caller may want to wake an M to share the work.
bool runq_put(Processor* p, Goroutine* g, bool next) noexcept;
void global_runq_put(Goroutine* g) noexcept;  // takes the lock
void global_runq_put_locked(Runtime* rt, Goroutine* g) GORO_REQUIRES(rt->lock);
// runq_steal steals half of p2's queue into p's (p2's runnext too if
// steal_next). Returns one goroutine to run, or null.
Goroutine* runq_steal(Processor* p, Processor* p2, bool steal_next) noexcept;
// runq_get takes p's next goroutine (runnext first: *inherit says it
// inherits the time slice). Owner only. Inline: it is on every switch.
inline Goroutine* runq_get(Processor* p, bool* inherit) noexcept {
  Goroutine* next = p->runnext.load(std::memory_order_relaxed);
  // CAS, not a plain store: a thief may take runnext (last steal pass).
  if (next != nullptr &&
      p->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire, std::memory_order_relaxed)) {
    *inherit = true;
    return next;
  }
  *inherit = false;
  return p->runq.pop();
}

// global_runq_pop_locked takes the global queue's head;
// global_runq_get_locked takes a share of it for p (max 0: no limit but
// p's room), returning one to run and queueing the rest on p.
Goroutine* global_runq_pop_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock);
Goroutine* global_runq_get_locked(Runtime* rt, Processor* p, std::int64_t max) noexcept GORO_REQUIRES(rt->lock);

// The introspection server (introspect_server.cpp): started by the first
// run() unless GORODEBUG=introspect=0; introspect_server_threads() is 1
// while its thread exists (the deadlock check counts it as our own).
void introspect_server_start();
int introspect_server_threads() noexcept;
void wake_p() noexcept;
void start_m(Processor* p, bool spinning);
void handoff_p(Processor* p);
void acquire_p(Machine* m, Processor* p) noexcept;
Processor* idle_p_get_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock);
void idle_p_put_locked(Runtime* rt, Processor* p) noexcept GORO_REQUIRES(rt->lock);
// wake_netpoller makes sure a timer due at `when` is noticed: it breaks
// the blocked poller's wait if that would last longer, or, with nobody
// polling, wakes an idle P (Go's wakeNetPoller).
void wake_netpoller(std::int64_t when) noexcept;
// inject_list makes n goroutines taken from the poller runnable (Go's
// injectglist): with a P (m->p), as many as there are idle Ps go to the
// global queue and start Ms, the rest to m's local queue; without one, all
// to the global queue, starting an M per idle P.
void inject_list(Machine* m, Goroutine** list, int n) noexcept;
// make_runnable moves a goroutine taken from the poller from kWaiting to
// kRunnable (false: it was not parked, which only teardown tolerates).
bool make_runnable(Goroutine* g) noexcept;
std::int64_t next_timer_when() noexcept;

// --- run.cpp -------------------------------------------------------------
// begin_exit starts the end of the run (main returned): every M leaves its
// scheduler loop at its next scheduling point.
void begin_exit();

// --- deadlock.cpp --------------------------------------------------------
// check_dead aborts with Go's deadlock report when nothing can ever run
// again (called by an M about to sleep with no deadline).
void check_dead(Runtime* rt);

// --- orphans.cpp ---------------------------------------------------------
// orphans_run_start forgets the destroyed primitives recorded since the
// last teardown; the teardown brackets its work with begin/end (end clears
// detail::g_run_exiting, which begin_exit set, and the records).
void orphans_run_start() noexcept;
void orphans_teardown_begin() noexcept;
void orphans_teardown_end() noexcept;

// --- goroutine.cpp -------------------------------------------------------
void goexit0(Machine* m, Goroutine* g);
[[noreturn]] void fatal(const char* msg) noexcept;
[[noreturn]] void stack_overflow(Goroutine* g) noexcept;
Goroutine* gfree_get(Processor* p);
// for_each_goroutine calls f on every goroutine record, live or not, each
// live goroutine exactly once (none is missed or seen twice because it
// moved into its stack meanwhile: goroutine.cpp, "Moving a record");
// started is false for spawn records, whose goroutines have not run. Takes
// the record and stack pool locks; not from a hot path.
void for_each_goroutine(Runtime* rt, const std::function<void(Goroutine*, bool started)>& f);
void gfree_put(Processor* p, Goroutine* g) noexcept;
// bind_stack gives g (never run yet) a stack and its initial context, and
// moves g into the record at the top of that stack: it returns the record
// the goroutine has from now on (g itself goes back to p's free list).
// unbind_stack takes the stack back after g's last switch, its record with
// it. Owner of p only.
Goroutine* bind_stack(Processor* p, Goroutine* g) noexcept;
void unbind_stack(Processor* p, Goroutine* g) noexcept;

// finish_switch_out does, for a goroutine that just switched out, what its
// switch reason asks (park's unlock, queueing, exit). On g0 (execute) it
// returns true when a cancelled park wants the goroutine resumed at once.
bool finish_switch_out(Machine* m, Goroutine* g) noexcept;
// finish_switch_out_direct is the same after a direct switch, on the next
// goroutine's stack: a cancelled park there puts the goroutine in runnext.
void finish_switch_out_direct(Machine* m, Goroutine* g) noexcept;

// --- switch.cpp: the only user of Boost.Context ---------------------------
// resume switches from g0 into g; returns the goroutine that switched back
// to g0 (g, or one that g handed the M to directly).
Goroutine* resume(Machine* m, Goroutine* g) noexcept;
// switch_direct switches from the running goroutine straight into `to`
// (already made the M's current goroutine); returns the M that later
// resumes `from`.
Machine* switch_direct(Goroutine* from, Goroutine* to) noexcept;
// suspend switches from the running goroutine g to its M's g0; returns when
// g is resumed, with the M that resumed it.
Machine* suspend(Goroutine* g) noexcept;
// prepare_context builds g's initial context below `sp`.
void prepare_context(Goroutine* g, char* sp) noexcept;
// context_destroyed frees per-context sanitizer state after g's last switch.
void context_destroyed(Goroutine* g) noexcept;
// machine_context_init sets up g0's sanitizer state on the M's thread.
void machine_context_init(Machine* m) noexcept;

// --- spare.cpp: stand-ins for Ps whose thread is blocked -------------------
// steal_stranded takes work for p from stranded Ps (their due timers, then
// half of a queue, runnext included) or from lent spares. Null if none.
Goroutine* steal_stranded(Runtime* rt, Processor* p) noexcept;
// spare_surplus: more spares are lent than Ps are stranded (a blocked
// thread woke up), so the spare m holds should go back. A racy hint.
bool spare_surplus(Runtime* rt) noexcept;
// return_spare gives back m's spare P if one is still surplus: its queue
// goes to the global queue, its timers to a real P, and m takes an idle
// real P if there is one (else it holds none). False if it kept the spare.
bool return_spare(Runtime* rt, Machine* m);
// drop_spare_timers moves a spare's timers to a real P before the spare
// goes back to the spare list (nobody would run them there).
void drop_spare_timers(Runtime* rt, Processor* spare) noexcept;
// spare_put_locked puts a spare that went idle back on the spare list
// (idle_p_put_locked for a spare). Its queue must be empty, its timers moved.
void spare_put_locked(Runtime* rt, Processor* p) noexcept GORO_REQUIRES(rt->lock);
// lend_spare starts an M on a free (or new) spare P for the goroutines of
// stranded Ps, unless as many spares are lent as Ps are stranded. sysmon.
void lend_spare(Runtime* rt);

// --- sysmon.cpp ----------------------------------------------------------
void sysmon_main(Runtime* rt);
void wake_sysmon() noexcept;
// handle_sigquit writes the SIGQUIT dump; exits (status 2) unless GORODEBUG=sigquit=dump.
void handle_sigquit(Runtime* rt);

// --- introspect.cpp -----------------------------------------------------
// dump_all_goroutines_to_stderr writes every live goroutine but `skip`,
// at most `max` of them (panic and fatal paths).
void dump_all_goroutines_to_stderr(Goroutine* skip, int max) noexcept;
// goroutines_of lists rt's live goroutines (goroutines() for a known runtime).
std::vector<GoroutineInfo> goroutines_of(Runtime* rt);
// StackGroup is goroutines that stand at the same place: same wait reason
// (or state), creation site and stack (dump --group, the pprof profile).
struct StackGroup {
  std::string what;        // wait reason or state
  std::string created_at;
  std::vector<Frame> stack;
  bool elided = false;
  std::int64_t count = 0;
  std::vector<std::uint64_t> ids;
};
// group_goroutines groups `all`, biggest group first.
std::vector<StackGroup> group_goroutines(const std::vector<GoroutineInfo>& all);

// --- pprof.cpp -----------------------------------------------------------
// goroutine_profile encodes `all` as pprof's goroutine profile (gzipped
// profile.proto): what write_goroutine_profile writes.
std::string goroutine_profile(const std::vector<GoroutineInfo>& all);

// goroutine_info describes g as goroutines() would, without its stack.
GoroutineInfo goroutine_info(Goroutine* g);

// --- goroutine.cpp -------------------------------------------------------
// install_panic_handler / remove_panic_handler bracket a run: while it is
// active, an exception no goroutine frame catches is reported as a panic
// with the stack of the throw (goroutine.cpp, on_terminate).
void install_panic_handler() noexcept;
void remove_panic_handler() noexcept;

// --- signals.cpp ---------------------------------------------------------
// g_sigquit_pending: a SIGQUIT arrived; sysmon writes the dump.
extern std::atomic<bool> g_sigquit_pending;
void install_signal_handlers();
void remove_signal_handlers();
void machine_signal_init(Machine* m);
void machine_signal_fini(Machine* m);

std::int64_t now_ns() noexcept;

}  // namespace goro::rt
