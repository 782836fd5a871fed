// goroutine.hpp: G, the goroutine record, and its state machine.
//
// A goroutine has two records in its life (stack_pool.hpp has the layout):
//   - until it first runs, a spawn record from the RecordPool (go() takes
//     one from its P's free list, Go's gFree), holding the function object
//     when it is small: a queued goroutine that has not run yet costs a few
//     hundred bytes, not a page;
//   - from its first switch-in to its exit, the record at the top of its
//     stack slot. bind_stack moves the goroutine there, and its first
//     lines take the function object and free the spawn record, so a started
//     goroutine costs its stack's top page and nothing else.
// Both kinds live as long as the run (a slot's record stays in its slot
// while the slot is free), so a Goroutine* is never dangling memory; but a
// goroutine that has not started is known by another pointer than once it
// has. Only the scheduler holds pointers to goroutines that have not run
// (run queues, teardown): everything a goroutine hands out about itself
// (waiters, self(), curg, lock-order holders) is taken while it runs, from
// its slot's record. goroutine.cpp ("Moving a record") has the argument for
// dumps and stack walks that race with the move.
//
// States (Go's _G* values in brackets) and who moves between them:
//
//   kDead ----spawn_commit----> kRunnable            (the spawner)
//   kRunnable --execute--> kRunning                  (the M that runs it)
//   kRunning --park--> kWaiting                      (its M, on g0, before unlock)
//   kWaiting --ready--> kRunnable                    (the waker, any thread)
//   kRunning --yield/preempt--> kRunnable            (its M, on g0)
//   kRunning --BlockingScope--> kSyscall --> kRunning (the goroutine itself)
//   kRunning --exit--> kDead                         (its M, on g0)
//
// A plain thread that blocks through park() has a record of its own
// (is_thread), which only ever moves kRunning -> kWaiting -> kRunnable.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/park.hpp"
#include "goro/runtime.hpp"
#include "goro/runtime_timer.hpp"
#include "eh_state.hpp"
#include "lock.hpp"

namespace goro::rt {

struct Machine;
struct Processor;

enum class GStatus : std::uint8_t {
  kDead = 0,      // free, or exited (Go: _Gdead / _Gidle)
  kRunnable = 1,  // in a run queue (_Grunnable)
  kRunning = 2,   // on an M (_Grunning)
  kSyscall = 3,   // inside blocking(); its M may have lost the P (_Gsyscall)
  kWaiting = 4,   // parked (_Gwaiting)
};

// legal_transition is the state machine every status change must follow
// (Go's casgstatus checks the same): born runnable, run, then park, yield,
// block, or exit; a parked goroutine is readied (or resumes at once when
// its park was cancelled); one in blocking() gets its P back or queues.
constexpr bool legal_transition(GStatus from, GStatus to) noexcept {
  switch (from) {
    case GStatus::kDead: return to == GStatus::kRunnable;
    case GStatus::kRunnable: return to == GStatus::kRunning;
    case GStatus::kRunning:
      return to == GStatus::kWaiting || to == GStatus::kRunnable || to == GStatus::kSyscall || to == GStatus::kDead;
    case GStatus::kSyscall: return to == GStatus::kRunning || to == GStatus::kRunnable;
    case GStatus::kWaiting: return to == GStatus::kRunnable || to == GStatus::kRunning;
  }
  return false;
}

// bad_status reports a status change from a state other than the one its
// caller is in charge of, and dies (Go: "casgstatus: bad incoming values").
[[noreturn]] void bad_status(const Goroutine* g, GStatus seen, GStatus from, GStatus to) noexcept;

struct RegisterState;  // traceback.hpp

// wait_for_walker is the slow path of hold_check (below): g is held by a
// stack walker; spin until it lets go (traceback.cpp).
void wait_for_walker(const Goroutine* g) noexcept;

// sleep_timer_fired is the callback of Goroutine::sleep_timer: it readies the sleeper.
void sleep_timer_fired(void* g, std::int64_t now_ns);

// Why control came back to the scheduler from a goroutine.
enum class SwitchReason : std::uint8_t {
  kPark,             // park(): run the unlock function, then schedule
  kYield,            // yield(): back of the local run queue
  kPreempt,          // flagged by sysmon: to the global run queue (as Go does)
  kExit,             // the goroutine returned
  kBlockingHandoff,  // left blocking() with no P to be had: global queue, stop the M
};

// ForcedUnwind is thrown from the goroutine's switch point when run() tears
// down with the goroutine still alive, so its destructors run. Not derived
// from std::exception: `catch (const std::exception&)` lets it pass; code
// that catches (...) must rethrow it, as with Boost.Context's forced_unwind.
struct ForcedUnwind {};

// Stack describes a goroutine's bound stack slot (stack_pool.hpp for the
// layout); all null before the goroutine first runs and after it exits.
struct Stack {
  char* slot = nullptr;     // lowest address: the guard page, or the first stack page
  char* lo = nullptr;       // lowest usable byte
  char* hi = nullptr;       // one past the highest usable byte
  std::uint32_t index = 0;  // the slot's number in its pool (its colour; stack_pool.hpp)
  bool guarded = false;     // PROT_NONE guard page below lo; else a canary band below slot
};

// Function objects up to this size (and 16-byte alignment) live in the
// record; larger ones on the heap.
inline constexpr std::size_t kInlineFnBytes = 64;

}  // namespace goro::rt

