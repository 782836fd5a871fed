// goroutine.cpp: G's life: spawn, park/ready, yield, blocking(), exit, panic.
//
// Spawning (go()) takes a free spawn record from the P's cache, stamps an id
// from the P's id cache, builds the function object in the record (or on
// the heap if it is large) and puts the goroutine in the P's runnext slot,
// as Go's newproc does. No lock, no allocation in steady state. Its first
// run binds a stack and moves the goroutine into the record at the top of
// that stack (bind_stack).
//
// Moving a record. bind_stack runs on the M about to switch the goroutine
// in for the first time (prepare_to_run), on g0 or on the stack of the
// goroutine switching out. It copies what go() set (id, parent, creation
// site, go() call's address, teardown's request to unwind) into the slot's
// record, stores kRunnable there and kDead in the spawn record, and leaves
// the spawn record's address in the slot's record: the goroutine's first
// lines (take_function) move the function object out of it and put it
// back on the P's free list, because the move may run a move constructor,
// user code, which must run as the goroutine. Until then the spawn record
// reads kDead and is on no free list: nothing else touches it. The rest of
// the slot's record is as its previous goroutine left it at exit (no name,
// no wait reason, no job site, timer stopped, not held by the scheduler)
// or as acquire() built it; started is cleared before the status store,
// and prepare_context and prepare_to_run set the rest before the
// goroutine runs. Three kinds of readers may race with the move:
//   - Stack walkers (traceback.cpp) hold a record, then read its status
//     and id; they read the stack, context and started flag only of a
//     record in the state and with the id they expect. A spawn record
//     never holds a goroutine that has started (started stays false in
//     it; prepare_to_run sets it in the slot's record), so a walker holding
//     a spawn record finds it runnable and never run, or dead, or holding
//     another goroutine (the record was reused): it reads no stack through
//     it, and its hold delays nobody, since the goroutine is checked for
//     holds in the slot's record, which it runs with. A walker holding a
//     slot's record from its previous goroutine sees kDead or the new id
//     (stored before the release of kRunnable); one that found the new
//     goroutine there (kRunnable, never run) sees started false, and the
//     hold check in prepare_to_run (on the slot's record) makes it wait
//     before started is set: the handshake is the one every other switch-in
//     does. collect() (introspect.cpp) keeps a goroutine listed from its
//     spawn record whose walk found the record dead or reused: it has
//     started since, and is shown as the listing saw it (runnable).
//   - Listings of all goroutines (dumps, goroutines(), teardown) go through
//     for_each_goroutine, which visits spawn records, then slots' records.
//     A move in between would hide the goroutine from both (slot visited
//     before, spawn record after) or show it twice, so listings and moves
//     exclude each other, without a shared write on the move's path: the
//     mover sets its P's moving flag, then loads rt->listing; a listing
//     increments rt->listing, runs a process-wide barrier (traceback.cpp's,
//     which supplies the mover's store-load fence remotely, as for the
//     walker's holds), waits until every P's moving flag reads false, and
//     visits the records under the record pool's lock. Dekker's argument:
//     either the mover saw the listing, and then it moves under that lock
//     (after clearing its flag), or the listing saw the flag and waits for
//     the move to end. The moving window holds no user code (the function
//     object moves later, in take_function), so the listing waits a few dozen
//     instructions; the mover pays a store, a load of a line nobody writes
//     and a store.
//   - Everything else that points at a goroutine got the pointer from the
//     goroutine itself, while it ran (waiters, self(), curg, lock-order
//     holders, its sleep timer), i.e. the slot's record; or is the
//     scheduler, which hands the record to prepare_to_run and uses the one
//     it returns (execute, take_direct_next, teardown).
// Ids stay as they were: the id moves with the goroutine.
//
// Parking (park()) switches to g0 first and runs the caller's unlock
// function there; readying (ready()) puts the goroutine in the current P's
// runnext (it inherits the time slice), or, from a thread without a P, in
// the global queue. Plain threads park on a futex in their own record.
#include <cxxabi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <typeinfo>

#include "external.hpp"
#include "goro/detail/print.hpp"
#include "sanitizers.hpp"
#include "stack_pool.hpp"
#include "scheduler.hpp"
#include "traceback.hpp"

// goro_blocking_enter(BlockingScope* scope): stores the state its caller
// will be in once it returns (return address, stack pointer, callee-saved
// registers; RegisterState's order) into scope->regs_, at offset 8 after
// scope->g_, then continues in goro_blocking_enter_body with the same
// argument and return address, as a tail call.
asm(R"(
  .text
  .globl goro_blocking_enter
  .type goro_blocking_enter,@function
goro_blocking_enter:
  movq (%rsp), %rax
  movq %rax, 8(%rdi)
  leaq 8(%rsp), %rax
  movq %rax, 16(%rdi)
  movq %rbp, 24(%rdi)
  movq %rbx, 32(%rdi)
  movq %r12, 40(%rdi)
  movq %r13, 48(%rdi)
  movq %r14, 56(%rdi)
  movq %r15, 64(%rdi)
  jmp goro_blocking_enter_body
  .size goro_blocking_enter, .-goro_blocking_enter
)");

