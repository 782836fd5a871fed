// Chan<T>: Go's channels.
//
//   goro::Chan<int> ch(16);          // make(chan int, 16); Chan<int>(0) or (): see below
//   goro::go([ch]() mutable { for (int i = 0; i < 3; ++i) ch.send(i); ch.close(); });
//   for (int v : ch) use(v);         // for v := range ch
//
// A Chan is a handle: copies refer to the same channel, which lives while
// any handle does. Operations do not change the handle, so they are const
// (a lambda that captures a channel by value can use it without `mutable`). The default-constructed Chan is Go's nil channel: send and
// receive block forever, close panics. Chan(0) is unbuffered: a send
// completes only when a receiver takes the value.
//
// Everything parks the caller (a goroutine, or a plain thread through the
// same seam), never spins. A sender that finds a receiver waiting hands the
// value straight to it and readies it (no trip through the buffer). Blocked
// senders and receivers are served in FIFO order.
//
// Memory ordering (Go's memory model): a send happens before the
// corresponding receive completes; the close of a channel happens before a
// receive that returns because the channel is closed; for an unbuffered
// channel, a receive happens before the corresponding send completes.
//
// The value type may be move-only (Chan<std::unique_ptr<X>>) or empty
// (Chan<goro::Unit>, Go's chan struct{}).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <new>
#include <optional>
#include <utility>

#include "goro/runtime.hpp"

namespace goro {

// Unit is the empty value: Chan<Unit> is Go's chan struct{}.
struct Unit {
  friend constexpr bool operator==(Unit, Unit) noexcept { return true; }
};

namespace detail {

// ElemOps is how the type-erased core moves values of the element type:
// into a buffer slot, into a receiver's std::optional<T>, and destroys them.
struct ElemOps {
  void (*move_to_slot)(void* slot, void* src);
  void (*move_to_result)(void* result, void* src);  // result: std::optional<T>*
  void (*destroy)(void* slot) noexcept;
  std::size_t size;
  std::size_t align;
};

template <class T>
inline constexpr ElemOps elem_ops = {
    [](void* slot, void* src) { ::new (slot) T(std::move(*static_cast<T*>(src))); },
    [](void* result, void* src) { static_cast<std::optional<T>*>(result)->emplace(std::move(*static_cast<T*>(src))); },
    [](void* slot) noexcept { static_cast<T*>(slot)->~T(); },
    sizeof(T),
    alignof(T),
};

// ChanBase is the channel itself (Go's hchan), opaque here: its layout is
// goro/detail/chan_core.hpp, internal to the channels module.
class ChanBase;
struct AdoptRef {};

ChanBase* chan_make(std::size_t capacity, const ElemOps* ops);
void chan_retain(ChanBase* c) noexcept;
void chan_release(ChanBase* c) noexcept;
// chan_send blocks until the value at src is taken (or buffered). Panics on a
// closed channel. c == null (nil channel) blocks forever.
void chan_send(ChanBase* c, void* src);
// chan_try_send: false if the send would block. Panics on a closed channel.
bool chan_try_send(ChanBase* c, void* src);
// chan_recv blocks until a value is moved into *result (true) or the
// channel is closed and drained (false, *result untouched).
bool chan_recv(ChanBase* c, void* result);
// chan_try_recv: 0 would block, 1 received into *result, 2 closed and drained.
int chan_try_recv(ChanBase* c, void* result);
void chan_close(ChanBase* c);
// chan_len, chan_cap, chan_closed: len(ch), cap(ch), and whether close()
// has happened (acquire: what preceded the close is visible).
std::size_t chan_len(const ChanBase* c) noexcept;
std::size_t chan_cap(const ChanBase* c) noexcept;
bool chan_closed(const ChanBase* c) noexcept;

}  // namespace detail

template <class T>
class Chan {
 public:
  using value_type = T;

  // Chan() is the nil channel.
  Chan() noexcept = default;
  // Chan(core, adopt): a handle that takes over one reference the caller
  // holds on `core` (runtime objects that make their own channels).
  Chan(detail::ChanBase* core, detail::AdoptRef) noexcept : c_(core) {}
  // Chan(capacity): make(chan T, capacity); 0 = unbuffered.
  explicit Chan(std::size_t capacity) : c_(detail::chan_make(capacity, &detail::elem_ops<T>)) {}

  Chan(const Chan& other) noexcept : c_(other.c_) {
    if (c_ != nullptr) detail::chan_retain(c_);
  }
  Chan(Chan&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
  Chan& operator=(const Chan& other) noexcept {
    Chan(other).swap(*this);
    return *this;
  }
  Chan& operator=(Chan&& other) noexcept {
    Chan(std::move(other)).swap(*this);
    return *this;
  }
  ~Chan() {
    if (c_ != nullptr) detail::chan_release(c_);
  }
  void swap(Chan& other) noexcept { std::swap(c_, other.c_); }

  // send: ch <- v. Parks until a receiver takes v or it is buffered.
  // Throws Panic("send on closed channel").
  void send(T v) const { detail::chan_send(c_, &v); }

  // recv: v, ok := <-ch. nullopt once the channel is closed and drained.
  std::optional<T> recv() const {
    std::optional<T> result;
    detail::chan_recv(c_, &result);
    return result;
  }

  // try_send: select { case ch <- v: return true; default: return false }.
  // Throws Panic("send on closed channel"), as Go's select does.
  bool try_send(T v) const { return detail::chan_try_send(c_, &v); }

  // try_recv: a value if one is ready now; nullopt if none is (or the
  // channel is closed and drained: see closed()).
  std::optional<T> try_recv() const {
    std::optional<T> result;
    detail::chan_try_recv(c_, &result);
    return result;
  }

  // close: close(ch). Throws Panic("close of closed channel") /
  // Panic("close of nil channel"). Values already buffered are still delivered.
  void close() const { detail::chan_close(c_); }

  std::size_t size() const noexcept { return c_ != nullptr ? detail::chan_len(c_) : 0; }
  std::size_t capacity() const noexcept { return c_ != nullptr ? detail::chan_cap(c_) : 0; }
  bool closed() const noexcept { return c_ != nullptr && detail::chan_closed(c_); }
  bool is_nil() const noexcept { return c_ == nullptr; }

  // Handles compare equal when they refer to the same channel (Go's ==).
  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.c_ == b.c_; }

  // Range-for receives until the channel is closed and drained.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = T*;
    using reference = T&;
    iterator() = default;
    explicit iterator(const Chan* ch) : ch_(ch), cur_(ch->recv()) {}
    T& operator*() { return *cur_; }
    T* operator->() { return &*cur_; }
    iterator& operator++() {
      cur_ = ch_->recv();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.cur_.has_value(); }

   private:
    const Chan* ch_ = nullptr;
    std::optional<T> cur_;
  };
  iterator begin() const { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  // core: the type-erased channel (for select and other primitives).
  detail::ChanBase* core() const noexcept { return c_; }

 private:
  detail::ChanBase* c_ = nullptr;
};

}  // namespace goro
