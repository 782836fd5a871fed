// goro/detail/chan_core.hpp: the channel's layout (Go's hchan and sudog)
// and the entry points that only goro's own code uses. Internal to goro:
// users see ChanBase as an opaque pointer (goro/chan.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "goro/chan.hpp"
#include "goro/detail/lock.hpp"
#include "goro/park.hpp"

namespace goro::detail {

struct SelectState;

// ChanWaiter is a blocked channel operation (Go's sudog). It lives on the
// blocked party's stack and is linked into the channel's wait queue.
struct ChanWaiter {
  Goroutine* g = nullptr;
  void* elem = nullptr;           // send: T* (source); receive: std::optional<T>* (destination)
  ChanWaiter* next = nullptr;
  ChanWaiter* prev = nullptr;
  bool queued = false;            // linked into a wait queue (under the channel's lock)
  bool success = false;           // completed by a peer; false when woken by close
  bool frees_chan = false;        // a select's: dropped the last pin of a dead channel
  SelectState* sel = nullptr;     // non-null for a select's waiter
  std::uint32_t case_index = 0;   // the select case it stands for
  ChanBase* chan = nullptr;
};

// WaitQueue is a FIFO of waiters, under the channel's lock. `first` is also
// read without the lock by the non-blocking fast paths (an atomic).
struct WaitQueue {
  std::atomic<ChanWaiter*> first{nullptr};
  ChanWaiter* last = nullptr;

  bool empty() const noexcept { return first.load(std::memory_order_relaxed) == nullptr; }
  void push(ChanWaiter* w) noexcept;
  void remove(ChanWaiter* w) noexcept;
  // dequeue pops the first waiter that may still be woken (a select waiter
  // whose select was already won elsewhere is dropped). Null if none.
  ChanWaiter* dequeue() noexcept;
};

// ChanHooks: a channel that shares its memory block with a runtime object
// (after()'s timer, a Context's state) hands its reference counting to that
// object: chan_release calls hooks->release instead of counting down itself.
struct ChanHooks {
  void (*release)(ChanBase* c) noexcept;
};

// ChanBase is the channel itself (Go's hchan); Chan<T> is a typed handle.
class ChanBase {
 public:
  ChanBase(std::size_t capacity, const ElemOps* ops, void* buffer, const ChanHooks* hooks = nullptr) noexcept
      : ops_(ops), cap_(capacity), buf_(buffer), hooks_(hooks) {}

  std::atomic<long> refs{1};
  SpinLock lock;  // guards everything below except what is atomic
  const ElemOps* const ops_;
  const std::size_t cap_;
  std::atomic<std::size_t> count{0};  // written under lock; read racily by size()
  std::size_t sendx GORO_GUARDED_BY(lock) = 0;
  std::size_t recvx GORO_GUARDED_BY(lock) = 0;
  std::atomic<bool> closed{false};  // written under lock
  WaitQueue recvq;
  WaitQueue sendq;
  void* const buf_;
  // Last: read only when a handle goes, and the hot fields above keep the
  // cache-line layout they had before it came.
  const ChanHooks* const hooks_;
  // Under lock: waiters of blocked selects, which need the channel until
  // they have unlinked themselves even when it has no handle left; `dead`:
  // the last handle went while some were there (select.cpp, chan.cpp).
  std::uint32_t select_pins GORO_GUARDED_BY(lock) = 0;
  bool dead GORO_GUARDED_BY(lock) = false;

  void* slot(std::size_t i) const noexcept { return static_cast<char*>(buf_) + i * ops_->size; }
};

// chan_make_with makes a channel whose block also holds `extra_size` bytes
// (aligned to at most kChanExtraAlign) for an object of the caller's, at
// *extra; its releases go to hooks->release. chan_extra finds that room
// again; chan_free destroys the channel and frees the block (the caller
// has destroyed its object first; a select parked on it keeps the block
// until it lets go); chan_of_extra is chan_extra's inverse.
inline constexpr std::size_t kChanExtraAlign = 16;
ChanBase* chan_make_with(std::size_t capacity, const ElemOps* ops, std::size_t extra_size, const ChanHooks* hooks,
                         void** extra);
void* chan_extra(ChanBase* c) noexcept;
ChanBase* chan_of_extra(void* extra, std::size_t capacity, const ElemOps* ops) noexcept;
void chan_free(ChanBase* c) noexcept;
// chan_dealloc frees a channel chan_free left allocated for the selects
// still parked on it (chan.cpp, Orphans), once the last one lets go.
void chan_dealloc(ChanBase* c) noexcept;
// chan_waiters counts the parked parties (both queues): tests use it to
// check that no waiter is left behind.
std::size_t chan_waiters(ChanBase* c);

}  // namespace goro::detail