namespace goro::rt {

namespace {
thread_local Machine* t_machine = nullptr;

// ThreadRecord is a plain thread's record for park()/ready().
struct ThreadRecord {
  ThreadRecord() {
    g.is_thread = true;
    // Born running (it is the thread itself), so not through set_status.
    g.status.store(GStatus::kRunning, std::memory_order_relaxed);
  }
  Goroutine g;
};

Goroutine* thread_record() noexcept {
  thread_local ThreadRecord record;
  return &record.g;
}

char* align_down(char* p, std::size_t align) {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(std::uintptr_t{align} - 1));
}

std::uint64_t next_goid(Runtime* rt, Processor* p) noexcept {
  if (p == nullptr) return rt->goid_gen.fetch_add(1, std::memory_order_relaxed);
  if (p->goid_next == p->goid_end) {
    p->goid_next = rt->goid_gen.fetch_add(kGoidBatch, std::memory_order_relaxed);
    p->goid_end = p->goid_next + kGoidBatch;
  }
  return p->goid_next++;
}

// unwind_due: teardown resumed g and it may throw ForcedUnwind now: not
// while it is already unwinding (a second exception would terminate).
bool unwind_due(const Goroutine* g) noexcept {
  return g->unwind && std::uncaught_exceptions() == 0 && g->unwind_throws < 3;
}

// maybe_unwind throws ForcedUnwind into a goroutine that teardown resumed.
void maybe_unwind(Goroutine* g) {
  if (unwind_due(g)) {
    ++g->unwind_throws;
    throw ForcedUnwind{};
  }
}

void thread_park(Goroutine* t, UnlockFn unlock, void* arg, WaitReason reason) {
  t->thread_note.clear();
  t->wait_reason.store(reason, std::memory_order_relaxed);
  set_status<GStatus::kRunning, GStatus::kWaiting>(t, std::memory_order_relaxed);
  if (unlock != nullptr && !unlock(t, arg)) {
    set_status<GStatus::kWaiting, GStatus::kRunning>(t, std::memory_order_relaxed);
    t->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
    return;
  }
  while (!t->thread_note.woken()) t->thread_note.sleep();
  set_status<GStatus::kRunnable, GStatus::kRunning>(t, std::memory_order_relaxed);
  t->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
}

std::string describe_exception(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    if (t == nullptr) return "unknown exception";
    int status = 0;
    char* name = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
    std::string s = std::string("exception of type ") + (status == 0 && name ? name : t->name());
    std::free(name);
    return s;
  }
}

// panic_from_goroutine reports an exception no frame of goroutine g
// caught, as Go reports an unrecovered panic: "panic: <what>", g's stack
// from the throw (`where`), then every other goroutine; and aborts.
[[noreturn]] void panic_from_goroutine(Goroutine* g, const std::exception_ptr& e, Traceback where) noexcept {
  const std::string what = describe_exception(e);
  print_stderr("panic: {}\n\n", what);
  std::fflush(stderr);
  try {
    trim_throw_frames(where);
    GoroutineInfo info = goroutine_info(g);
    info.state = GoroutineState::running;
    info.wait_reason.clear();
    info.stack = symbolize(where);
    info.stack_elided = where.elided;
    std::ostringstream out;
    dump_goroutine(out, info);
    const std::string text = out.str();
    std::fwrite(text.data(), 1, text.size(), stderr);
  } catch (...) {
    print_stderr("goroutine {} [running]:\n", g->id.load(std::memory_order_relaxed));
  }
  std::fflush(stderr);
  // Then everyone else, as GOTRACEBACK=all would (capped: a million
  // goroutines would bury the message).
  dump_all_goroutines_to_stderr(g, 100);
  std::fflush(stderr);
  std::abort();
}

// on_terminate is the terminate handler while a run is active. An
// exception that no frame of a goroutine catches finds no handler at all
// (run_goroutine catches ForcedUnwind only and nothing below it has a
// handler), so the C++ runtime calls std::terminate from inside the throw,
// before unwinding anything: the goroutine's stack still shows where it
// was thrown, and we report it as Go reports a panic. Anything else goes
// to the handler that was installed before run().
std::terminate_handler g_previous_terminate = nullptr;

[[noreturn]] void on_terminate() {
  Machine* m = current_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (g != nullptr && !g->is_thread) {
    if (std::exception_ptr e = std::current_exception()) {
      panic_from_goroutine(g, e, traceback_here(g->stack.lo, g->stack.hi));
    }
  }
  if (g_previous_terminate != nullptr) g_previous_terminate();
  std::abort();
}

}  // namespace

