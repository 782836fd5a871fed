// orphans.cpp: what a goroutine may touch after main returns.
//
// When main returns, run() resumes every goroutine still alive, one at a
// time on the thread that called run(), and throws ForcedUnwind out of the
// call it is parked in (design.md, "Lifecycle of a run"). Its destructors
// run, and so does goro's own cleanup in each primitive: the waiter takes
// itself out of the wait queue, gives back a lock or a unit a waker had
// already handed it, and so on, so that a primitive that outlives the run
// (a global Mutex, a channel the test body keeps) is consistent for the
// next one.
//
// The problem: the primitive may be dead by then. The most common leak in
// Go-style code is a goroutine that captured `this` or [&] and is parked
// on a member of an object that main has destroyed:
//
//   struct Server {
//     goro::Chan<int> requests{8}, acks{0};
//     void start() { goro::go([this] { for (int r : requests) acks.send(r); }); }
//   };
//
// Go does not care (the garbage collector keeps the channel alive, and the
// process just exits). goro must not let its cleanup lock a freed channel.
// Who may touch what:
//   - The user's own destructors in the unwound goroutine run as written;
//     if they touch main's dead objects, that is the user's use-after-free,
//     exactly as it would be with threads.
//   - goro's cleanup touches a primitive only if it is still alive. That is
//     what this file makes decidable.
//
// The mechanism. Three pieces, one for each way a primitive can be dead
// when a cleanup wants it:
//   1. A destructor that runs while goroutines wait on the primitive, or
//      while wake-ups to them are in flight (a waiter picked by an unlock
//      or a signal, readied but not yet run: it still has to take or pass
//      on what it was given), records the primitive's address with a
//      sequence number (primitive_destroyed, "busy"). The waiters stamped
//      the sequence number when they started waiting (wait_epoch), so a
//      cleanup can tell "my primitive died" from "another primitive died
//      at this address before mine was built": alive(p, stamp) is false
//      exactly when p was recorded after the stamp. Tables that outlive
//      the primitive (the semaphore table, keyed by address) are purged
//      of its waiters by the destructor, so that no new primitive at the
//      same address ever wakes them: they are orphans, parked until the
//      teardown unwinds them, shown by dumps and leak checks as before.
//   2. Wakers that have finished with a waiter (a channel hand-off, a
//      close, a Future's completion: the operation is complete, nothing is
//      left to undo) leave no trace in the primitive, which may then die
//      unrecorded. The runtime tells the cleanup: park_abandoned() is false
//      when a ready() ended the park before the teardown threw (also a
//      ready() during the teardown that found the goroutine already made
//      runnable by it). Channel and Future cleanups then touch nothing.
//   3. Plain threads keep running during the teardown and may destroy a
//      primitive at any moment, even one that is not busy (a plain thread
//      that has just taken the waiter out of a channel, and then drops its
//      last handle). So while run_exiting(), every destruction is recorded,
//      and recording takes the gate, a lock that every cleanup holds while
//      it touches its primitive (UnwindCleanup): a primitive cannot die
//      under a cleanup, and one that died before the cleanup took the gate
//      is recorded, with the destroyer's last use of it ordered before
//      (the gate's unlock). The teardown thread itself is exempt for
//      primitives that are not busy: it runs the cleanups one at a time,
//      and no later cleanup can want such a primitive.
// A select is the one waiter that needs its channels after an ordinary
// wake-up too (it unlinks its other waiters): it pins them instead
// (select.cpp, a count under each channel's lock, no atomics), and a
// channel whose last handle goes while pinned stays allocated until the
// select lets go.
//
// Costs. Hot paths pay nothing (the uncontended lock, send, receive): the
// stamps are taken on the slow paths, after a waiter has decided to wait,
// as one load of a global that is only written when a busy primitive dies.
// A destructor pays a load of its own state and of run_exiting(). The
// records of a run are dropped when its teardown ends; between teardowns,
// they only pile up for primitives destroyed while busy, which outside a
// run's end is a program that leaks goroutines on dead objects.
//
// Alternatives rejected:
//   - waiters pin what they wait on (a reference count per primitive):
//     channels have one, but taking and dropping it on every park is two
//     locked instructions on the channel's hottest path, and a Mutex or a
//     WaitGroup is a plain object in the user's struct, with no count and
//     no say over its own lifetime.
//   - the destructor marks each of its waiters orphaned: it can find the
//     waiters still queued, but not those already picked by a wake-up and
//     not yet run (the waker has forgotten them), and those still touch
//     the primitive in their cleanup.
//   - not unwinding goroutines parked on dead objects at all (Go's way):
//     run() cannot know which ones they are, and unwinding is the contract
//     (RAII, test binaries that call run() many times).
#include <mutex>
#include <new>
#include <unordered_map>

