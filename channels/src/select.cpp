// select.cpp: select over channel operations (Go's select.go).
//
// select_go, in order:
//   1. Poll order: a uniformly random permutation of the non-nil cases
//      (Fisher-Yates), so when several are ready each is chosen with equal
//      probability and none starves.
//   2. Lock order: the cases sorted by channel address. Every select and
//      every single-channel operation therefore takes channel locks in one
//      global order: two selects sharing channels cannot deadlock. A channel
//      listed twice is locked once.
//   3. Pass 1: with all locks held, take the first case in poll order that
//      can proceed (a parked peer, buffered data or room, or a closed
//      channel), complete it, unlock, return.
//   4. None and a default case: unlock, return "default".
//   5. Pass 2: enqueue one waiter per case, all sharing one SelectState,
//      and park; the unlock function releases every lock after the switch.
//   6. A peer that dequeues one of our waiters must win the SelectState
//      (CAS on done) before completing it; losers skip the waiter. So
//      exactly one case completes, and the peer records which.
//   7. Woken: lock everything again and unlink the other waiters, so no
//      waiter of ours stays behind in any queue; report the winner.
//
// Pins. Step 7 (and the unwinding cleanup, its twin) needs every channel
// again, even the ones whose last handle went while the select was parked
// (their owner captured by reference, say, and destroyed): pass 2 counts
// each waiter in its channel's select_pins, under the lock it already
// holds, and step 7 takes the count back. chan_release only marks a pinned
// channel dead, and the select that drops the last pin frees it (the
// runtime's orphans.cpp). A plain count under the lock: no atomic on the
// select's path.
#include <algorithm>
#include <array>
#include <memory>
#include <new>
#include <random>

#include "chan_internal.hpp"
#include "goro/select.hpp"

namespace goro::detail {
namespace {

// A cheap per-thread generator for the poll order (xorshift64*).
std::uint32_t fastrand() noexcept {
  thread_local std::uint64_t state = [] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd() ^ reinterpret_cast<std::uintptr_t>(&state);
  }();
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return static_cast<std::uint32_t>((state * 0x2545F4914F6CDD1DULL) >> 32);
}

// Lemire's nearly divisionless bounded random: uniform in [0, n).
std::uint32_t fastrandn(std::uint32_t n) noexcept {
  return static_cast<std::uint32_t>((std::uint64_t{fastrand()} * n) >> 32);
}

// Locks takes and releases the lock of every distinct channel of a select,
// in lock order. clang's analysis cannot follow a set of locks chosen at run
// time: the code between lock() and unlock() says which it relies on with
// assert_held().
struct Locks {
  const SelectCase* cases;
  const std::uint16_t* order;  // lock order (indices into cases)
  int n;

  void lock() const noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    ChanBase* prev = nullptr;
    for (int i = 0; i < n; ++i) {
      ChanBase* c = cases[order[i]].c;
      if (c != prev) c->lock.lock();
      prev = c;
    }
  }
  void unlock() const noexcept GORO_NO_THREAD_SAFETY_ANALYSIS {
    // Reverse order, each distinct channel once.
    for (int i = n - 1; i >= 0; --i) {
      ChanBase* c = cases[order[i]].c;
      if (i > 0 && cases[order[i - 1]].c == c) continue;
      c->lock.unlock();
    }
  }
};

bool unlock_all(Goroutine*, void* locks) {
  static_cast<Locks*>(locks)->unlock();
  return true;
}

}  // namespace