// switch_out leaves g (its reason set) for the next goroutine: directly if
// the P has one at hand, else through g0. Returns the M that resumes g.
static Machine* switch_out(Goroutine* g) noexcept {
  if (Goroutine* next = take_direct_next(g->m, g)) return switch_direct(g, next);
  return suspend(g);
}

// Never inlined, and opaque to the optimiser: compilers treat a thread-
// local's address as fixed within a function, and after a switch the
// goroutine may be running on another thread. An inlined copy could reuse
// the address computed before the switch and read another thread's M.
__attribute__((noinline)) Machine* current_machine() noexcept {
  asm volatile("" ::: "memory");
  return t_machine;
}

namespace {
// this_machine reads the thread-local directly: cheaper than
// current_machine(), and valid only until the calling function's next
// switch (which may resume it on another thread). Functions here use it on
// entry and use what suspend() returns afterwards.
inline Machine* this_machine() noexcept { return t_machine; }
}  // namespace

void set_current_machine(Machine* m) noexcept {
  t_machine = m;
  if (m != nullptr) m->tid.store(static_cast<int>(::gettid()), std::memory_order_relaxed);
  detail::t_preempt.store(false, std::memory_order_relaxed);
  if (m != nullptr) m->preempt.store(&detail::t_preempt, std::memory_order_release);
}

std::int64_t now_ns() noexcept { return monotonic_now_ns(); }

[[noreturn]] void fatal(const char* msg) noexcept {
  print_stderr("fatal error: {}\n", msg);
  std::fflush(stderr);
  std::abort();
}

namespace {
const char* status_name(GStatus s) noexcept {
  switch (s) {
    case GStatus::kDead: return "dead";
    case GStatus::kRunnable: return "runnable";
    case GStatus::kRunning: return "running";
    case GStatus::kSyscall: return "syscall";
    case GStatus::kWaiting: return "waiting";
  }
  return "?";
}
}  // namespace

[[noreturn]] void bad_status(const Goroutine* g, GStatus seen, GStatus from, GStatus to) noexcept {
  print_stderr("runtime: casgstatus: goroutine {}{} is {}, not {}, on its way to {}\n",
               g->id.load(std::memory_order_relaxed), g->is_thread ? " (a plain thread)" : "", status_name(seen),
               status_name(from), status_name(to));
  fatal("casgstatus: bad incoming values");
}

[[noreturn]] void stack_overflow(Goroutine* g) noexcept {
  const char* file = g->file.load(std::memory_order_relaxed);
  print_stderr("runtime: goroutine {} stack exceeds its {}-byte limit (created at {}:{})\n"
               "fatal error: stack overflow\n",
               g->id.load(std::memory_order_relaxed), g_runtime->stacks.usable_size(), file ? file : "?",
               g->line.load(std::memory_order_relaxed));
  std::fflush(stderr);
  std::abort();
}

Goroutine* gfree_get(Processor* p) {
  int n = p->gfree_count.load(std::memory_order_relaxed);
  if (n == 0) n = g_runtime->records.get_batch(p->gfree, kGFreeBatch);
  if (n == 0) return g_runtime->records.make();
  p->gfree_count.store(n - 1, std::memory_order_relaxed);
  return p->gfree[n - 1];
}

void gfree_put(Processor* p, Goroutine* g) noexcept {
  int n = p->gfree_count.load(std::memory_order_relaxed);
  if (n == Processor::kGFreeMax) {
    // Give the older half to the global cache so other Ps can use it; keep
    // the recently used (warm) half.
    g_runtime->records.put_batch(p->gfree, kGFreeBatch);
    std::copy(p->gfree + kGFreeBatch, p->gfree + n, p->gfree);
    n -= kGFreeBatch;
  }
  p->gfree[n] = g;
  p->gfree_count.store(n + 1, std::memory_order_relaxed);
}

namespace {

// move_identity gives the slot's record what go() set, and makes it the
// goroutine's record: the moving window (see the essay). Not job_file:
// the worker pool clears it however a job ends, and one more cache line
// written per spawn is measurable (worker_pool.cpp).
[[gnu::always_inline]] inline void move_identity(Goroutine* from, Goroutine* to) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  to->id.store(from->id.load(relaxed), relaxed);
  to->parent_id.store(from->parent_id.load(relaxed), relaxed);
  to->file.store(from->file.load(relaxed), relaxed);
  to->function.store(from->function.load(relaxed), relaxed);
  to->line.store(from->line.load(relaxed), relaxed);
  to->spawn_pc.store(from->spawn_pc.load(relaxed), relaxed);
  to->started = false;
  to->unwind = from->unwind;
  to->unwind_throws = from->unwind_throws;
  to->abandoned = false;
  // Release: a walker or listing that loads kRunnable (acquire) sees the
  // identity above and started cleared.
  set_status<GStatus::kDead, GStatus::kRunnable>(to, std::memory_order_release);
  from->status.store(GStatus::kDead, std::memory_order_release);  // not a transition: the goroutine lives on
}

