// chan.cpp: channels (Go's chan.go).
//
// A channel is a lock, a ring buffer of `cap` slots, and two FIFO queues of
// parked parties: receivers waiting for a value (recvq) and senders waiting
// for room or a receiver (sendq). Each queue entry is a ChanWaiter on the
// parked party's own stack (Go's sudog), holding where its value is (a
// sender) or goes (a receiver).
//
// Invariants (under the lock):
//   - at least one of recvq, sendq is empty;
//   - recvq non-empty => the buffer is empty (count == 0);
//   - sendq non-empty => the buffer is full (count == cap; for an
//     unbuffered channel, cap == 0);
//   - closed => sendq is empty (close wakes every sender, which then panics).
//
// Send, in order (chansend):
//   1. nil channel: park forever.          2. closed: panic.
//   3. a receiver is parked: move the value straight into its result (it
//      lives on the receiver's stack), unlock, ready it. A receiver readied
//      by a goroutine goes into that P's runnext slot, so an unbuffered
//      ping-pong stays on one P.
//   4. room in the buffer: move the value in.
//   5. otherwise: enqueue a waiter and park; the unlock runs after the
//      switch (park.hpp), so no wake-up can be lost. Woken with success =
//      false means the channel was closed: panic.
// Receive mirrors it; with a sender parked on a full buffer, the receiver
// takes the head of the buffer and moves the sender's value into the slot
// it freed, so FIFO order holds across the buffer and the queue.
// Close marks the channel closed and readies every waiter with success =
// false; receivers then drain the buffer before seeing "closed".
//
// Non-blocking operations (try_send, try_recv, a select with a default)
// first check, without the lock, whether the operation certainly cannot
// proceed (Go's fast path): a full channel, or an empty one.
//
// A goroutine unwound by run()'s teardown leaves park() with an exception;
// the operation then unlinks its waiter before rethrowing.
//
// Orphans (the runtime's orphans.cpp): the last handle of a channel may go
// while goroutines wait on it (they captured `this` of the object that held
// it). They can never be woken, and the channel is freed regardless; the
// release records the death when a waiter is queued (or while run() is
// ending), and each waiter stamps wait_epoch() before it parks, so its
// unwinding cleanup can tell that its channel is gone and leave it alone.
// A waiter that a peer or close() has already taken has nothing to undo
// (park_abandoned() is false) and does not touch the channel at all: it
// may have died unrecorded since. A blocked select needs its channels again
// after any wake-up, so it pins them instead (select_pins, select.cpp): a
// channel released while pinned is only marked dead, and the select that
// lets go last frees it.
//
// Alternatives rejected: lock-free queues (Go measured and kept the lock:
// the hand-off to a parked peer needs a consistent view of both queues and
// the buffer, and a lock-free design makes close and select much harder);
// a condition variable per channel (wakes threads, not goroutines).
#include <algorithm>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "chan_internal.hpp"

