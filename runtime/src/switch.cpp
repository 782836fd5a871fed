// switch.cpp: the only user of Boost.Context, and the only place where the
// stack changes under the program's feet.
//
// We use the raw fcontext API (jump_fcontext/make_fcontext): 3-4 ns a
// switch, no allocation, and full control over where the sanitizer
// annotations sit. boost::context::fiber was rejected: under TSan its own
// instrumented entry/exit frames straddle the switches and leak shadow
// frames (docs/design.md, "Sanitizers").
//
// Switches go through g0, the M's scheduler context:
//   g0 --resume(m, g)--> g        jump_fcontext(g->ctx, m): g learns its M
//   g  --suspend(g)----> g0       jump_fcontext(m->g0_ctx, g): g0 learns g's context
// The data word carries the M into the goroutine (it may be a different M
// from last time) and the goroutine back to g0.
//
// Or directly, goroutine to goroutine (switch_direct): when a goroutine
// parks, yields or exits and its P has another one at hand (a channel
// hand-off leaves the partner in runnext), going through g0 would cost two
// switches and a trip through the scheduler loop, each switch breaking the
// CPU's return prediction. Instead ontop_fcontext jumps straight into the
// next goroutine and runs direct_hook on top of its stack first: the hook
// does for the goroutine that left what g0 would have done after resume()
// (save its context, check its stack, run park's unlock function, queue or
// free it), then returns {g0's context, M} as if g0 had resumed the next
// goroutine. g0 stays suspended in resume() throughout, and whichever
// goroutine eventually switches to g0 is the one resume() reports.
// A fresh goroutine entered this way receives the hook's result in
// rax:rdx, not rdi:rsi (make_fcontext's trampoline assumes jump_fcontext),
// hence the three-instruction entry stub below.
//
// C++ exception state: the C++ runtime keeps, per thread, the exceptions
// being handled and the count of exceptions in flight (__cxa_eh_globals).
// A goroutine may park inside a catch block or in a destructor run by
// unwinding, and resume on another thread; another goroutine must not see
// its exceptions meanwhile. So the side that jumps away saves the thread's
// state into its own context record and installs the target's
// (swap_eh_state). Where the thread keeps that state is fixed for the
// thread's life, so each M asks __cxa_get_globals once (machine_context_init)
// and the switches use its answer: the call, through the TLS resolver of a
// shared libstdc++, was 3.5% of a channel pipeline's instructions. The
// switch reads the M from the goroutine that jumps, before the jump (it
// may resume on another thread).
//
// Sanitizer protocol (Debian's Boost 1.74 has no hooks, so we annotate):
//   TSan: __tsan_switch_to_fiber(target, 0) in the same function as the
//     jump, just before it, with everything the jump needs already in
//     locals (accesses in between would count as the target's). Flags 0
//     make each switch a release/acquire. Fibers are created at spawn and
//     destroyed from g0 after the goroutine's last switch.
//   ASan: __sanitizer_start_switch_fiber(&save, target_bottom, size) just
//     before the jump and __sanitizer_finish_switch_fiber(save, ...) just
//     after it returns; a new goroutine finishes first thing; a dying one
//     passes a null save slot so its fake stack is freed.
#include <cxxabi.h>
#include <pthread.h>

#include <cstdio>
#include <exception>

#include "scheduler.hpp"
#include "sanitizers.hpp"

namespace goro::rt {

using boost::context::detail::fcontext_t;
using boost::context::detail::jump_fcontext;
using boost::context::detail::make_fcontext;
using boost::context::detail::ontop_fcontext;
using boost::context::detail::transfer_t;

// goroutine.cpp: runs fn, never returns. Not noexcept: see there.
void run_goroutine(Goroutine* g);

}  // namespace goro::rt

// goro_rt_entry is where a new goroutine starts: t.fctx is the g0 context of
// the M that switched us in, t.data that M.
// Not noexcept: an exception that escapes a goroutine must find no handler
// on its stack (run_goroutine explains why).
extern "C" __attribute__((visibility("hidden"))) void goro_rt_entry(boost::context::detail::transfer_t t);
extern "C" __attribute__((visibility("hidden"))) void goro_rt_entry_stub(boost::context::detail::transfer_t t) noexcept;

#if defined(__x86_64__)
// The stub moves the transfer from rax:rdx (where both jump_fcontext and an
// ontop function's return leave it) to the argument registers. Entered by
// a jump from make_fcontext's trampoline with the stack aligned as after a
// call, so the tail jump keeps entry's alignment right.
asm(R"(
  .text
  .globl goro_rt_entry_stub
  .hidden goro_rt_entry_stub
  .type goro_rt_entry_stub,@function
goro_rt_entry_stub:
  movq %rax, %rdi
  movq %rdx, %rsi
  jmp goro_rt_entry
  .size goro_rt_entry_stub, .-goro_rt_entry_stub
)");
#else
#error "goro's context switch supports x86-64 only (the entry stub is x86-64 assembly)"
#endif