// move_under_lock is the moving window while a listing is under way.
[[gnu::noinline]] void move_under_lock(Runtime* rt, Processor* p, Goroutine* from, Goroutine* to) noexcept {
  p->moving.store(false, std::memory_order_release);
  LockGuard l(rt->records.lock());
  move_identity(from, to);
}

}  // namespace

Goroutine* bind_stack(Processor* p, Goroutine* g) noexcept {
  Runtime* rt = g_runtime;
  StackPool& pool = rt->stacks;
  StackSlot s;
  int n = p->sfree_count;
  if (n == 0) n = pool.get_batch(p->sfree, kGFreeBatch);
  if (n > 0) {
    s = p->sfree[n - 1];
    p->sfree_count = n - 1;
  } else {
    try {
      s = pool.acquire();
    } catch (const std::bad_alloc&) {
      fatal("out of memory: no address space for another goroutine stack");
    }
  }
  Goroutine* ng = pool.record(s);
  // The function object stays where go() built it until the goroutine's
  // first lines take it (take_function): moving it may run user code.
  ng->spawn_record = g;
  // The moving window (essay: Moving a record).
  p->moving.store(true, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);  // the load stays after the store (the fence is remote)
  if (rt->listing.load(std::memory_order_relaxed) == 0) [[likely]] {
    move_identity(g, ng);
    p->moving.store(false, std::memory_order_release);
  } else {
    move_under_lock(rt, p, g, ng);
  }
  ng->stack.slot = s.base;
  ng->stack.lo = pool.lo(s);
  ng->stack.hi = pool.hi(s);
  ng->stack.index = s.index;
  ng->stack.guarded = s.guarded;
  // Frames abandoned by an earlier goroutine's exit leave ASan poison.
  GORO_UNPOISON(ng->stack.lo, static_cast<std::size_t>(ng->stack.hi - ng->stack.lo));
  prepare_context(ng, align_down(ng->stack.hi, 64));
  return ng;
}

void for_each_goroutine(Runtime* rt, const std::function<void(Goroutine*, bool)>& f) {
  // Ended however f ends (it may throw: dumps format strings): a count
  // left raised would send every first run through the record lock.
  struct Listing {
    Runtime* rt;
    explicit Listing(Runtime* r) noexcept : rt(r) { rt->listing.fetch_add(1, std::memory_order_relaxed); }
    ~Listing() { rt->listing.fetch_sub(1, std::memory_order_release); }
    Listing(const Listing&) = delete;
    Listing& operator=(const Listing&) = delete;
  } listing(rt);
  process_barrier();
  for (const auto& p : rt->allp) {
    for (int spins = 0; p->moving.load(std::memory_order_acquire); ++spins) {
      if (spins < 1000) {
        __builtin_ia32_pause();
      } else {
        sched_yield();
      }
    }
  }
  rt->records.for_each([&](Goroutine* g) { f(g, false); },
                       [&] { rt->stacks.for_each_record([&](Goroutine* g) { f(g, true); }); });
}

void unbind_stack(Processor* p, Goroutine* g) noexcept {
  const StackSlot s{g->stack.slot, g->stack.index, g->stack.guarded};
  g->stack = Stack{};
  int n = p->sfree_count;
  if (n == Processor::kSFreeMax) {
    // The older half goes to the global cache (and, unused long enough, back
    // to the OS); the warm half stays.
    g_runtime->stacks.put_batch(p->sfree, Processor::kSFreeMax / 2);
    std::copy(p->sfree + Processor::kSFreeMax / 2, p->sfree + n, p->sfree);
    n -= Processor::kSFreeMax / 2;
  }
  p->sfree[n] = s;
  p->sfree_count = n + 1;
}

namespace {

// relocate_function moves a function object between records.
void relocate_function(Goroutine* from, Goroutine* to) noexcept {
  to->invoke = from->invoke;
  to->destroy = from->destroy;
  to->fn_on_heap = from->fn_on_heap;
  if (from->fn_on_heap) {
    to->fn = from->fn;
  } else if (from->relocate == nullptr) {
    std::memcpy(to->fn_buf, from->fn_buf, kInlineFnBytes);  // trivially copyable
    to->fn = to->fn_buf;
  } else {
    from->relocate(to->fn_buf, from->fn);
    to->fn = to->fn_buf;
  }
}

// take_function is a goroutine's first act: it moves its function object
// from its spawn record into its own record (a byte copy, or the
// RelocateFn go() made: move, then destroy the source; a function object
// on the heap moves by its pointer) and puts the spawn record back on the
// P's free list. Here and not in bind_stack, because a move constructor is
// user code: it must run as the goroutine, which may park (a lock), ask
// for its id or spawn, and not on g0 or on the stack of a goroutine that
// is halfway through parking. Until now the spawn record read kDead and
// sat on no free list, so nothing else could touch it.
void take_function(Goroutine* g) noexcept {
  Goroutine* from = g->spawn_record;
  g->spawn_record = nullptr;
  relocate_function(from, g);
  // current_machine, not the thread-local read: the move may have parked,
  // and the goroutine may be on another thread now.
  gfree_put(current_machine()->p, from);
}

}  // namespace

