// global_queue.hpp: the global run queue (Go's sched.runq), under the
// scheduler lock.
//
// Two FIFOs: goroutines woken from a park (or back from blocking()) and
// everything else (new goroutines, preempted ones, yielders). Pops serve the
// woken first. Why: a woken goroutine holds a stack and is usually about to
// finish or park again soon, while a new one has no stack yet (it gets one
// when it first runs). A program that spawns faster than it runs (100,000
// goroutines that each sleep 10 ms) keeps tens of thousands of new
// goroutines queued here; with one FIFO a sleeper woken behind them waits
// its turn holding its stack, and every new goroutine that runs meanwhile
// needs a fresh stack, whose first touch is a page fault, the dearest thing
// such a program does. Serving the woken first lets them finish and hand
// their warm stacks to the new ones (the timers benchmark held 13,000
// stacks at its peak with one FIFO, 3,000 this way). Preempted goroutines
// stay in the plain FIFO, behind the new ones, as in Go: they have had
// their turn. Go gets the same effect from runnext (a woken goroutine runs
// next on its P); here it also holds for the woken that overflowed a local
// queue. Starvation: every kPlainEvery-th pop serves the plain FIFO first,
// so neither can hold the other off for good.
//
// Each FIFO is a growable ring of pointers rather than a list threaded
// through the goroutine records: moving a batch between this queue and a
// P's ring then copies pointers without touching the records, which are
// usually cold. Rings grow by doubling and never shrink, so steady state
// allocates nothing.
#pragma once

#include <cstddef>
#include <vector>

#include "goroutine.hpp"

namespace goro::rt {

class PointerRing {
 public:
  std::size_t size() const noexcept { return count_; }

  void push_back(Goroutine* g) {
    if (count_ == buf_.size()) grow();
    buf_[(head_ + count_) & (buf_.size() - 1)] = g;
    ++count_;
  }

  void push_front(Goroutine* g) {
    if (count_ == buf_.size()) grow();
    head_ = (head_ + buf_.size() - 1) & (buf_.size() - 1);
    buf_[head_] = g;
    ++count_;
  }

  Goroutine* pop_front() noexcept {
    if (count_ == 0) return nullptr;
    Goroutine* g = buf_[head_];
    head_ = (head_ + 1) & (buf_.size() - 1);
    --count_;
    return g;
  }

 private:
  void grow() {
    std::vector<Goroutine*> bigger(buf_.empty() ? 256 : buf_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = buf_[(head_ + i) & (buf_.size() - 1)];
    buf_.swap(bigger);
    head_ = 0;
  }

  std::vector<Goroutine*> buf_;  // size: 0 or a power of two
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

class GlobalQueue {
 public:
  static constexpr unsigned kPlainEvery = 4;

  std::size_t size() const noexcept { return woken_.size() + plain_.size(); }

  void push_back(Goroutine* g) { (woken(g) ? woken_ : plain_).push_back(g); }
  void push_front(Goroutine* g) { (woken(g) ? woken_ : plain_).push_front(g); }

  Goroutine* pop_front() noexcept {
    if (++pops_ % kPlainEvery == 0 && plain_.size() != 0) return plain_.pop_front();
    if (Goroutine* g = woken_.pop_front()) return g;
    return plain_.pop_front();
  }

 private:
  // The last switch-out says how a queued goroutine got here (a new one has
  // not run: its reason is stale, so started decides first).
  static bool woken(const Goroutine* g) noexcept {
    return g->started && (g->reason == SwitchReason::kPark || g->reason == SwitchReason::kBlockingHandoff);
  }

  PointerRing woken_;
  PointerRing plain_;
  unsigned pops_ = 0;
};

}  // namespace goro::rt
