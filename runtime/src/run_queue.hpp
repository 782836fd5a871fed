// RunQueue: a P's local run queue, Go's p.runq: a bounded single-producer,
// multi-consumer ring of goroutines.
//
// Who may call what:
//   push, push_batch    the owner P only (one writer of tail_)
//   pop                 the owner P only (competes with thieves on head_)
//   grab_half           any other P (a thief)
//   size, empty         anyone; a racy estimate
//
// Invariants:
//   - 0 <= tail_ - head_ <= kCapacity (indices wrap as uint32).
//   - Slots in [head_, tail_) hold goroutines; only the owner writes slots,
//     and only at tail_ or beyond, which no consumer reads.
//   - A consumer claims slots by CAS on head_; it reads the slots before the
//     CAS, and the CAS failing means another consumer claimed them first.
//
// Why 256 slots: Go's value. Large enough that a P rarely overflows into the
// global queue (which needs the scheduler lock), small enough that stealing
// half of it is a short copy. Builds with GORO_RUNQ_SIZE=4 shrink it to force
// the overflow and steal paths in tests.
#pragma once

#include <atomic>
#include <cstdint>

#ifndef GORO_RUNQ_SIZE
#define GORO_RUNQ_SIZE 256
#endif

namespace goro {
class Goroutine;
}

namespace goro::rt {

class RunQueue {
 public:
  static constexpr std::uint32_t kCapacity = GORO_RUNQ_SIZE;
  static_assert((kCapacity & (kCapacity - 1)) == 0, "run queue size must be a power of two");

  // push appends g. Owner only. Returns false when full (the caller moves
  // half the queue to the global queue: push_overflow).
  bool push(Goroutine* g) noexcept {
    // Acquire pairs with the consumers' CAS on head_: the slots they freed
    // are really free before we overwrite them.
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h >= kCapacity) return false;
    slots_[t % kCapacity].store(g, std::memory_order_relaxed);
    // Release publishes the slot to consumers (their acquire load of tail_).
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }

  // take_half_for_overflow claims the older half of a full queue for the
  // global queue. Owner only. Returns how many it put into batch (0 if the
  // queue was no longer full because thieves took some: retry push).
  std::uint32_t take_half_for_overflow(Goroutine** batch) noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_relaxed);
    const std::uint32_t n = (t - h) / 2;
    if (n != kCapacity / 2) return 0;
    for (std::uint32_t i = 0; i < n; ++i) {
      batch[i] = slots_[(h + i) % kCapacity].load(std::memory_order_relaxed);
    }
    std::uint32_t expected = h;
    // Release: pairs with the owner's acquire in push (the slots are free).
    if (!head_.compare_exchange_strong(expected, h + n, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return 0;
    }
    return n;
  }

  // pop removes the oldest goroutine. Owner only. Null if empty.
  Goroutine* pop() noexcept {
    for (;;) {
      const std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_relaxed);
      if (t == h) return nullptr;
      Goroutine* g = slots_[h % kCapacity].load(std::memory_order_relaxed);
      std::uint32_t expected = h;
      if (head_.compare_exchange_weak(expected, h + 1, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return g;
      }
    }
  }

  // grab_half copies the older half (rounded up) of this queue into
  // dst[dst_head ...] (a ring of kCapacity slots: the thief's own queue,
  // beyond its tail) and claims it. Any thread but the owner. Returns the
  // number grabbed.
  std::uint32_t grab_half(std::atomic<Goroutine*>* dst, std::uint32_t dst_head) noexcept {
    for (;;) {
      // Acquire on both: tail_ pairs with the owner's release in push (the
      // slots are written); head_ with other consumers' CAS.
      const std::uint32_t h = head_.load(std::memory_order_acquire);
      const std::uint32_t t = tail_.load(std::memory_order_acquire);
      std::uint32_t n = t - h;
      n = n - n / 2;
      if (n == 0) return 0;
      if (n > kCapacity / 2) continue;  // h and t read inconsistently: retry
      for (std::uint32_t i = 0; i < n; ++i) {
        Goroutine* g = slots_[(h + i) % kCapacity].load(std::memory_order_relaxed);
        dst[(dst_head + i) % kCapacity].store(g, std::memory_order_relaxed);
      }
      std::uint32_t expected = h;
      if (head_.compare_exchange_weak(expected, h + n, std::memory_order_release,
                                      std::memory_order_relaxed)) {
        return n;
      }
    }
  }

  // publish_stolen makes n goroutines that grab_half wrote beyond our tail
  // visible. Owner only.
  void publish_stolen(std::uint32_t n) noexcept {
    tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  std::atomic<Goroutine*>* slots() noexcept { return slots_; }
  std::uint32_t tail_for_owner() const noexcept { return tail_.load(std::memory_order_relaxed); }

  std::uint32_t size() const noexcept {
    const std::uint32_t h = head_.load(std::memory_order_acquire);
    const std::uint32_t t = tail_.load(std::memory_order_acquire);
    const std::uint32_t n = t - h;
    return n > kCapacity ? 0 : n;
  }
  bool empty() const noexcept { return size() == 0; }

 private:
  alignas(64) std::atomic<std::uint32_t> head_{0};  // consumers CAS
  alignas(64) std::atomic<std::uint32_t> tail_{0};  // owner stores
  std::atomic<Goroutine*> slots_[kCapacity] = {};
};

}  // namespace goro::rt