// run_goroutine runs on the goroutine's own stack from its first switch-in
// to its exit. It never returns: the last switch leaves the stack for good.
//
// Not noexcept, and no catch-all: an exception the goroutine does not
// catch must find no handler anywhere on its stack, so that the C++
// runtime calls std::terminate without unwinding (on_terminate reports it
// with the stack of the throw). A noexcept frame or a catch (...) would
// count as a handler and unwind the stack first.
void run_goroutine(Goroutine* g) {
  take_function(g);
  try {
    maybe_unwind(g);  // teardown may resume a goroutine that never ran a line
    g->invoke(g->fn);
  } catch (const ForcedUnwind&) {
    // Teardown: the stack is unwound, the goroutine simply ends.
  }
  g->destroy(g->fn);
  if (g->fn_on_heap) ::operator delete(g->fn);
  g->fn = nullptr;
  g->reason = SwitchReason::kExit;
  switch_out(g);
  __builtin_unreachable();
}

void install_panic_handler() noexcept { g_previous_terminate = std::set_terminate(&on_terminate); }

void remove_panic_handler() noexcept { std::set_terminate(g_previous_terminate); }

void goexit0(Machine* m, Goroutine* g) {
  Runtime* rt = g_runtime;
  context_destroyed(g);
  set_status<GStatus::kRunning, GStatus::kDead>(g, std::memory_order_release);
  const bool was_main = g->id.load(std::memory_order_relaxed) == 1 && !rt->tearing_down;
  g->name.store(nullptr, std::memory_order_relaxed);
  rt->live.fetch_sub(1, std::memory_order_relaxed);
  // The record stays in the stack slot, free now: what move_identity
  // leaves alone must read as a fresh record's does for the slot's next
  // goroutine (no name, above; no wait reason: it ran since its last park).
  unbind_stack(m->p, g);
  if (was_main) begin_exit();
}

// ready_status moves g from kWaiting to kRunnable. False if g was not parked,
// which only teardown tolerates (it may have made g runnable itself).
static bool ready_status(Goroutine* g) noexcept {
  // A CAS, not a load and a store: if two parties ever tried to ready one
  // goroutine, the loser must not queue it a second time (two Ms would run
  // one stack). Acquire pairs with finish_switch_out's release store of
  // kWaiting: g's context is saved.
  if (cas_status<GStatus::kWaiting, GStatus::kRunnable>(g, std::memory_order_acq_rel)) return true;
  if (g_runtime == nullptr || !g_runtime->tearing_down) [[unlikely]] {
    bad_status(g, g->status.load(std::memory_order_relaxed), GStatus::kWaiting, GStatus::kRunnable);
  }
  // The teardown made g runnable itself; this waker has taken g's waiter
  // out of its primitive and finished the operation, just as if its
  // ready() had come first (detail::park_abandoned). Teardown thread only:
  // plain threads never get here once the run is over (ready()).
  g->abandoned = false;
  return false;
}

bool make_runnable(Goroutine* g) noexcept { return ready_status(g); }

void sleep_timer_fired(void* arg, std::int64_t) { goro::ready(static_cast<Goroutine*>(arg)); }