namespace goro {

class alignas(64) Goroutine {
 public:
  // --- touched on every switch --------------------------------------------
  // ctx is the saved context while the goroutine is switched out. Written by
  // the g0 of the M that switched it out (from jump_fcontext's result), read
  // by the g0 that resumes it; the run queue hands it over (release/acquire).
  boost::context::detail::fcontext_t ctx = nullptr;
  std::atomic<rt::GStatus> status{rt::GStatus::kDead};
  bool is_thread = false;  // a plain thread's record: no stack, no M
  bool started = false;    // has ever been switched in (teardown: unwind vs. drop)
  bool unwind = false;     // teardown asks it to unwind (teardown thread only)
  // abandoned: the teardown resumed it out of a park that nothing had
  // ended (detail::park_abandoned; teardown thread only).
  bool abandoned = false;
  std::uint8_t unwind_throws = 0;

  rt::SwitchReason reason = rt::SwitchReason::kPark;  // set by the goroutine before switching out
  // m is the M running the goroutine; written by that M before switching in.
  rt::Machine* m = nullptr;
  // Park request, written by the goroutine before switching out, read by g0.
  UnlockFn park_unlock = nullptr;
  void* park_arg = nullptr;

  // --- the function (set by go(), run once) --------------------------------
  detail::InvokeFn invoke = nullptr;
  detail::DestroyFn destroy = nullptr;
  void* fn = nullptr;  // fn_buf, or a heap block
  bool fn_on_heap = false;
  // held is set while a stack walker reads this goroutine's stack; it must
  // not start running meanwhile (traceback.cpp, "Holding a goroutine
  // still"). Written by the walker; read by whoever makes it run, through
  // hold_check. Not on the first cache line, which every switch writes
  // and other Ps' wakers CAS, but in the padding before fn_buf: a line
  // written only at spawn and, for a record in a stack slot, once more at
  // the goroutine's first run (bind_stack's move, take_function), so the
  // check reads it shared, nearly for free.
  std::atomic<bool> held{false};
  detail::RelocateFn relocate = nullptr;  // moves an fn_buf object to another record
  // A slot's record, from bind_stack to the goroutine's first lines: the
  // spawn record still holding its function object (take_function).
  Goroutine* spawn_record = nullptr;
  alignas(16) unsigned char fn_buf[rt::kInlineFnBytes];

