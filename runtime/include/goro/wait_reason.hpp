// goro/wait_reason.hpp: why a goroutine is parked, in Go's words. Dumps,
// goroutines() and the CLI report it; the primitives pass it when they park.
#pragma once

#include <cstdint>

namespace goro {

// WaitReason is why a goroutine is parked, in Go's words (runtime2.go's
// waitReasonStrings); it is what dumps and goroutines() report.
enum class WaitReason : std::uint8_t {
  none,
  sleep,
  chan_receive,
  chan_send,
  chan_receive_nil_chan,
  chan_send_nil_chan,
  select,
  select_no_cases,
  sync_cond_wait,
  sync_mutex_lock,
  sync_rwmutex_rlock,
  sync_rwmutex_lock,
  sync_waitgroup_wait,
  semacquire,
  io_wait,
  future_get,
  preempted,
};

// to_string returns Go's text for a wait reason ("chan receive", ...).
const char* to_string(WaitReason reason) noexcept;

}  // namespace goro