namespace {

void enter_blocking(Machine* m, Goroutine* g) noexcept {
  Processor* p = m->p;
  p->blocking_calls.add();
  p->syscalltick.store(p->syscalltick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  m->blocked.store(true, std::memory_order_relaxed);
  m->oldp = p;
  m->p = nullptr;
  // Release: a stack walker that loads kSyscall (acquire) sees syscall_regs
  // and the frames above them.
  set_status<GStatus::kRunning, GStatus::kSyscall>(g, std::memory_order_release);
  // Release: sysmon's CAS on status sees everything we did as owner.
  p->status.store(PStatus::kSyscall, std::memory_order_release);
}

void exit_blocking(Goroutine* g) noexcept {
  Machine* m = this_machine();
  Processor* p = m->oldp;
  m->oldp = nullptr;
  // m->blocked stays set until this goroutine holds a P or sits in the
  // global queue: the deadlock check must never see it in neither place.
  PStatus expected = PStatus::kSyscall;
  // Fast path: sysmon left our P alone. Acquire pairs with whoever last
  // released the P (ourselves, usually).
  if (p->status.compare_exchange_strong(expected, PStatus::kRunning, std::memory_order_acquire)) {
    m->p = p;
    m->blocked.store(false, std::memory_order_relaxed);
    set_status<GStatus::kSyscall, GStatus::kRunning>(g, std::memory_order_relaxed);
    hold_check(g);  // a walker may be reading the frames we return to
    return;
  }
  // Our P was handed off. Any idle P will do.
  Runtime* rt = g_runtime;
  rt->lock.lock();
  Processor* idle = rt->exiting.load(std::memory_order_relaxed) ? nullptr : idle_p_get_locked(rt);
  if (idle != nullptr) m->blocked.store(false, std::memory_order_relaxed);
  rt->lock.unlock();
  if (idle != nullptr) {
    acquire_p(m, idle);
    set_status<GStatus::kSyscall, GStatus::kRunning>(g, std::memory_order_relaxed);
    hold_check(g);
    return;
  }
  // None: give the goroutine to the scheduler (global queue) and let this M stop.
  g->reason = SwitchReason::kBlockingHandoff;
  suspend(g);
}

}  // namespace

}  // namespace goro::rt

