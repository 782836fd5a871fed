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
// per park, nothing to forget to rethrow, and the cleanup sees whatever the
// throwing call reported through its out-parameters.
#pragma once

#include <exception>
#include <utility>

namespace goro::detail {

// OnUnwind calls f when its scope is left by an exception, and only then.
// f must not throw.
template <class F>
class OnUnwind {
 public:
  explicit OnUnwind(F f) noexcept : f_(std::move(f)), exceptions_(std::uncaught_exceptions()) {}
  ~OnUnwind() {
    if (std::uncaught_exceptions() > exceptions_) f_();
  }
  OnUnwind(const OnUnwind&) = delete;
  OnUnwind& operator=(const OnUnwind&) = delete;

 private:
  F f_;
  int exceptions_;
};

}  // namespace goro::detail
