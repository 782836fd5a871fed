// goro runtime: goroutines multiplexed M:N onto OS threads.
//
// A newcomer starts here. The runtime is Go's GMP scheduler:
//   G  a goroutine: a stackful coroutine with its own (pooled, lazily
//      committed) stack, created by go().
//   M  an OS thread ("machine") that runs goroutines.
//   P  a logical processor: a local run queue and caches. An M must hold a P
//      to run goroutines; there are gomaxprocs() Ps.
// run() boots the runtime and runs `main` as goroutine 1; it returns when
// main returns. Goroutines block by parking (the runtime's park/ready), never by
// blocking their thread, so millions of them can wait at once.
//
//   int rc = goro::run([] {
//     goro::WaitGroup wg;
//     for (int i = 0; i < 1000; ++i) { wg.add(1); goro::go([&] { work(); wg.done(); }); }
//     wg.wait();
//   });
//
// docs/design.md explains the machinery; docs/guide.md maps Go to goro.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "goro/detail/source_location.hpp"
#include "goro/introspect.hpp"
#include "goro/detail/fast_path.hpp"
#include "goro/wait_reason.hpp"

namespace goro {

// Options configures one run(). An aggregate: new fields go after these two.
struct Options {
  // procs is the number of Ps (GOMAXPROCS). 0: $GOMAXPROCS if set to a
  // positive integer, else the number of hardware threads.
  int procs = 0;
  // stack_size is each goroutine's usable stack in bytes, rounded up to whole
  // pages. 0: 64 KiB. Stacks are committed lazily, so a goroutine costs the
  // pages it touches, not this size.
  std::size_t stack_size = 0;
};

// Panic is what Go calls a panic: the runtime and the primitives throw it
// with Go's panic text ("send on closed channel", ...).
struct Panic : std::logic_error {
  using std::logic_error::logic_error;
};

namespace detail {

struct SpawnSlot {
  Goroutine* g;
  void* storage;  // where go() constructs the function object
};
using InvokeFn = void (*)(void*);
using DestroyFn = void (*)(void*) noexcept;
// RelocateFn move-constructs the function object at dst from the one at src
// and destroys src: a goroutine's record moves into its stack when it first
// runs. Null for a trivially copyable function object (its bytes are copied).
using RelocateFn = void (*)(void* dst, void* src) noexcept;

// spawn_reserve takes a goroutine (from the P's free list, usually) and room
// for a function object of `size` bytes; throws std::logic_error outside run().
// A function object whose move may throw goes on the heap (relocatable =
// false): it is never moved.
SpawnSlot spawn_reserve(std::size_t size, std::size_t align, const SourceLocation& where, bool relocatable = true);
// spawn_commit makes the reserved goroutine runnable. relocate is null when
// the function object is trivially copyable or on the heap.
void spawn_commit(Goroutine* g, InvokeFn invoke, DestroyFn destroy, RelocateFn relocate) noexcept;
// spawn_cancel returns a reserved goroutine whose function object never got built.
void spawn_cancel(Goroutine* g) noexcept;

int run_main(InvokeFn main, void* arg, const Options& options);

// JobSite is where a unit of work handed to another goroutine was
// submitted (a worker pool's job): dumps show it for the goroutine running
// the work. file and function must outlive the work (source_location's do).
struct JobSite {
  const char* file = nullptr;
  const char* function = nullptr;
  std::uint32_t line = 0;
  std::uintptr_t pc = 0;  // a return address in the submitting function (symbolized for the name)
};
// set_job_site tells dumps that the calling goroutine now runs work
// submitted at `site`; a default JobSite{} clears it. No-op off goroutines.
void set_job_site(const JobSite& site) noexcept;

class BlockingScope;
// goro_blocking_enter records the caller's registers in scope->regs_ (so
// dumps can show the stack of a goroutine inside blocking()) and enters the
// blocking state. x86-64 assembly in the runtime.
extern "C" void goro_blocking_enter(BlockingScope* scope) noexcept;

// BlockingScope brackets a blocking call: Go's entersyscall/exitsyscall.
class BlockingScope {
 public:
  // Always inlined, so the registers captured describe the frame that
  // holds the scope, which stays put for the whole blocking call.
  [[gnu::always_inline]] inline BlockingScope() noexcept { goro_blocking_enter(this); }
  ~BlockingScope();
  BlockingScope(const BlockingScope&) = delete;
  BlockingScope& operator=(const BlockingScope&) = delete;

