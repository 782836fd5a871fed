// RWMutex: a reader/writer mutual exclusion lock that parks goroutines
// (Go's sync.RWMutex).
//
//   goro::RWMutex mu;
//   std::unordered_map<std::string, Entry> cache;  // guarded by mu
//   { std::shared_lock l(mu); lookup(cache); }      // many readers at once
//   { std::lock_guard l(mu); cache.clear(); }       // one writer, no readers
//
// Any number of readers or one writer hold it. Waiting parks the goroutine,
// never its thread; plain threads block. SharedLockable: std::shared_lock,
// std::unique_lock, std::lock_guard and std::scoped_lock work.
//
// As in Go:
//   - a writer waiting in lock() blocks new readers, so writers are never
//     starved by a stream of readers; a reader must therefore not take the
//     read lock again while holding it (a writer between the two would
//     deadlock both);
//   - not tied to a goroutine: one may lock and another unlock;
//   - unlock() of a RWMutex not write-locked throws Panic("sync: Unlock of
//     unlocked RWMutex"); unlock_shared() without a reader throws
//     Panic("sync: RUnlock of unlocked RWMutex"); both leave the RWMutex as
//     it was, unless other goroutines race with the faulty call (then it
//     may stay broken, writers waiting for ever: Go kills the process).
// Wait reasons: "sync.RWMutex.RLock" for a reader, "sync.RWMutex.Lock" for
// a writer (behind another writer or waiting for the readers to leave).
//
// Memory ordering: an unlock() happens before every later lock_shared() and
// lock() returns; an unlock_shared() happens before the next lock() returns.
#pragma once

#include <atomic>
#include <cstdint>

#include "goro/mutex.hpp"

namespace goro {

class RWMutex {
 public:
  constexpr RWMutex() noexcept = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;
  // As a Mutex, a RWMutex may be destroyed while goroutines wait for it.
  ~RWMutex() {
    if (busy() || detail::run_exiting()) [[unlikely]] destroyed();
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_forget(this);
  }

  // lock acquires the write lock: waits for the other writers, then for the
  // readers already inside; new readers wait from the moment it starts.
  void lock() {
    // Fast path: try_lock's one CAS.
    if (!try_lock_impl()) lock_slow();
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.RWMutex", false);
  }
  // try_lock takes the write lock if neither a writer nor a reader holds it.
  [[nodiscard]] bool try_lock() noexcept {
    if (!try_lock_impl()) return false;
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.RWMutex", true);
    return true;
  }
  // unlock releases the write lock and admits the readers that waited for it.
  void unlock() {
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_released(this);
    unlock_impl();
    detail::preempt_point();
  }

  // lock_shared acquires a read lock; parks while a writer holds or waits.
  void lock_shared() {
    // One atomic add (Go's RLock). Acquire pairs with the release in
    // unlock(); a negative count means a writer is pending.
    const std::uint64_t now = state_.fetch_add(1, std::memory_order_acquire) + 1;
    if (count_of(now) < 0) lock_shared_slow();
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.RWMutex", false);
  }
  // try_lock_shared takes a read lock unless a writer holds or waits.
  [[nodiscard]] bool try_lock_shared() noexcept {
    if (!try_lock_shared_impl()) return false;
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_acquired(this, "sync.RWMutex", true);
    return true;
  }
  // unlock_shared releases a read lock; the last reader a writer waits for
  // lets it in.
  void unlock_shared() {
    if (detail::lockorder_on()) [[unlikely]] detail::lockorder_released(this);
    unlock_shared_impl();
    detail::preempt_point();
  }

 private:
  // state_ (rwmutex.cpp has the whole story):
  //   bits 0-31   Go's readerCount: readers inside or waiting, minus
  //               kMaxReaders while a writer is pending (announced);
  //   bit 32      kHeld: a writer owns the lock (from before it announces
  //               until after its unlock has admitted the waiting readers);
  //   bit 33      kWaiting: the writer at the head of w_'s queue waits for
  //               kHeld and is handed it by the owner's unlock;
  //   bits 34-63  the number of writer unlocks, so that a CAS on the whole
  //               word fails if a writer unlocked since the load.
  // The writer announces by adding kWriterBias, i.e. 2^32 - 2^30: the low
  // half becomes what Go's int32 would hold, and it never borrows from or
  // carries into the high half (the count is below 2^30).
  static constexpr std::int64_t kMaxReaders = std::int64_t{1} << 30;
  static constexpr std::uint64_t kWriterBias = (std::uint64_t{1} << 32) - kMaxReaders;
  static constexpr std::uint64_t kHeld = std::uint64_t{1} << 32;
  static constexpr std::uint64_t kWaiting = std::uint64_t{1} << 33;
  static constexpr std::uint64_t kEpoch = std::uint64_t{1} << 34;
  static constexpr std::uint64_t kEpochMask = ~(kEpoch - 1);
  static constexpr std::int32_t count_of(std::uint64_t v) noexcept {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  }

  // try_lock() and try_lock_shared() without the lock-order hook.
  bool try_lock_impl() noexcept {
    // One CAS, if the word is idle: no writer, no reader, nobody waiting.
    // Acquire pairs with the release of the last reader and of the last
    // writer.
    std::uint64_t v = state_.load(std::memory_order_relaxed);
    return (v & ~kEpochMask) == 0 &&
           state_.compare_exchange_strong(v, v + kHeld + kWriterBias, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  bool try_lock_shared_impl() noexcept;

  // unlock_shared() without its preemption point.
  void unlock_shared_impl() {
    // Release pairs with the acquire of the writer that waits for us.
    const std::uint64_t now = state_.fetch_sub(1, std::memory_order_release) - 1;
    if (count_of(now) < 0) unlock_shared_slow(count_of(now));
  }

  void lock_slow();
  void unlock_impl();
  void admit_and_release(std::int32_t waiting) noexcept;
  void lock_shared_slow();
  void unlock_shared_slow(std::int32_t count);
  void abandon_reader(const detail::SemaUnwind& unwind) noexcept;
  void abandon_writer(const detail::SemaUnwind& unwind) noexcept;
  void abandon_handoff(const detail::SemaUnwind& unwind) noexcept;
  // busy: readers or writers wait, or hold it, or a wake-up is on its way
  // (the writers' Mutex w_ answers for itself).
  bool busy() const noexcept {
    return (state_.load(std::memory_order_acquire) & ~kEpochMask) != 0 ||
           reader_wait_.load(std::memory_order_acquire) != 0 ||
           (writer_sem_.load(std::memory_order_acquire) | reader_sem_.load(std::memory_order_acquire) |
            handoff_sem_.load(std::memory_order_acquire)) != 0;
  }
  void destroyed() noexcept;

  Mutex w_;                                    // queues the writers that found kHeld set
  std::atomic<std::uint64_t> state_{0};        // see above
  std::atomic<std::int32_t> reader_wait_{0};   // readers the pending writer still waits for
  std::atomic<std::uint32_t> writer_sem_{0};   // the writer waits here for the readers
  std::atomic<std::uint32_t> reader_sem_{0};   // readers wait here for the writer
  std::atomic<std::uint32_t> handoff_sem_{0};  // the kWaiting writer waits here for kHeld
};

}  // namespace goro