int select_go(SelectCase* cases, int ncases, bool block, bool* received) {
  *received = false;
  preempt_point();
  // Small selects keep their bookkeeping on the stack.
  constexpr int kInline = 16;
  std::array<std::uint16_t, 2 * kInline> inline_order;
  // Raw storage: the waiters are built only if the select blocks (pass 2);
  // constructing sixteen of them up front cost more than the rest of a
  // select that finds a case ready.
  alignas(ChanWaiter) unsigned char inline_waiters[kInline * sizeof(ChanWaiter)];
  std::unique_ptr<std::uint16_t[]> heap_order;
  std::unique_ptr<ChanWaiter[]> heap_waiters;
  std::uint16_t* pollorder = inline_order.data();
  auto* waiters = reinterpret_cast<ChanWaiter*>(inline_waiters);
  if (ncases > kInline) {
    if (ncases > 65535) throw std::length_error("goro::select: too many cases");
    heap_order.reset(new std::uint16_t[2 * static_cast<std::size_t>(ncases)]);
    heap_waiters.reset(new ChanWaiter[static_cast<std::size_t>(ncases)]);
    pollorder = heap_order.get();
    waiters = heap_waiters.get();
  }
  std::uint16_t* lockorder = pollorder + ncases;

  // 1. Poll order over non-nil cases.
  int n = 0;
  for (int i = 0; i < ncases; ++i) {
    if (cases[i].c == nullptr) continue;
    const std::uint32_t j = fastrandn(static_cast<std::uint32_t>(n + 1));
    pollorder[n] = pollorder[j];
    pollorder[j] = static_cast<std::uint16_t>(i);
    ++n;
  }
  if (n == 0) {
    if (!block) return -1;
    // Only nil channels (or no cases at all): block forever, as Go does.
    park_forever(ncases == 0 ? WaitReason::select_no_cases : WaitReason::select);
  }

  // 2. Lock order: by channel address (insertion sort: selects are small).
  std::copy(pollorder, pollorder + n, lockorder);
  for (int i = 1; i < n; ++i) {
    const std::uint16_t v = lockorder[i];
    int j = i;
    while (j > 0 && std::less<ChanBase*>()(cases[v].c, cases[lockorder[j - 1]].c)) {
      lockorder[j] = lockorder[j - 1];
      --j;
    }
    lockorder[j] = v;
  }
  Locks locks{cases, lockorder, n};
  locks.lock();

  // 3. Pass 1: anything ready?
  for (int k = 0; k < n; ++k) {
    const int i = pollorder[k];
    SelectCase& cas = cases[i];
    ChanBase* c = cas.c;
    c->lock.assert_held();
    if (cas.is_send) {
      if (c->closed.load(std::memory_order_relaxed)) {
        locks.unlock();
        throw Panic("send on closed channel");
      }
      if (ChanWaiter* w = c->recvq.dequeue()) {
        send_to_waiter(c, w, cas.elem);
        locks.unlock();
        ready(w->g);
        return i;
      }
      if (c->count.load(std::memory_order_relaxed) < c->cap_) {
        buffer_push(c, cas.elem);
        locks.unlock();
        return i;
      }
    } else {
      if (ChanWaiter* w = c->sendq.dequeue()) {
        recv_from_waiter(c, w, cas.elem);
        locks.unlock();
        ready(w->g);
        *received = true;
        return i;
      }
      if (c->count.load(std::memory_order_relaxed) > 0) {
        buffer_pop(c, cas.elem);
        locks.unlock();
        *received = true;
        return i;
      }
      if (c->closed.load(std::memory_order_relaxed)) {
        locks.unlock();
        return i;  // received = false: the channel is closed
      }
    }
  }

  // 4. Nothing ready.
  if (!block) {
    locks.unlock();
    return -1;
  }

  // 5. Pass 2: wait on every case.
  SelectState state;
  Goroutine* self_g = self();
  for (int k = 0; k < n; ++k) {
    const int i = lockorder[k];
    ChanWaiter& w = *::new (&waiters[k]) ChanWaiter{};
    w.g = self_g;
    w.elem = cases[i].elem;
    w.sel = &state;
    w.case_index = static_cast<std::uint32_t>(i);
    w.chan = cases[i].c;
    w.chan->lock.assert_held();
    (cases[i].is_send ? w.chan->sendq : w.chan->recvq).push(&w);
    ++w.chan->select_pins;  // keeps the channel until step 7 (orphans)
  }
  // unlink_all takes our waiters out and drops their pins (all locks held),
  // and decides which channels whose last handle went meanwhile this select
  // must free (it dropped their last pin); free_dead frees them, unlocked.
  // waiters[] is in lock order, so a channel's waiters are adjacent.
  const auto unlink_all = [&] {
    bool dead = false;
    for (int k = 0; k < n; ++k) {
      ChanWaiter& w = waiters[k];
      w.chan->lock.assert_held();
      (cases[w.case_index].is_send ? w.chan->sendq : w.chan->recvq).remove(&w);
      --w.chan->select_pins;
      if (w.chan->dead) [[unlikely]] {
        // Its last pin, if this is its last waiter of ours and no other
        // select holds one (frees_chan was cleared in pass 2).
        w.frees_chan = (k + 1 == n || waiters[k + 1].chan != w.chan) && w.chan->select_pins == 0;
        dead = dead || w.frees_chan;
      }
    }
    return dead;
  };
  const auto free_dead = [&] {
    for (int k = 0; k < n; ++k) {
      if (waiters[k].frees_chan) chan_dealloc(waiters[k].chan);
    }
  };
  try {
    park(&unlock_all, &locks, WaitReason::select);
  } catch (...) {
    locks.lock();
    const bool dead = unlink_all();
    locks.unlock();
    if (dead) free_dead();
    throw;
  }

  // 7. Woken by the peer that won our SelectState.
  locks.lock();
  const bool dead = unlink_all();
  ChanWaiter* winner = state.winner;
  locks.unlock();
  if (dead) [[unlikely]] free_dead();
  const int i = static_cast<int>(winner->case_index);
  if (cases[i].is_send) {
    if (!winner->success) throw Panic("send on closed channel");
  } else {
    *received = winner->success;
  }
  return i;
}

}  // namespace goro::detail
