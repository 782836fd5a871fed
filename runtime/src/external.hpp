// external.hpp: how threads that are not Ms (plain threads) reach the runtime.
//
// A plain thread may call go(), ready() or num_goroutine() while run() is
// active, and may race with run()'s teardown. It takes an external
// reference first: a counter it increments before checking that the
// runtime still accepts outsiders. Teardown first stops accepting, then
// waits for the counter to drain, so a reference that was granted keeps the
// runtime alive until released. Both sides use sequentially consistent
// operations (a Dekker handshake): one of them always sees the other.
#pragma once

namespace goro::rt {

struct Runtime;

// external_acquire returns the active runtime with a reference held, or
// null if there is none (outside run(), or run() is tearing down).
Runtime* external_acquire() noexcept;
void external_release() noexcept;

// external_open / external_close_and_drain bracket a run (run_main only).
void external_open(Runtime* rt) noexcept;
void external_close_and_drain() noexcept;

class ExternalRef {
 public:
  ExternalRef() noexcept : rt_(external_acquire()) {}
  ~ExternalRef() {
    if (rt_ != nullptr) external_release();
  }
  ExternalRef(const ExternalRef&) = delete;
  ExternalRef& operator=(const ExternalRef&) = delete;
  explicit operator bool() const noexcept { return rt_ != nullptr; }
  Runtime* get() const noexcept { return rt_; }

 private:
  Runtime* rt_;
};

}  // namespace goro::rt