namespace goro::detail {

void WaitQueue::push(ChanWaiter* w) noexcept {
  w->next = nullptr;
  w->prev = last;
  if (last != nullptr) {
    last->next = w;
  } else {
    first.store(w, std::memory_order_relaxed);
  }
  last = w;
  w->queued = true;
}

void WaitQueue::remove(ChanWaiter* w) noexcept {
  if (!w->queued) return;
  if (w->prev != nullptr) {
    w->prev->next = w->next;
  } else {
    first.store(w->next, std::memory_order_relaxed);
  }
  if (w->next != nullptr) {
    w->next->prev = w->prev;
  } else {
    last = w->prev;
  }
  w->next = w->prev = nullptr;
  w->queued = false;
}

ChanWaiter* WaitQueue::dequeue() noexcept {
  for (;;) {
    ChanWaiter* w = first.load(std::memory_order_relaxed);
    if (w == nullptr) return nullptr;
    remove(w);
    if (w->sel != nullptr) {
      // A select's waiter: only one of its channels may complete it.
      std::uint32_t expected = 0;
      if (!w->sel->done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
      w->sel->winner = w;
    }
    return w;
  }
}

void send_to_waiter(ChanBase* c, ChanWaiter* w, void* src) {
  c->ops_->move_to_result(w->elem, src);
  w->success = true;
}

void recv_from_waiter(ChanBase* c, ChanWaiter* w, void* result) {
  if (c->cap_ == 0) {
    c->ops_->move_to_result(result, w->elem);
  } else {
    // Full buffer: take the head, then the sender's value fills the freed
    // slot, which is now the tail.
    void* head = c->slot(c->recvx);
    c->ops_->move_to_result(result, head);
    c->ops_->destroy(head);
    c->ops_->move_to_slot(head, w->elem);
    c->recvx = c->recvx + 1 == c->cap_ ? 0 : c->recvx + 1;
    c->sendx = c->recvx;
  }
  w->success = true;
}

void buffer_push(ChanBase* c, void* src) {
  c->ops_->move_to_slot(c->slot(c->sendx), src);
  c->sendx = c->sendx + 1 == c->cap_ ? 0 : c->sendx + 1;
  c->count.store(c->count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void buffer_pop(ChanBase* c, void* result) {
  void* head = c->slot(c->recvx);
  c->ops_->move_to_result(result, head);
  c->ops_->destroy(head);
  c->recvx = c->recvx + 1 == c->cap_ ? 0 : c->recvx + 1;
  c->count.store(c->count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

namespace {

[[noreturn]] void park_forever(WaitReason reason) {
  // A nil channel: nobody can ever wake us (teardown unwinds us by throwing).
  for (;;) park(nullptr, nullptr, reason);
}

// park_on parks the caller with w queued on c (c->lock held on entry,
// released by park). If the park is abandoned by an exception (teardown
// unwinding), w is unlinked before the exception continues, unless a waker
// had already taken it (then the channel may be gone, and there is nothing
// to undo) or the channel has been destroyed since (essay: Orphans).
// unpark_abandoned is park_on's unwinding cleanup, out of line so that
// park_on stays small enough to be inlined into the send and receive paths.
[[gnu::noinline, gnu::cold]] void unpark_abandoned(ChanBase* c, WaitQueue& q, ChanWaiter* w,
                                                   std::uint64_t since) noexcept {
  if (!park_abandoned()) return;
  UnwindCleanup guard;
  if (guard.alive(c, since)) {
    SpinGuard l(c->lock);
    q.remove(w);
  }
}

// unlock_chan is park_on's unlock function. It takes the channel rather
// than its lock (park_releasing's way), which keeps one register fewer
// live across the send and receive paths: 2-3 instructions an operation.
bool unlock_chan(Goroutine*, void* c) GORO_NO_THREAD_SAFETY_ANALYSIS {  // the parker's lock
  static_cast<ChanBase*>(c)->lock.unlock();
  return true;
}

// GORO_NO_THREAD_SAFETY_ANALYSIS: the release happens in unlock_chan.
inline void park_on(ChanBase* c, WaitQueue& q, ChanWaiter* w, WaitReason reason) GORO_RELEASE(c->lock)
    GORO_NO_THREAD_SAFETY_ANALYSIS {
  const std::uint64_t since = wait_epoch();
  q.push(w);
  try {
    park(&unlock_chan, c, reason);
  } catch (...) {
    unpark_abandoned(c, q, w, since);
    throw;
  }
}

}  // namespace

namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

// A channel's block: | ChanBase | buffer (cap slots) | extra (hooked channels) |.
std::size_t block_align(const ChanBase* c) noexcept {
  const std::size_t a = std::max(alignof(ChanBase), c->ops_->align);
  return c->hooks_ != nullptr ? std::max(a, kChanExtraAlign) : a;
}

std::size_t extra_offset(std::size_t header, std::size_t capacity, const ElemOps* ops) {
  return round_up(header + capacity * ops->size, kChanExtraAlign);
}

ChanBase* make_block(std::size_t capacity, const ElemOps* ops, std::size_t extra_size, const ChanHooks* hooks) {
  const std::size_t header = round_up(sizeof(ChanBase), ops->align);
  if (capacity > (std::size_t{1} << 40) / ops->size) throw std::length_error("goro::Chan: capacity out of range");
  std::size_t align = std::max(alignof(ChanBase), ops->align);
  std::size_t bytes = header + capacity * ops->size;
  if (hooks != nullptr) {
    align = std::max(align, kChanExtraAlign);
    bytes = extra_offset(header, capacity, ops) + extra_size;
  }
  // Plain new unless the block needs more than malloc's alignment: the
  // aligned operator new goes through memalign, which costs several times
  // more.
  void* mem = align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__ ? ::operator new(bytes)
                                                        : ::operator new(bytes, std::align_val_t(align));
  return ::new (mem) ChanBase(capacity, ops, static_cast<char*>(mem) + header, hooks);
}

}  // namespace

ChanBase* chan_make(std::size_t capacity, const ElemOps* ops) { return make_block(capacity, ops, 0, nullptr); }

ChanBase* chan_make_with(std::size_t capacity, const ElemOps* ops, std::size_t extra_size, const ChanHooks* hooks,
                         void** extra) {
  ChanBase* c = make_block(capacity, ops, extra_size, hooks);
  *extra = chan_extra(c);
  return c;
}

ChanBase* chan_of_extra(void* extra, std::size_t capacity, const ElemOps* ops) noexcept {
  return reinterpret_cast<ChanBase*>(static_cast<char*>(extra) -
                                     extra_offset(round_up(sizeof(ChanBase), ops->align), capacity, ops));
}

void* chan_extra(ChanBase* c) noexcept {
  const std::size_t header = static_cast<std::size_t>(static_cast<char*>(c->buf_) - reinterpret_cast<char*>(c));
  return reinterpret_cast<char*>(c) + extra_offset(header, c->cap_, c->ops_);
}

// chan_free: the last reference is gone (a handle's, or a hooked
// channel's owner's). Goroutines may still wait on it (essay: Orphans).
void chan_free(ChanBase* c) noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
  // The buffered values die with the last handle: nobody can receive them.
  // (No lock: waiters left behind never touch the buffer.)
  std::size_t n = c->count.load(std::memory_order_relaxed);
  for (std::size_t i = c->recvx; n > 0; --n, i = i + 1 == c->cap_ ? 0 : i + 1) c->ops_->destroy(c->slot(i));
  c->count.store(0, std::memory_order_relaxed);
  bool busy;
  bool pinned;
  {
    // Under the lock: a select still unlinking its waiters, or an
    // unwinding waiter, may be inside.
    SpinGuard l(c->lock);
    busy = !c->recvq.empty() || !c->sendq.empty();
    pinned = c->select_pins != 0;
    c->dead = pinned;  // the last select to let go frees it
  }
  if (busy || run_exiting()) [[unlikely]] primitive_destroyed(c, busy);
  if (!pinned) [[likely]] chan_dealloc(c);
}

void chan_dealloc(ChanBase* c) noexcept {
  const std::size_t align = block_align(c);
  c->~ChanBase();
  if (align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
    ::operator delete(static_cast<void*>(c));
  } else {
    ::operator delete(static_cast<void*>(c), std::align_val_t(align));
  }
}

void chan_retain(ChanBase* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(ChanBase* c) noexcept {
  if (c->hooks_ != nullptr) {
    c->hooks_->release(c);
    return;
  }
  // acq_rel: the last owner sees every other owner's writes before freeing.
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  chan_free(c);
}

namespace {

// send is Go's chansend(c, ep, block): hand the value to a parked
// receiver, else buffer it, else park until a receiver takes it (block) or
// report that it would block (!block: a select with a default, try_send).
// Always inlined into its two callers, so each is compiled for one value
// of block and pays nothing for the other's branches.
[[gnu::always_inline]] inline bool send(ChanBase* c, void* src, bool block) {
  if (c == nullptr) {
    if (!block) return false;
    park_forever(WaitReason::chan_send_nil_chan);
  }
  preempt_point();
  // Fast path for !block (Go's): not closed and certainly full means it
  // would block. A racy look, but one that was true at some moment.
  if (!block && !c->closed.load(std::memory_order_relaxed) &&
      ((c->cap_ == 0 && c->recvq.empty()) ||
       (c->cap_ > 0 && c->count.load(std::memory_order_relaxed) == c->cap_))) {
    return false;
  }
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    throw Panic("send on closed channel");
  }
  if (ChanWaiter* w = c->recvq.dequeue()) {
    send_to_waiter(c, w, src);
    c->lock.unlock();
    ready(w->g);
    return true;
  }
  if (c->count.load(std::memory_order_relaxed) < c->cap_) {
    buffer_push(c, src);
    c->lock.unlock();
    return true;
  }
  if (!block) {
    c->lock.unlock();
    return false;
  }
  ChanWaiter w;
  w.g = self();
  w.elem = src;
  w.chan = c;
  park_on(c, c->sendq, &w, WaitReason::chan_send);
  if (!w.success) throw Panic("send on closed channel");
  return true;
}

// recv is Go's chanrecv(c, ep, block): take a parked sender's value (or
// the buffer's head, letting the sender refill it), else the buffer's
// head, else park (block) or report that it would block. Returns 1:
// received into *result; 2: closed and drained (*result untouched); 0:
// would block (!block only).
[[gnu::always_inline]] inline int recv(ChanBase* c, void* result, bool block) {
  if (c == nullptr) {
    if (!block) return 0;
    park_forever(WaitReason::chan_receive_nil_chan);
  }
  preempt_point();
  if (!block) {
    // Fast path: certainly empty. Go's careful order: read "empty" first,
    // then "closed", and re-check empty, so a close between the two reads
    // is not mistaken for "closed and drained" while values are still
    // buffered.
    const auto empty = [c] {
      return c->cap_ == 0 ? c->sendq.empty() : c->count.load(std::memory_order_acquire) == 0;
    };
    if (empty()) {
      if (!c->closed.load(std::memory_order_acquire)) return 0;
      if (empty()) return 2;
    }
  }
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed) && c->count.load(std::memory_order_relaxed) == 0) {
    c->lock.unlock();
    return 2;
  }
  if (ChanWaiter* w = c->sendq.dequeue()) {
    recv_from_waiter(c, w, result);
    c->lock.unlock();
    ready(w->g);
    return 1;
  }
  if (c->count.load(std::memory_order_relaxed) > 0) {
    buffer_pop(c, result);
    c->lock.unlock();
    return 1;
  }
  if (!block) {
    c->lock.unlock();
    return 0;
  }
  ChanWaiter w;
  w.g = self();
  w.elem = result;
  w.chan = c;
  park_on(c, c->recvq, &w, WaitReason::chan_receive);
  return w.success ? 1 : 2;
}

}  // namespace

void chan_send(ChanBase* c, void* src) { send(c, src, /*block=*/true); }

bool chan_try_send(ChanBase* c, void* src) { return send(c, src, /*block=*/false); }

bool chan_recv(ChanBase* c, void* result) { return recv(c, result, /*block=*/true) == 1; }

int chan_try_recv(ChanBase* c, void* result) { return recv(c, result, /*block=*/false); }

void chan_close(ChanBase* c) {
  if (c == nullptr) throw Panic("close of nil channel");
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    throw Panic("close of closed channel");
  }
  c->closed.store(true, std::memory_order_release);
  // Collect every waiter (receivers get nothing, senders will panic), then
  // ready them after unlocking. The list threads through `next`, which is
  // free once a waiter is dequeued.
  ChanWaiter* wake = nullptr;
  for (WaitQueue* q : {&c->recvq, &c->sendq}) {
    while (ChanWaiter* w = q->dequeue()) {
      w->success = false;
      w->next = wake;
      wake = w;
    }
  }
  c->lock.unlock();
  while (wake != nullptr) {
    ChanWaiter* w = wake;
    wake = w->next;  // read before ready(): w lives on a stack that may resume
    ready(w->g);
  }
}

std::size_t chan_len(const ChanBase* c) noexcept { return c->count.load(std::memory_order_relaxed); }
std::size_t chan_cap(const ChanBase* c) noexcept { return c->cap_; }
// Acquire pairs with the release store in chan_close: what the closer did
// before close() is visible to whoever sees closed() true.
bool chan_closed(const ChanBase* c) noexcept { return c->closed.load(std::memory_order_acquire); }

std::size_t chan_waiters(ChanBase* c) {
  if (c == nullptr) return 0;
  SpinGuard l(c->lock);
  std::size_t n = 0;
  for (ChanWaiter* w = c->recvq.first.load(std::memory_order_relaxed); w != nullptr; w = w->next) ++n;
  for (ChanWaiter* w = c->sendq.first.load(std::memory_order_relaxed); w != nullptr; w = w->next) ++n;
  return n;
}

}  // namespace goro::detail
