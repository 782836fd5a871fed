// context.cpp: the only user of Boost.Context, and the only place where the
// stack changes under the program's feet.
//
// We use the raw fcontext API (jump_fcontext/make_fcontext): 3-4 ns a
// switch, no allocation, and full control over where the sanitizer
// annotations sit. boost::context::fiber was rejected: under TSan its own
// instrumented entry/exit frames straddle the switches and leak shadow
// frames (see ../shared/notes/sanitizers-and-boost-context.md).
//
// Every switch goes through g0, the M's scheduler context:
//   g0 --resume(m, g)--> g        jump_fcontext(g->ctx, m): g learns its M
//   g  --suspend(g)----> g0       jump_fcontext(m->g0_ctx, g): g0 learns g's context
// The data word carries the M into the goroutine (it may be a different M
// from last time) and the goroutine back to g0.
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
#include <pthread.h>

#include <cstdio>
#include <exception>

#include "scheduler.hpp"
#include "sanitizers.hpp"

namespace goro::rt {

using boost::context::detail::fcontext_t;
using boost::context::detail::jump_fcontext;
using boost::context::detail::make_fcontext;
using boost::context::detail::transfer_t;

void run_goroutine(Goroutine* g) noexcept;  // goroutine.cpp: runs fn, never returns

namespace {

// entry is where a new goroutine starts: t.fctx is the g0 context of the M
// that switched us in, t.data that M.
void entry(transfer_t t) noexcept {
#if GORO_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  auto* m = static_cast<Machine*>(t.data);
  m->g0_ctx = t.fctx;
  Goroutine* g = m->curg.load(std::memory_order_relaxed);
  run_goroutine(g);
}

}  // namespace

void resume(Machine* m, Goroutine* g) noexcept {
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
  // Back on g0. t.data is the goroutine that switched out (always g).
  static_cast<Goroutine*>(t.data)->ctx = t.fctx;
}

Machine* suspend(Goroutine* g) noexcept {
  Machine* m = g->m;
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
  g->ctx = make_fcontext(sp, size, &entry);
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

void machine_context_fini(Machine* m) noexcept { (void)m; }

}  // namespace goro::rt
