// Context: Go's context package: cancellation and deadlines that flow from a
// parent to everything derived from it.
//
//   auto [ctx, cancel] = goro::with_timeout(goro::background(), 100ms);
//   goro::select(goro::on_recv(ctx.done(), [](auto) { /* cancelled or timed out */ }),
//                goro::on_recv(results, [](auto r) { ... }));
//   cancel();  // always call it: it releases the context's resources
//
// Cancelling a context closes its done() channel exactly once and cancels
// every context derived from it; err() then says why. Calling a CancelFunc
// again does nothing. A child inherits its parent's deadline when that is
// earlier than its own. Contexts are cheap handles (shared ownership) and
// safe to use from any goroutine or thread.
//
// Memory ordering: a cancel happens before the receive that sees done()
// closed, and before err() returns a non-none value.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "goro/chan.hpp"

namespace goro {

enum class ContextError { none, canceled, deadline_exceeded };

// to_string: Go's error texts, "context canceled" and "context deadline exceeded".
const char* to_string(ContextError e) noexcept;

namespace detail {
struct ContextState;
}

class Context {
 public:
  // A default-constructed Context is background().
  Context() = default;

  // done is closed when the context is cancelled or its deadline passes.
  // background()'s is the nil channel (never ready), as in Go.
  Chan<Unit> done() const;
  ContextError err() const;
  std::optional<std::chrono::steady_clock::time_point> deadline() const;

  explicit Context(std::shared_ptr<detail::ContextState> s) noexcept : s_(std::move(s)) {}
  const std::shared_ptr<detail::ContextState>& state() const noexcept { return s_; }

 private:
  std::shared_ptr<detail::ContextState> s_;  // null: background
};

// CancelFunc cancels its context (context.CancelFunc); idempotent.
using CancelFunc = std::function<void()>;

Context background();
Context todo();
std::pair<Context, CancelFunc> with_cancel(Context parent);
std::pair<Context, CancelFunc> with_deadline(Context parent, std::chrono::steady_clock::time_point t);
std::pair<Context, CancelFunc> with_timeout(Context parent, std::chrono::nanoseconds d);

}  // namespace goro