  // Written by goro_blocking_enter (the layout is the assembly's).
  Goroutine* g_ = nullptr;        // null on a plain thread: nothing to do
  std::uintptr_t regs_[8] = {};   // resume address, stack pointer, callee-saved registers
};

}  // namespace detail

// run boots the runtime with options.procs Ps, runs `main` as goroutine 1 and
// returns when main returns: 0, or main's int. Goroutines still alive then
// are unwound (their destructors run; see last_run_unwound()). run() may be
// called again afterwards, but not while a run is active.
template <class F>
int run(F&& main, Options options = {}) {
  int rc = 0;
  auto body = [&] {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      main();
    } else {
      rc = static_cast<int>(main());
    }
  };
  detail::run_main([](void* p) { (*static_cast<decltype(body)*>(p))(); }, &body, options);
  return rc;
}

namespace detail {

// spawn_at spawns fn (moved or copied onto the new goroutine's record: no
// allocation for small function objects) with `where` as its creation site.
template <class F>
void spawn_at(const SourceLocation& where, F&& fn) {
  using Fn = std::decay_t<F>;
  constexpr bool kRelocatable = std::is_nothrow_move_constructible_v<Fn>;
  const SpawnSlot slot = spawn_reserve(sizeof(Fn), alignof(Fn), where, kRelocatable);
  try {
    ::new (slot.storage) Fn(std::forward<F>(fn));
  } catch (...) {
    spawn_cancel(slot.g);
    throw;
  }
  RelocateFn relocate = nullptr;
  if constexpr (kRelocatable && !std::is_trivially_copyable_v<Fn>) {
    relocate = [](void* dst, void* src) noexcept {
      ::new (dst) Fn(std::move(*static_cast<Fn*>(src)));
      static_cast<Fn*>(src)->~Fn();
    };
  }
  spawn_commit(
      slot.g, [](void* p) { (*static_cast<Fn*>(p))(); }, [](void* p) noexcept { static_cast<Fn*>(p)->~Fn(); },
      relocate);
}

// Bound is what go(f, args...) runs: decayed copies of f and its arguments,
// made by the caller, invoked as rvalues on the new goroutine (what
// std::thread does).
template <class Fn, class... Args>
struct Bound {
  template <class F, class... A>
  explicit Bound(F&& f, A&&... a) : fn(std::forward<F>(f)), args(std::forward<A>(a)...) {}
  void operator()() {
    std::apply([this](Args&... a) { std::invoke(std::move(fn), std::move(a)...); }, args);
  }
  Fn fn;
  std::tuple<Args...> args;
};

// GoCall is the first parameter of go(f, args...). A variadic go() cannot
// end with a defaulted SourceLocation, so the call site is captured here
// instead: GoCall is built implicitly from f, at the call site, by a
// constructor whose defaulted argument is SourceLocation::current(). Its
// type depends only on the arguments' types (go() deduces those from
// args), so it remembers f by address and the function that spawns f's
// type; both compilers inline that call away when optimising.
template <class... Args>
class GoCall {
 public:
  template <class F>
  GoCall(F&& fn, SourceLocation where = SourceLocation::current()) noexcept  // NOLINT: implicit on purpose
      : where_(where) {
    if constexpr (std::is_function_v<std::remove_reference_t<F>>) {
      fn_.function = reinterpret_cast<void (*)()>(&fn);
    } else {
      fn_.object = const_cast<void*>(static_cast<const void*>(std::addressof(fn)));
    }
    spawn_ = &spawn_with<F>;
  }

  void operator()(Args&&... args) const { spawn_(fn_, where_, std::forward<Args>(args)...); }

 private:
  union Target {
    void* object;
    void (*function)();
  };

  template <class F>
  static void spawn_with(Target target, const SourceLocation& where, Args&&... args) {
    using Fn = std::decay_t<F>;
    constexpr bool kCallable = std::is_invocable_v<Fn, std::decay_t<Args>...>;
    static_assert(kCallable,
                  "goro::go(f, args...): f must be callable with the arguments, as std::thread calls it: "
                  "with decayed copies passed as rvalues (std::ref passes a reference)");
    using Run = Bound<Fn, std::decay_t<Args>...>;
    if constexpr (!kCallable) {
      // The static_assert has said it; nothing more to report.
    } else if constexpr (std::is_function_v<std::remove_reference_t<F>>) {
      spawn_at(where, Run(reinterpret_cast<Fn>(target.function), std::forward<Args>(args)...));
    } else {
      spawn_at(where, Run(std::forward<F>(*static_cast<std::remove_reference_t<F>*>(target.object)),
                          std::forward<Args>(args)...));
    }
  }

  Target fn_{};
  void (*spawn_)(Target, const SourceLocation&, Args&&...) = nullptr;
  SourceLocation where_;
};

}  // namespace detail

