// signals.cpp: turning a fault on a guard page into a stack-overflow report.
//
// A goroutine that overflows into its guard page faults (SIGSEGV). Each M
// has an alternate signal stack (the faulting stack is unusable); the
// handler checks whether the address lies in the running goroutine's guard
// page or just below its stack and, if so, prints the goroutine's id,
// creation site and stack size and aborts. Any other fault goes to the
// handler that was installed before us (or the default action): we restore
// it and return, so the fault repeats and reaches it.
//
// Under ASan and TSan the sanitizers own SIGSEGV; we install nothing and the
// canary/stack-pointer check at every switch remains.
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include <fmt/format.h>

#include "sanitizers.hpp"
#include "scheduler.hpp"

namespace goro::rt {
namespace {

constexpr std::size_t kAltStackSize = 64 * 1024;
// A frame bigger than the guard page can jump over it; faults this far below
// the stack are still blamed on the goroutine.
constexpr std::size_t kOverflowReach = 1 << 20;

struct sigaction g_old_segv;
struct sigaction g_old_bus;
struct sigaction g_old_quit;
bool g_installed = false;
bool g_quit_installed = false;

// kReportSize bounds the overflow report: its words and numbers, and a
// file name as long as any path the kernel takes (PATH_MAX), so nothing is
// cut. 4 KiB of the 64 KiB alternate stack.
constexpr std::size_t kReportSize = PATH_MAX + 160;

// report_overflow writes the stack-overflow report async-signal-safely:
// fmt::format_to_n into a buffer on this (alternate) stack allocates
// nothing, takes no lock and consults no locale (no 'L' specifier), and
// write(2) is async-signal-safe; one write also keeps the report in one
// piece.
void report_overflow(Goroutine* g) noexcept {
  char text[kReportSize];
  const char* file = g->file.load(std::memory_order_relaxed);
  const auto r = fmt::format_to_n(text, sizeof text,
                                  "runtime: goroutine {} stack exceeds its {}-byte limit (created at {}:{})\n"
                                  "fatal error: stack overflow\n",
                                  g->id.load(std::memory_order_relaxed),
                                  g_runtime != nullptr ? g_runtime->stacks.usable_size() : 0,
                                  file != nullptr ? file : "?", g->line.load(std::memory_order_relaxed));
  (void)!write(2, text, std::min(r.size, sizeof text));
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
  Machine* m = current_machine();
  Goroutine* g = m != nullptr ? m->curg.load(std::memory_order_acquire) : nullptr;
  if (g != nullptr && !g->is_thread) {
    const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const auto lo = reinterpret_cast<std::uintptr_t>(g->stack.lo);
    if (addr < lo && addr + kOverflowReach >= lo) {
      report_overflow(g);
      signal(SIGABRT, SIG_DFL);
      abort();
    }
  }
  // Not ours: hand it to whoever was there before.
  const struct sigaction& old = sig == SIGBUS ? g_old_bus : g_old_segv;
  if ((old.sa_flags & SA_SIGINFO) != 0 && old.sa_sigaction != nullptr) {
    old.sa_sigaction(sig, info, uctx);
    return;
  }
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN && old.sa_handler != nullptr) {
    old.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // return and fault again, this time fatally
}

// SIGQUIT (Ctrl-\\): as in Go, dump every goroutine. The handler only
// raises a flag and wakes sysmon, which writes the dump from its own thread
// (formatting a dump is not async-signal-safe).
void on_quit(int) {
  g_sigquit_pending.store(true, std::memory_order_release);
  wake_sysmon();
}

}  // namespace

std::atomic<bool> g_sigquit_pending{false};

void install_signal_handlers() {
  {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = &on_quit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    g_quit_installed = sigaction(SIGQUIT, &sa, &g_old_quit) == 0;
  }
  if (kUnderSanitizer) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = &on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
  g_installed = true;
}

void remove_signal_handlers() {
  if (g_quit_installed) {
    sigaction(SIGQUIT, &g_old_quit, nullptr);
    g_quit_installed = false;
  }
  if (!g_installed) return;
  sigaction(SIGSEGV, &g_old_segv, nullptr);
  sigaction(SIGBUS, &g_old_bus, nullptr);
  g_installed = false;
}

void machine_signal_init(Machine* m) {
  if (kUnderSanitizer) return;
  void* mem = mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  stack_t ss;
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  ss.ss_flags = 0;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, kAltStackSize);
    return;
  }
  m->sigaltstack_mem = mem;
}

void machine_signal_fini(Machine* m) {
  if (m->sigaltstack_mem == nullptr) return;
  stack_t ss;
  memset(&ss, 0, sizeof ss);
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(m->sigaltstack_mem, kAltStackSize);
  m->sigaltstack_mem = nullptr;
}

}  // namespace goro::rt