  // --- identity, read racily by dumps (hence atomics) -----------------------
  std::atomic<std::uint64_t> id{0};
  std::atomic<std::uint64_t> parent_id{0};
  std::atomic<const char*> file{nullptr};
  std::atomic<const char*> function{nullptr};
  std::atomic<std::uint32_t> line{0};
  std::atomic<const char*> name{nullptr};
  std::atomic<WaitReason> wait_reason{WaitReason::none};
  std::atomic<std::int64_t> wait_since{0};  // coarse clock, ns

  // --- memory ---------------------------------------------------------------
  rt::Stack stack;

  // sleep_timer backs sleep_for: one per goroutine, so sleeping allocates nothing.
  RuntimeTimer sleep_timer{&rt::sleep_timer_fired, this};

  // thread_note is where a plain thread's record sleeps in park().
  rt::Note thread_note;

  // --- C++ exception state ----------------------------------------------------
  // The C++ runtime keeps the exceptions being handled (a catch block that
  // is running) and the count of exceptions in flight per thread
  // (__cxa_eh_globals). A goroutine that parks inside a catch block or a
  // destructor run by unwinding must take that state with it, and another
  // goroutine on the thread must not see it: switch.cpp swaps it at every
  // switch.
  rt::EhState eh;

  // --- sanitizers -----------------------------------------------------------
  void* tsan_fiber = nullptr;
  void* asan_fake_stack = nullptr;

  // --- where it stands, for tracebacks (traceback.cpp) -------------------------
  // syscall_regs points at the registers captured on entering blocking()
  // (in the BlockingScope on the goroutine's own stack); meaningful while
  // the status is kSyscall. Written by the goroutine before its release
  // store of kSyscall.
  const rt::RegisterState* syscall_regs = nullptr;
  // spawn_pc is the return address of the go() call that created it, which
  // dumps symbolize for "created by" (Go's gopc). Written at spawn.
  std::atomic<std::uintptr_t> spawn_pc{0};
  // job_*: while a worker-pool goroutine runs a job, where the job was
  // submitted (string literals; set and cleared by the worker, read racily
  // by dumps).
  std::atomic<const char*> job_file{nullptr};
  std::atomic<const char*> job_function{nullptr};
  std::atomic<std::uint32_t> job_line{0};
  std::atomic<std::uintptr_t> job_pc{0};
};

}  // namespace goro

namespace goro::rt {

// hold_check is the M's half of the stack walker's handshake
// (traceback.cpp): called right after g->status was set to kRunning and
// before g's own code runs again. A stack walker sets g->held, then fences
// every thread (membarrier) and loads g->status, so either it sees
// kRunning and leaves g alone, or we see held here and wait: one load and
// a branch on the hot path, no fence (the walker supplies it remotely).
inline void hold_check(const Goroutine* g) noexcept {
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the load stays after the status store
  if (g->held.load(std::memory_order_acquire)) [[unlikely]] wait_for_walker(g);
}

// set_status moves g from From to To: every status store goes through it
// (CASes too: cas_status). The transition itself is checked when compiled;
// that g is in From when it runs is checked with one load of a cache line
// the store is about to write, and a mismatch is fatal: a goroutine made
// runnable twice, or run while parked, would otherwise run one stack on
// two threads.
template <GStatus From, GStatus To>
inline void set_status(Goroutine* g, std::memory_order order) noexcept {
  static_assert(legal_transition(From, To), "illegal goroutine status transition");
  const GStatus seen = g->status.load(std::memory_order_relaxed);
  if (seen != From) [[unlikely]] bad_status(g, seen, From, To);
  g->status.store(To, order);
}

// cas_status is set_status for a change that may lose a race (two parties
// readying one goroutine, teardown against a waker): false, and g left as
// it is, when g is not in From.
template <GStatus From, GStatus To>
inline bool cas_status(Goroutine* g, std::memory_order order) noexcept {
  static_assert(legal_transition(From, To), "illegal goroutine status transition");
  GStatus expected = From;
  return g->status.compare_exchange_strong(expected, To, order);
}

}  // namespace goro::rt
