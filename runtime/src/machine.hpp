// machine.hpp: M, an OS thread that runs goroutines.
//
// Each M runs the scheduler loop on its own thread stack ("g0", as Go calls
// the scheduling context): find a runnable goroutine, switch into it, and
// when it switches back, act on why (park, yield, exit, ...). Goroutines
// never run the scheduler on their own stacks, so a goroutine's stack holds
// only its own frames, and park's unlock function runs only after the
// goroutine's context is saved.
//
// An M holds at most one P. Without one it sleeps on its note until start_m()
// hands it a P (nextp) and wakes it. One idle M at a time blocks in the
// network poller instead, until I/O or the earliest timer of all Ps
// (Runtime::lastpoll, netpoll.cpp).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>

#include <boost/context/detail/fcontext.hpp>

#include "eh_state.hpp"
#include "lock.hpp"

namespace goro {
class Goroutine;
}

namespace goro::rt {

struct Processor;

struct alignas(64) Machine {
  explicit Machine(int id_) : id(id_) {}

  const int id;

  // g0_ctx is the scheduler context, saved while a goroutine runs. Written by
  // the goroutine when it is switched in (jump_fcontext hands it over), read
  // by the goroutine when it switches out. Same thread throughout.
  boost::context::detail::fcontext_t g0_ctx = nullptr;

  // curg is the goroutine running on this M (null on g0). Written by the M;
  // read racily by sysmon and dumps.
  std::atomic<Goroutine*> curg{nullptr};

  // p is the P held (null when idle or inside blocking()). Owner only.
  Processor* p = nullptr;
  // oldp is the P left in kSyscall while inside blocking(); we try to get it back.
  Processor* oldp = nullptr;
  // nextp is the P handed over by start_m(); written before the note wakes us.
  Processor* nextp = nullptr;

  // spinning: looking for work without having found any (counted in
  // Runtime::nmspinning). Written by the owner (and by start_m under the
  // lock while the M sleeps); atomic only so schedtrace may read it.
  std::atomic<bool> spinning{false};

  // preempt points at this M's thread's detail::t_preempt, which asks the
  // goroutine running on this M to yield at its next runtime call: set by
  // sysmon, cleared by the M when it switches in a goroutine. Published
  // before the M runs anything; M threads outlive sysmon (run() stops it
  // first), so the pointer never dangles while sysmon can use it.
  std::atomic<std::atomic<bool>*> preempt{nullptr};

  Note park_note;                 // idle sleep
  Machine* idle_link = nullptr;   // Runtime::midle, under the scheduler lock
  bool on_idle_list = false;      // likewise
  std::atomic<bool> blocked{false};  // inside blocking() (for stats)
  // tid is the thread's kernel id (for sysmon's look at its state in
  // /proc); thread_blocked: sysmon found the thread asleep in the kernel
  // while running a goroutine outside blocking() (sysmon.cpp).
  std::atomic<int> tid{0};
  std::atomic<bool> thread_blocked{false};

  // Assigned under the scheduler lock just after the thread starts (the M
  // is in allm before that); never for M0 (the thread that called run()).
  std::thread thread;
  bool is_m0 = false;
  bool joined = false;              // run()'s own bookkeeping at exit
  std::atomic<bool> exited{false};  // set as the thread's last act

  std::uint64_t rng = 0;  // steal order when no P rng is at hand

  // g0's C++ exception state while a goroutine runs on this thread, and
  // where the thread keeps its own (__cxa_get_globals(), fixed for the
  // thread's life: asked once, not on every switch). switch.cpp.
  EhState g0_eh;
  void* eh_globals = nullptr;

  // Sanitizer state of g0 (switch.cpp).
  void* tsan_g0_fiber = nullptr;
  void* asan_fake_stack = nullptr;
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;

  // Alternate signal stack, so a stack overflow on a guard page can be reported.
  void* sigaltstack_mem = nullptr;
};

// current_machine returns the M of the calling thread (null on plain
// threads). Deliberately out of line and opaque to the optimiser: a
// goroutine may resume on another thread after any switch, so the
// thread-local must be re-read, never cached across a call.
Machine* current_machine() noexcept;

// set_current_machine installs m for the calling thread.
void set_current_machine(Machine* m) noexcept;

}  // namespace goro::rt