extern "C" void goro_rt_entry(boost::context::detail::transfer_t t) {
  using goro::Goroutine;
  using goro::rt::Machine;
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  auto* m = static_cast<Machine*>(t.data);
  m->g0_ctx = t.fctx;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  goro::rt::run_goroutine(g);
}

namespace goro::rt {

namespace {

// The layout of __cxa_eh_globals in libsupc++ and libc++abi (x86-64).
struct CxaEhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

// swap_eh_state saves m's thread's exception state into `save` and installs `load`.
inline void swap_eh_state(const Machine* m, EhState& save, const EhState& load) noexcept {
  auto* g = static_cast<CxaEhGlobals*>(m->eh_globals);
  save.caught_exceptions = g->caught_exceptions;
  save.uncaught_exceptions = g->uncaught_exceptions;
  g->caught_exceptions = load.caught_exceptions;
  g->uncaught_exceptions = load.uncaught_exceptions;
}

// direct_hook runs on top of the incoming goroutine's stack, right after a
// direct switch (see the top of this file).
transfer_t direct_hook(transfer_t t) noexcept {
  auto* from = static_cast<Goroutine*>(t.data);
  from->ctx = t.fctx;
  Machine* m = from->m;
  finish_switch_out_direct(m, from);
  return transfer_t{m->g0_ctx, m};
}

}  // namespace

Goroutine* resume(Machine* m, Goroutine* g) noexcept {
  swap_eh_state(m, m->g0_eh, g->eh);
  fcontext_t to = g->ctx;
#if GORO_TSAN
  void* fiber = g->tsan_fiber;
  __tsan_switch_to_fiber(fiber, 0);
#endif
#if GORO_ASAN
  __sanitizer_start_switch_fiber(&m->asan_fake_stack, g->stack.lo,
                                 static_cast<std::size_t>(g->stack.hi - g->stack.lo));
#endif
  transfer_t t = jump_fcontext(to, m);
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(m->asan_fake_stack, nullptr, nullptr);
#endif
  // Back on g0. t.data is the goroutine that switched out: g, or another
  // one g handed the M to directly.
  auto* out = static_cast<Goroutine*>(t.data);
  out->ctx = t.fctx;
  return out;
}

Machine* switch_direct(Goroutine* from, Goroutine* to) noexcept {
  swap_eh_state(from->m, from->eh, to->eh);
  fcontext_t target = to->ctx;
#if GORO_TSAN
  void* fiber = to->tsan_fiber;
  __tsan_switch_to_fiber(fiber, 0);
#endif
  const bool dying = from->reason == SwitchReason::kExit;
  transfer_t t = ontop_fcontext(target, from, &direct_hook);
  if (dying) __builtin_unreachable();
  auto* now = static_cast<Machine*>(t.data);
  now->g0_ctx = t.fctx;
  return now;
}

Machine* suspend(Goroutine* g) noexcept {
  Machine* m = g->m;
  swap_eh_state(m, g->eh, m->g0_eh);
  fcontext_t to = m->g0_ctx;
#if GORO_TSAN
  void* fiber = m->tsan_g0_fiber;
  __tsan_switch_to_fiber(fiber, 0);
#endif
  const bool dying = g->reason == SwitchReason::kExit;
#if GORO_ASAN
  // A dying goroutine passes no save slot: ASan frees its fake stack.
  __sanitizer_start_switch_fiber(dying ? nullptr : &g->asan_fake_stack, m->stack_bottom, m->stack_size);
#endif
  transfer_t t = jump_fcontext(to, g);
  if (dying) __builtin_unreachable();
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(g->asan_fake_stack, nullptr, nullptr);
#endif
  auto* now = static_cast<Machine*>(t.data);
  now->g0_ctx = t.fctx;
  return now;
}

void prepare_context(Goroutine* g, char* sp) noexcept {
  const auto size = static_cast<std::size_t>(sp - g->stack.lo);
  g->ctx = make_fcontext(sp, size, &goro_rt_entry_stub);
  g->eh = EhState{};
#if GORO_TSAN
  g->tsan_fiber = __tsan_create_fiber(0);
#endif
  g->asan_fake_stack = nullptr;
}

void context_destroyed(Goroutine* g) noexcept {
#if GORO_TSAN
  if (g->tsan_fiber != nullptr) {
    __tsan_destroy_fiber(g->tsan_fiber);
    g->tsan_fiber = nullptr;
  }
#else
  (void)g;
#endif
}

void machine_context_init(Machine* m) noexcept {
  m->eh_globals = abi::__cxa_get_globals();
#if GORO_TSAN
  m->tsan_g0_fiber = __tsan_get_current_fiber();
#endif
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &addr, &size);
    m->stack_bottom = addr;
    m->stack_size = size;
    pthread_attr_destroy(&attr);
  }
}


}  // namespace goro::rt
