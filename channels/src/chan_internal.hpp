// chan_internal.hpp: what chan.cpp and select.cpp share.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/chan.hpp"
#include "goro/detail/chan_core.hpp"

namespace goro::detail {

// SelectState is shared by all the waiters one blocked select enqueued.
// Exactly one waker wins it (the CAS on done, Go's g.selectDone); the winner
// records which waiter it completed and readies the select.
struct SelectState {
  std::atomic<std::uint32_t> done{0};
  ChanWaiter* winner = nullptr;  // written by the winning waker before ready()
};

// Transfers between a waiting peer and the caller. Called with c->lock held.
// send_to_waiter: a receiver w is parked; move the value at src into its result.
void send_to_waiter(ChanBase* c, ChanWaiter* w, void* src) GORO_REQUIRES(c->lock);
// recv_from_waiter: a sender w is parked (so an unbuffered channel, or a full
// buffer); receive into result and let w's value take the freed slot.
void recv_from_waiter(ChanBase* c, ChanWaiter* w, void* result) GORO_REQUIRES(c->lock);
// buffer_push / buffer_pop: the ring buffer.
void buffer_push(ChanBase* c, void* src) GORO_REQUIRES(c->lock);
void buffer_pop(ChanBase* c, void* result) GORO_REQUIRES(c->lock);

}  // namespace goro::detail
