// netpoll.hpp: the runtime's network poller as seen by the net module (Go's
// runtime_poll* functions, which internal/poll calls). Not user API:
// goro::net and goro::wait_readable are built on it. The design essay is at
// the top of runtime/src/netpoll.cpp.
//
// A PollDesc is the runtime's record of one non-blocking descriptor: it is
// registered once with the process's epoll instance (edge-triggered, both
// directions) and holds the goroutine parked for reading and the one parked
// for writing, the read and write deadlines and their timers. Callers keep
// Go's discipline:
//   - at most one reader and one writer wait on a PollDesc at a time (the
//     net module's fdMutex serializes them);
//   - poll_unblock (eviction) comes before poll_close, and poll_close only
//     after every waiter has left (the last user of the descriptor calls it,
//     then closes the descriptor).
#pragma once

#include <cstdint>

namespace goro::detail {

struct PollDesc;

// PollMode says which half of a descriptor an operation waits on.
enum class PollMode : std::uint8_t { read = 'r', write = 'w' };

// PollResult is what poll_reset and poll_wait report.
enum class PollResult : std::uint8_t {
  ok = 0,       // go ahead: retry the system call
  closing = 1,  // the descriptor was evicted (closed): "use of closed network connection"
  timeout = 2,  // the deadline of this half has passed: "i/o timeout"
};

// PollOwner is the net module's object behind a PollDesc: what run()'s
// teardown uses to close the descriptors a run opened and left open.
// Both are called with the poller's registry consistent: pin() under its
// lock (it must not block), close_and_unpin() without it.
class PollOwner {
 public:
  // pin keeps the owner alive until close_and_unpin (a reference count).
  virtual void pin() noexcept = 0;
  // close_and_unpin closes the descriptor as close() does, without waiting
  // for its users (they are woken and the last one closes it), then drops
  // the pin.
  virtual void close_and_unpin() noexcept = 0;

 protected:
  ~PollOwner() = default;
};

// poll_open registers fd (non-blocking) with the poller, edge-triggered for
// both directions. owner (null for a descriptor goro does not own, as
// wait_readable's) is closed by the teardown of the run active now, if it
// is still open then. Returns the record, or null with *err set to the
// errno of epoll_ctl (EPERM: fd cannot be polled, a regular file; EEXIST:
// fd is registered already). Any thread, in or out of run().
PollDesc* poll_open(int fd, PollOwner* owner, int* err) noexcept;

// poll_close recycles the record. Called once, after poll_unblock and
// after every waiter has left; the caller closes the descriptor afterwards
// (for a descriptor with an owner, that close is what removes it from
// epoll; one without is removed here, as it stays open).
void poll_close(PollDesc* pd) noexcept;

// poll_reset prepares one half for a system call: reports closing or an
// expired deadline, else forgets stale readiness.
PollResult poll_reset(PollDesc* pd, PollMode mode) noexcept;

// poll_wait waits until the half is ready (a readiness event, possibly
// spurious: the caller retries its system call), closed, or past its
// deadline. A goroutine parks (wait reason "IO wait"); a plain thread blocks
// in ppoll. May throw only goro's teardown unwinding.
PollResult poll_wait(PollDesc* pd, PollMode mode);

// poll_maybe_ready reports whether a readiness event for the half arrived
// since the last poll_reset or wake-up, or the peer ever hung up (see
// netpoll.cpp, "Skipping the EAGAIN call"). False means the last system
// call's "would block" or short read still stands (or its event is still
// queued in epoll, and a poll will wake the caller).
bool poll_maybe_ready(PollDesc* pd, PollMode mode) noexcept;

// poll_set_deadline sets the deadline of one or both halves: when_ns is a
// CLOCK_MONOTONIC time, 0 for none; a time already past expires the half at
// once and wakes a call parked on it.
void poll_set_deadline(PollDesc* pd, std::int64_t when_ns, bool read, bool write) noexcept;

// poll_unblock (Go's evict) marks the record closing and wakes every waiter;
// they return PollResult::closing. Idempotent.
void poll_unblock(PollDesc* pd) noexcept;

}  // namespace goro::detail