// go spawns fn as a new goroutine: Go's `go fn()`. Callable from goroutines
// and from plain threads while run() is active; elsewhere it throws
// std::logic_error. The function object is moved into the new goroutine's
// record (no allocation unless it is large or its move constructor may
// throw: then it goes on the heap, and stays there), and a small one is
// moved once more, by the new goroutine itself, as it starts. `where`, the
// call site by default, is what dumps report as the creation site; a
// wrapper that spawns for its caller (ErrGroup::go) passes its own caller's.
// An exception escaping fn is fatal: "panic: <what()>", a dump, abort().
template <class F>
void go(F&& fn, SourceLocation where = SourceLocation::current()) {
  constexpr bool kCallable = std::is_invocable_v<std::decay_t<F>&>;
  static_assert(kCallable, "goro::go(f): f must be callable with no arguments (or pass them: go(f, args...))");
  if constexpr (kCallable) detail::spawn_at(where, std::forward<F>(fn));
}

// go(f, args...) spawns f(args...), as std::thread(f, args...) would run
// it: f and the arguments are decay-copied (or moved) by the caller, then
// passed to f as rvalues on the new goroutine. Go's `go f(x, y)` evaluates
// x and y in the caller in the same way. Use std::ref(x) to pass a
// reference. The creation site is the call site, as for go(f).
template <class... Args>
  requires(sizeof...(Args) > 0)
void go(detail::GoCall<std::type_identity_t<Args>...> fn, Args&&... args) {
  fn(std::forward<Args>(args)...);
}

// yield lets other goroutines run (runtime.Gosched): the caller goes to the
// back of its P's run queue. On a plain thread it yields the OS thread.
void yield();

// num_goroutine is the number of live goroutines, main included
// (runtime.NumGoroutine). Exact: one counter, updated at spawn and at exit.
std::int64_t num_goroutine() noexcept;

// gomaxprocs is the number of Ps of the active run (0 outside run()).
int gomaxprocs() noexcept;

// goroutine_id is the running goroutine's id; 0 outside a goroutine. Main is
// 1 in every run; ids are never reused within a run.
std::uint64_t goroutine_id() noexcept;

// in_goroutine reports whether the caller runs on a goroutine.
bool in_goroutine() noexcept;

// set_goroutine_name names the running goroutine in dumps (no-op on a plain
// thread); `name` must outlive the goroutine (a string literal).
void set_goroutine_name(const char* name) noexcept;

// sleep_for parks the calling goroutine for at least d (time.Sleep); a zero
// or negative d returns at once. On a plain thread it sleeps the thread.
void sleep_for(std::chrono::nanoseconds d);
void sleep_until(std::chrono::steady_clock::time_point t);

// blocking runs f, a call that blocks its OS thread (file I/O, a C library),
// as Go runs a system call: if f takes longer than ~20 µs, sysmon hands this
// goroutine's P to another thread so the other goroutines keep running.
template <class F>
auto blocking(F&& f) -> decltype(std::forward<F>(f)()) {
  detail::BlockingScope scope;
  return std::forward<F>(f)();
}

// last_run_unwound is how many goroutines were still alive when the last
// run()'s main returned (and were therefore unwound).
std::int64_t last_run_unwound() noexcept;

// last_run_leftovers describes those goroutines, as goroutines() did at
// that moment (for leak reports).
std::vector<GoroutineInfo> last_run_leftovers();

// RunsMark is a point in this process's history of run()s. It exists for
// leak checks that outlive a run (goro::testing::LeakCheck made in a test
// body that calls run() several times): last_run_leftovers() forgets every
// run but the last, so they take a mark before and ask leftovers_since()
// after. Marks are only compared, never stored by the runtime.
struct RunsMark {
  std::uint64_t runs = 0;       // run()s that had ended
  std::uint64_t leftovers = 0;  // goroutines those runs left alive, in all
};

// runs_mark returns the current mark. A run counts as ended once its main
// has returned and its leftovers are recorded (before they are unwound).
// Any thread, any time.
RunsMark runs_mark();

// Leftover is one goroutine a run left alive. `run` tells runs apart (ids
// restart at 1 in every run): RunsMark::runs just after that run ended.
struct Leftover {
  std::uint64_t run = 0;
  GoroutineInfo goroutine;  // as goroutines() described it when main returned
};

// Leftovers is what leftovers_since returns.
struct Leftovers {
  std::vector<Leftover> goroutines;  // oldest run first, by id within a run
  std::uint64_t dropped = 0;         // also left alive, but forgotten (see below)
};

// leftovers_since describes the goroutines left alive by every run() that
// ended after `mark` was taken, as last_run_leftovers() does for one run.
// The process remembers only the newest 1000 descriptions, so memory stays
// bounded however many leaky runs a test binary makes; `dropped` counts
// the older ones since the mark. Any thread, any time.
Leftovers leftovers_since(const RunsMark& mark);

}  // namespace goro