#include "goro/detail/lock.hpp"
#include "goro/park.hpp"
#include "scheduler.hpp"

namespace goro::detail {

std::atomic<bool> g_run_exiting{false};
std::atomic<std::uint64_t> g_destroyed_epoch{0};

namespace {

// The gate and the records it guards. A plain global: primitives with
// static storage may be destroyed at process exit, after this file's
// statics, so nothing here has a destructor that matters (the map is
// leaked on purpose).
Lock g_gate;
std::unordered_map<const void*, std::uint64_t>* g_destroyed = nullptr;  // under g_gate
bool g_records_lost = false;  // under g_gate: an allocation failed; alive() says no

// The gate nests: a cleanup may call code that takes it again.
thread_local int t_gate_depth = 0;
// Set on the thread that runs the teardown, while it does.
thread_local bool t_unwinding = false;

// The nesting depth is per thread, which clang's lock analysis cannot
// follow: gate_lock/gate_unlock are where it stops looking.
void gate_lock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  if (t_gate_depth++ == 0) g_gate.lock();
}

void gate_unlock() noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  if (--t_gate_depth == 0) g_gate.unlock();
}

}  // namespace

void primitive_destroyed(const void* p, bool busy) noexcept {
  // The teardown thread runs the cleanups itself, one at a time: a
  // primitive with nobody waiting and no wake-up in flight is wanted by
  // none of them.
  if (!busy && t_unwinding) return;
  gate_lock();
  const std::uint64_t seq = g_destroyed_epoch.load(std::memory_order_relaxed) + 1;
  try {
    if (g_destroyed == nullptr) g_destroyed = new std::unordered_map<const void*, std::uint64_t>();
    (*g_destroyed)[p] = seq;
  } catch (const std::bad_alloc&) {
    g_records_lost = true;
  }
  // Release: a waiter that stamps this value (acquire) started waiting
  // after the death, on a primitive built since.
  g_destroyed_epoch.store(seq, std::memory_order_release);
  gate_unlock();
}

UnwindCleanup::UnwindCleanup() noexcept {
  gate_lock();
  // A destructor that reads its primitive's state after we change it must
  // also see run_exiting() set (orphans.cpp, piece 3): it loads the state
  // (acquire), then the flag; this fence orders the flag, set before the
  // teardown began, before our changes.
  std::atomic_thread_fence(std::memory_order_release);
}

UnwindCleanup::~UnwindCleanup() { gate_unlock(); }

bool UnwindCleanup::alive(const void* p, std::uint64_t since) const noexcept {
  if (g_records_lost) return false;
  if (g_destroyed == nullptr) return true;
  const auto it = g_destroyed->find(p);
  return it == g_destroyed->end() || it->second <= since;
}

}  // namespace goro::detail

namespace goro::rt {

void orphans_teardown_begin() noexcept { detail::t_unwinding = true; }

void orphans_teardown_end() noexcept {
  detail::t_unwinding = false;
  detail::gate_lock();
  detail::g_run_exiting.store(false, std::memory_order_release);
  if (detail::g_destroyed != nullptr) detail::g_destroyed->clear();
  detail::g_records_lost = false;
  detail::gate_unlock();
}

void orphans_run_start() noexcept {
  // What primitives destroyed between runs recorded concerns no goroutine.
  detail::gate_lock();
  if (detail::g_destroyed != nullptr) detail::g_destroyed->clear();
  detail::g_records_lost = false;
  detail::gate_unlock();
}

}  // namespace goro::rt
