// global_queue.hpp: the global run queue (Go's sched.runq), under the
// scheduler lock.
//
// A growable ring of pointers rather than a list threaded through the
// goroutine records: moving a batch between this queue and a P's ring then
// copies pointers without touching the records, which lie a stack-slot
// apart (~70 KiB) and are usually cold. It grows by doubling and never
// shrinks, so steady state allocates nothing.
#pragma once

#include <cstddef>
#include <vector>

namespace goro {
class Goroutine;
}

namespace goro::rt {

class GlobalQueue {
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

}  // namespace goro::rt