namespace goro {

using namespace goro::rt;

const char* to_string(WaitReason reason) noexcept {
  switch (reason) {
    case WaitReason::none: return "";
    case WaitReason::sleep: return "sleep";
    case WaitReason::chan_receive: return "chan receive";
    case WaitReason::chan_send: return "chan send";
    case WaitReason::chan_receive_nil_chan: return "chan receive (nil chan)";
    case WaitReason::chan_send_nil_chan: return "chan send (nil chan)";
    case WaitReason::select: return "select";
    case WaitReason::select_no_cases: return "select (no cases)";
    case WaitReason::sync_cond_wait: return "sync.Cond.Wait";
    case WaitReason::sync_mutex_lock: return "sync.Mutex.Lock";
    case WaitReason::sync_rwmutex_rlock: return "sync.RWMutex.RLock";
    case WaitReason::sync_rwmutex_lock: return "sync.RWMutex.Lock";
    case WaitReason::sync_waitgroup_wait: return "sync.WaitGroup.Wait";
    case WaitReason::semacquire: return "semacquire";
    case WaitReason::io_wait: return "IO wait";
    case WaitReason::future_get: return "goro.Future.Get";
    case WaitReason::preempted: return "preempted";
  }
  return "unknown wait reason";
}

const char* to_string(GoroutineState state) noexcept {
  switch (state) {
    case GoroutineState::idle: return "idle";
    case GoroutineState::runnable: return "runnable";
    case GoroutineState::running: return "running";
    case GoroutineState::waiting: return "waiting";
    case GoroutineState::blocking: return "syscall";
    case GoroutineState::dead: return "dead";
  }
  return "unknown";
}

Goroutine* self() noexcept {
  Machine* m = this_machine();
  if (m != nullptr) {
    Goroutine* g = m->curg.load(std::memory_order_relaxed);
    if (g != nullptr) return g;
  }
  return thread_record();
}

bool in_goroutine() noexcept {
  Machine* m = this_machine();
  return m != nullptr && m->curg.load(std::memory_order_relaxed) != nullptr;
}

void park(UnlockFn unlock, void* arg, WaitReason reason) {
  Machine* m = this_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (g == nullptr) {
    thread_park(thread_record(), unlock, arg, reason);
    return;
  }
  if (g->unwind) [[unlikely]] {
    if (unwind_due(g)) {
      // Teardown resumed this goroutine at a switch point that cannot throw
      // (a preemption inside noexcept code), so it ran on and parks again:
      // nobody would ever wake it. Do what a park that teardown woke does:
      // release what the caller holds, then unwind from here; its waiter
      // is still linked (detail::park_abandoned).
      g->abandoned = true;
      if (unlock != nullptr) unlock(g, arg);
      maybe_unwind(g);
    }
    // A park in the middle of unwinding (a destructor that must wait):
    // whatever ends it is a ready().
    g->abandoned = false;
  }
  const bool in_blocking = g->status.load(std::memory_order_relaxed) == GStatus::kSyscall;
  if (in_blocking) {
    // Parking inside blocking(): leave the blocking state first (we need a P
    // to park properly), and come back to it afterwards.
    exit_blocking(g);
    m = current_machine();
  }
  g->wait_reason.store(reason, std::memory_order_relaxed);
  g->wait_since.store(g_runtime->coarse_now.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g->park_unlock = unlock;
  g->park_arg = arg;
  g->reason = SwitchReason::kPark;
  m->p->parks.add();
  m = switch_out(g);
  g->wait_reason.store(WaitReason::none, std::memory_order_relaxed);
  if (in_blocking) enter_blocking(m, g);
  maybe_unwind(g);
}

namespace detail {

bool park_abandoned() noexcept {
  Machine* m = this_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  return g != nullptr && g->abandoned;
}

bool unwinding() noexcept {
  Machine* m = this_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  return g != nullptr && g->unwind && std::uncaught_exceptions() > 0;
}

}  // namespace detail

void ready(Goroutine* g) noexcept {
  if (g->is_thread) {
    set_status<GStatus::kWaiting, GStatus::kRunnable>(g, std::memory_order_relaxed);
    g->thread_note.wakeup();
    return;
  }
  Machine* m = this_machine();
  if (m != nullptr && m->p != nullptr) {
    if (!ready_status(g)) return;
    // Into runnext: it runs as soon as the caller parks, which is usually
    // right away (a channel hand-off). Wake another M only if this pushed
    // an older goroutine into the queue, i.e. there is work to share; a
    // goroutine left waiting in runnext is caught by sysmon. (Go wakes an
    // M every time; the woken M then steals the pair apart. See
    // docs/design.md, "Waking Ms".)
    if (runq_put(m->p, g, /*next=*/true)) wake_p();
    return;
  }
  // A plain thread (or an M inside blocking()): the global queue.
  ExternalRef ref;
  if (!ref) return;  // the run is over; teardown unwinds g
  if (!ready_status(g)) return;
  global_runq_put(g);
  wake_p();
}

namespace {

// running_goroutine is the caller's goroutine, or null on a plain thread
// or inside blocking(), where yielding or sleeping means the thread's.
Goroutine* running_goroutine() noexcept {
  Machine* m = this_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  return g == nullptr || g->status.load(std::memory_order_relaxed) == GStatus::kSyscall ? nullptr : g;
}

}  // namespace

void yield() {
  Goroutine* g = running_goroutine();
  if (g == nullptr) {
    std::this_thread::yield();
    return;
  }
  g->reason = SwitchReason::kYield;
  switch_out(g);
  maybe_unwind(g);
}

namespace detail {

constinit thread_local std::atomic<bool> t_preempt{false};

void preempt_slow() noexcept {
  t_preempt.store(false, std::memory_order_relaxed);
  Machine* m = this_machine();
  if (m == nullptr) return;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  // Not on g0 (a timer callback), not inside blocking().
  if (g == nullptr || g->status.load(std::memory_order_relaxed) != GStatus::kRunning) return;
  g->reason = SwitchReason::kPreempt;
  suspend(g);
}

SpawnSlot spawn_reserve(std::size_t size, std::size_t align, const SourceLocation& where, bool relocatable) {
  Machine* m = this_machine();
  Processor* p = m != nullptr ? m->p : nullptr;
  Runtime* rt;
  Goroutine* parent = nullptr;
  Goroutine* g;
  if (p != nullptr) {
    rt = g_runtime;
    parent = m->curg.load(std::memory_order_relaxed);
    g = gfree_get(p);
  } else {
    // A plain thread (or an M inside blocking()): hold the runtime until commit.
    rt = external_acquire();
    if (rt == nullptr) throw std::logic_error("goro::go: called outside goro::run()");
    if (m != nullptr) parent = m->curg.load(std::memory_order_relaxed);
    try {
      g = nullptr;
      if (rt->records.get_batch(&g, 1) == 0) g = rt->records.make();
    } catch (...) {
      external_release();
      throw;
    }
  }
  g->id.store(next_goid(rt, p), std::memory_order_relaxed);
  g->parent_id.store(parent != nullptr ? parent->id.load(std::memory_order_relaxed) : 0,
                     std::memory_order_relaxed);
  g->file.store(where.file_name(), std::memory_order_relaxed);
  g->function.store(where.function_name(), std::memory_order_relaxed);
  g->line.store(static_cast<std::uint32_t>(where.line()), std::memory_order_relaxed);
  // The go() call: spawn_reserve is called from go(), inlined into the
  // caller (dumps symbolize this for "created by", skipping goro's frames).
  g->spawn_pc.store(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)), std::memory_order_relaxed);
  if (relocatable && size <= kInlineFnBytes && align <= 16) {
    g->fn = g->fn_buf;
    g->fn_on_heap = false;
  } else {
    g->fn = ::operator new(size);
    if (align > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(g->fn);
      throw std::invalid_argument("goro::go: over-aligned function objects this large are not supported");
    }
    g->fn_on_heap = true;
  }
  return SpawnSlot{g, g->fn};
}

static void release_reserved(Goroutine* g) noexcept {
  Machine* m = this_machine();
  Processor* p = m != nullptr ? m->p : nullptr;
  if (g->fn_on_heap) ::operator delete(g->fn);
  g->fn = nullptr;
  if (p != nullptr) {
    gfree_put(p, g);
  } else {
    g_runtime->records.put_batch(&g, 1);
    external_release();
  }
}

void spawn_cancel(Goroutine* g) noexcept { release_reserved(g); }

void spawn_commit(Goroutine* g, InvokeFn invoke, DestroyFn destroy, RelocateFn relocate) noexcept {
  Machine* m = this_machine();
  Processor* p = m != nullptr ? m->p : nullptr;
  Runtime* rt = g_runtime;
  g->invoke = invoke;
  g->destroy = destroy;
  g->relocate = relocate;
  if (rt->tearing_down) {
    // go() from a destructor while run() unwinds: the goroutine never runs,
    // but its function object is destroyed as usual.
    destroy(g->fn);
    release_reserved(g);
    return;
  }
  // No stack yet: it is bound when the goroutine first runs, and then the
  // goroutine moves into the stack's record (bind_stack). A spawn record
  // is never started, never parks (no wait reason) and is never held
  // (essay: Moving a record).
  g->unwind = false;
  g->unwind_throws = 0;
  // Release: a stack walker or a listing that loads kRunnable (acquire)
  // sees the identity spawn_reserve stored.
  set_status<GStatus::kDead, GStatus::kRunnable>(g, std::memory_order_release);
  rt->live.fetch_add(1, std::memory_order_relaxed);
  if (p != nullptr) {
    p->created.add();
    runq_put(p, g, /*next=*/true);
    wake_p();
    preempt_point();
  } else {
    global_runq_put(g);
    wake_p();
    external_release();
  }
}

// goro_blocking_enter_body is goro_blocking_enter's C++ half: the
// assembly has filled scope->regs_ and jumped here.
extern "C" __attribute__((visibility("hidden"))) void goro_blocking_enter_body(BlockingScope* scope) noexcept {
  scope->g_ = nullptr;
  Machine* m = this_machine();
  if (m == nullptr) return;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  if (g == nullptr || g->status.load(std::memory_order_relaxed) != GStatus::kRunning) return;
  scope->g_ = g;
  static_assert(sizeof(scope->regs_) == sizeof(RegisterState));
  g->syscall_regs = reinterpret_cast<const RegisterState*>(scope->regs_);
  enter_blocking(m, g);
}

BlockingScope::~BlockingScope() {
  if (g_ != nullptr) exit_blocking(g_);
}

}  // namespace detail

