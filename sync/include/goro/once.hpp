// Once: run an initialisation exactly once (Go's sync.Once).
//
//   goro::Once once;
//   Config* config;
//   void use() { once.call([] { config = load_config(); }); read(*config); }
//
// call(f) runs f on the first call only. Concurrent callers park (never
// blocking their thread; plain threads block) until that first f has
// finished, so every call() returns with f's work done. Later calls cost one
// atomic load.
//
// As in Go, if f throws, the exception reaches the caller that ran it, and
// the Once counts as done: f is not run again, and the other callers return
// normally. f must not call call() on the same Once (that waits forever).
// Waiting callers report the wait reason "sync.Mutex.Lock" (Go's, too: Once
// waits on a Mutex).
//
// Memory ordering: the return (or throw) of f happens before every call()
// returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "goro/mutex.hpp"

namespace goro {

class Once {
 public:
  constexpr Once() noexcept = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;
  // A Once may be destroyed while a goroutine runs f in it, or waits for
  // that: run()'s teardown then unwinds them without touching it.
  ~Once() {
    if ((m_.state_.load(std::memory_order_acquire) != 0 && done_.load(std::memory_order_relaxed) == 0) ||
        detail::run_exiting()) [[unlikely]] {
      destroyed();
    }
  }

  // call runs f unless some call() already ran (or is running) it; see above.
  template <class F>
  void call(F&& f) {
    // Acquire pairs with the release store in call_slow(): whoever sees
    // done sees everything f did.
    if (done_.load(std::memory_order_acquire) != 0) return;
    using Fn = std::remove_reference_t<F>;
    call_slow([](void* p) { std::invoke(std::forward<F>(*static_cast<Fn*>(p))); },
              const_cast<void*>(static_cast<const void*>(std::addressof(f))));
  }

  // done reports whether f has run (or thrown). For diagnostics and tests.
  [[nodiscard]] bool done() const noexcept { return done_.load(std::memory_order_acquire) != 0; }

 private:
  void call_slow(void (*invoke)(void*), void* f);
  void finish() noexcept;
  void destroyed() noexcept;

  std::atomic<std::uint32_t> done_{0};
  Mutex m_;
};

}  // namespace goro
