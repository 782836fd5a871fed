// on_unwind.hpp: OnUnwind, the scope guard every sync primitive puts around
// its park so that a goroutine unwound by run()'s teardown leaves the
// primitive consistent.
//
// Why a destructor and not `catch (...) { cleanup(); throw; }`: the cleanup
// may have to yield (a Mutex handing ownership on in starvation mode) or
// even park (a Cond re-acquiring its Mutex). park() and yield() throw the
// teardown's exception again only when no exception is in flight; inside a
// catch handler none is (the exception counts as caught), during stack
// unwinding one is. So the cleanup runs in a destructor, while unwinding.
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
