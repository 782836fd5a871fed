// deadlock.cpp: the deadlock detector (Go's checkdead).
//
// An M about to sleep with no deadline calls check_dead. If every goroutine
// is parked (no P busy, nothing queued), no timer is pending, no goroutine
// waits on I/O or sits in blocking(), and no thread other than the
// runtime's own exists that could still wake one, nothing ever will: it
// prints Go's "all goroutines are asleep - deadlock!" with every stack and
// aborts. Plain threads cannot be seen parking or waking, so any thread
// the runtime does not own (a plain thread, a sanitizer's helper) keeps
// the detector silent: no false positives, at the price of missing a
// deadlock a foreign thread could not actually break.
// GORODEBUG=deadlock=0 turns it off.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "netpoll.hpp"
#include "goro/detail/print.hpp"
#include "scheduler.hpp"
#include "traceback.hpp"

namespace goro::rt {

namespace {

// foreign_threads counts the process's threads that are not the runtime's
// own (its Ms, sysmon, the introspection server): plain threads that may
// still wake a goroutine.
int foreign_threads(Runtime* rt) {
  // The kernel's own count ("Threads:" in /proc/self/status), read in one
  // go: listing /proc/self/task can skip an entry while threads come and go.
  int total = -1;
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "Threads:", 8) == 0) {
        total = std::atoi(line + 8);
        break;
      }
    }
    std::fclose(f);
  }
  if (total < 0) return 1;  // cannot tell: assume someone else is there
  int own = rt->runtime_threads.load(std::memory_order_relaxed) + introspect_server_threads() + traceback_threads();
  {
    LockGuard l(rt->lock);
    for (const auto& m : rt->allm) own += !m->exited.load(std::memory_order_relaxed);
  }
  return total - own;
}

// all_parked reports, under the scheduler lock, whether no P is busy (spares
// included), nothing is queued and no goroutine is inside blocking().
bool all_parked_locked(Runtime* rt) noexcept GORO_REQUIRES(rt->lock) {
  if (rt->npidle.load(std::memory_order_relaxed) != rt->procs || rt->runq.size() != 0) return false;
  // A spare P held by an M runs goroutines too (its M may be asleep in a
  // goroutine's own code, like a stranded P's).
  if (rt->spares_lent.load(std::memory_order_relaxed) != 0) return false;
  for (const auto& m : rt->allm) {
    if (m->blocked.load(std::memory_order_relaxed)) return false;
  }
  return true;
}

}  // namespace

// check_dead is Go's checkdead: called by an M about to sleep with no
// deadline. If every goroutine is parked (no P busy, nothing queued), no
// timer is pending, no goroutine is inside blocking(), and no thread other
// than the runtime's own exists that could still wake one, nothing ever
// will: report the deadlock and abort, as Go does. Any thread we do not own
// (a plain thread, a sanitizer's helper) keeps it silent: no false
// positives.
void check_dead(Runtime* rt) {
  if (rt->exiting.load(std::memory_order_relaxed) || rt->tearing_down) return;
  if (next_timer_when() != kNoTimer) return;
  // A goroutine waiting on I/O is not deadlocked: another process may
  // connect, write, or close (Go: the M blocked in netpoll counts as running).
  if (netpoll_waiters() > 0) return;
  std::uint64_t acquires;
  {
    LockGuard l(rt->lock);
    if (!all_parked_locked(rt)) return;
    acquires = rt->p_acquires.load(std::memory_order_relaxed);
  }
  if (rt->live.load(std::memory_order_relaxed) == 0) return;
  // The thread count is read without the lock: if any goroutine ran
  // meanwhile (it may have started a thread and parked again), the
  // snapshot is stale. With every P idle, running anything takes an
  // acquire_p: only a world that stood still the whole time is dead. And
  // it must stand still for a while: two looks 50 ms apart, both with no
  // foreign thread, so a thread caught starting or ending cannot fool us.
  // (A deadlock reported 50 ms late is still a deadlock reported.)
  for (int look = 0; look < 2; ++look) {
    if (look > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (foreign_threads(rt) > 0) return;
    LockGuard l(rt->lock);
    if (rt->exiting.load(std::memory_order_relaxed) || !all_parked_locked(rt) ||
        rt->p_acquires.load(std::memory_order_relaxed) != acquires || next_timer_when() != kNoTimer ||
        netpoll_waiters() > 0) {
      return;
    }
  }
  print_stderr("fatal error: all goroutines are asleep - deadlock!\n");
  dump_all_goroutines_to_stderr(nullptr, 1000);
  std::fflush(stderr);
  std::abort();
}

}  // namespace goro::rt
