// on_unwind.hpp: OnUnwind, the scope guard every sync primitive puts around
// its park so that a goroutine unwound by run()'s teardown leaves the
// primitive consistent.
//
// The cleanups never switch goroutines (no park, no yield; semrelease skips
// its handoff yield while an exception is in flight): the C++ runtime keeps
// the exception-handling state (std::uncaught_exceptions(), the caught
// exception stack) per thread, and goro's context switch does not save it
// per goroutine, so another goroutine run in the middle of this one's
// unwinding would see, and change, its exception state (a yield there ends
// in std::terminate). The one exception is Cond::wait, which must re-lock
// its Mutex and parks if another goroutine holds it (cond.cpp).
//
// Why a destructor and not `catch (...) { cleanup(); throw; }`: one place
// per park, nothing to forget to rethrow, and the cleanup runs while the
// exception is in flight, when park() would not throw again.
//
// Why dismiss() and not std::uncaught_exceptions(): that count is kept per
// thread, and goroutines share threads. A goroutine that parks in the middle
// of its own unwinding (a destructor locking a contended Mutex while an
// exception propagates) leaves the count raised for whichever goroutine runs
// next on that thread; a guard that compared counts would then fire on a
// normal return. So the normal path says so explicitly.
#pragma once

#include <utility>

namespace goro::detail {

// OnUnwind calls f when it is destroyed without dismiss() having been
// called: when the scope is left by an exception. f must not throw.
//
//   OnUnwind cleanup([&] { undo(); });
//   call_that_may_throw();
//   cleanup.dismiss();
template <class F>
class OnUnwind {
 public:
  explicit OnUnwind(F f) noexcept : f_(std::move(f)) {}
  ~OnUnwind() {
    if (armed_) f_();
  }
  OnUnwind(const OnUnwind&) = delete;
  OnUnwind& operator=(const OnUnwind&) = delete;

  void dismiss() noexcept { armed_ = false; }

 private:
  F f_;
  bool armed_ = true;
};

}  // namespace goro::detail