std::uint64_t goroutine_id() noexcept {
  Machine* m = this_machine();
  if (m == nullptr) return 0;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  return g != nullptr ? g->id.load(std::memory_order_relaxed) : 0;
}

namespace detail {

void set_job_site(const JobSite& site) noexcept {
  Machine* m = this_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  if (g == nullptr) return;
  // Dumps read these racily; the file pointer last on the way in and first
  // on the way out, so a reader that sees it sees the rest (or a mix of
  // two sites at worst, never a dangling pointer: they are literals).
  g->job_function.store(site.function, std::memory_order_relaxed);
  g->job_line.store(site.line, std::memory_order_relaxed);
  g->job_pc.store(site.pc, std::memory_order_relaxed);
  g->job_file.store(site.file, std::memory_order_release);
}

}  // namespace detail

void set_goroutine_name(const char* name) noexcept {
  Machine* m = this_machine();
  if (m == nullptr) return;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  if (g != nullptr) g->name.store(name, std::memory_order_relaxed);
}

namespace {

// park_until parks g until the monotonic time `when` (ns), however close
// or past it is: the caller decided a park is due.
void park_until(Goroutine* g, std::int64_t when) {
  // Arm the timer only once we are parked (Go's resetForSleep): the timer
  // cannot fire, and ready us, before we are ready to be readied.
  struct Arm {
    std::int64_t when;
    static bool unlock(Goroutine* g, void* self) {
      g->sleep_timer.start(static_cast<Arm*>(self)->when);
      return true;
    }
  } arm{when < kNoTimer ? when : kNoTimer - 1};
  try {
    park(&Arm::unlock, &arm, WaitReason::sleep);
  } catch (...) {
    g->sleep_timer.stop();
    throw;
  }
}

}  // namespace

void sleep_until(std::chrono::steady_clock::time_point t) {
  const std::int64_t when = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  Goroutine* g = running_goroutine();
  if (g == nullptr) {
    std::this_thread::sleep_until(t);
    return;
  }
  if (when <= now_ns()) return;
  park_until(g, when);
}

void sleep_for(std::chrono::nanoseconds d) {
  // As Go's time.Sleep: a positive duration always parks (and so lets
  // others run), even if the time is up by the time the timer is armed.
  if (d.count() <= 0) return;
  Goroutine* g = running_goroutine();
  if (g == nullptr) {
    std::this_thread::sleep_for(d);
    return;
  }
  const std::int64_t now = monotonic_now_ns();
  park_until(g, d.count() > kNoTimer - 1 - now ? kNoTimer - 1 : now + d.count());
}

}  // namespace goro
