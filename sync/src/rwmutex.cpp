// rwmutex.cpp: Go's sync.RWMutex (sync/rwmutex.go) on the semaphore table.
//
// What it is for: many readers at once, or one writer, with readers costing
// one atomic add to enter and one to leave, and writers never starved by a
// stream of readers.
//
// State:
//   w_            a Mutex the writer holds from lock() to unlock(): writers
//                 queue there, one at a time (with that Mutex's fairness).
//   reader_count_ low 32 bits, Go's readerCount: readers inside or waiting;
//                 a writer subtracts kMaxReaders (2^30, more readers than
//                 can exist) to announce itself, so the count is negative
//                 exactly while a writer is pending or active. High 32 bits:
//                 the number of writer unlocks (see Unwinding).
//   reader_wait_  how many of the readers that were inside when the writer
//                 announced itself have still to leave.
//   writer_sem_   the writer parks here until they have.
//   reader_sem_   readers that came while a writer was pending park here.
//
// Invariants:
//   N  count < 0  <=>  a writer holds w_ and has announced itself.
//   D  while a writer waits on writer_sem_, reader_wait_ is the number of
//      readers still inside that it waits for; the reader that brings it to
//      zero releases writer_sem_ once.
//   R  a writer's unlock releases reader_sem_ exactly once for each reader
//      that arrived during its tenure (count + kMaxReaders at unlock).
//      Readers take units in any order: the units are interchangeable, only
//      their number matters.
//
// lock(): 1. lock w_. 2. add -kMaxReaders (wrapping, see below): r = the
// readers inside. 3. if r > 0, add r to reader_wait_; if that leaves it
// non-zero (some readers already left and decremented it: it may go
// negative in between), park on writer_sem_.
// unlock(): 1. add +kMaxReaders: r = the readers that arrived meanwhile.
// 2. release reader_sem_ r times. 3. unlock w_ (after the readers: a next
// writer must not announce itself before they are admitted).
// lock_shared(): add 1; if the count is negative, park on reader_sem_.
// unlock_shared(): add -1; if the count is negative, a writer is pending:
// decrement reader_wait_, and the reader that reaches zero releases the
// writer.
//
// The 64-bit word: the writer adds 2^32 - 2^30 instead of subtracting 2^30,
// which leaves the low half what Go's int32 would hold and never borrows
// from the high half (the count is below 2^30); unlock's +2^30 then carries
// exactly one into the high half. So the high half counts writer unlocks at
// no extra cost, and a reader's +1/-1 never crosses into it.
//
// Unwinding (run()'s teardown throws out of park(); on_unwind.hpp), keeping
// N, D and R:
//   - a writer unwound while queued on w_: w_'s own cleanup.
//   - a writer unwound on writer_sem_: granted the unit, it holds the lock,
//     so it unlocks. Otherwise it adds kAbandoned (2^30) to reader_wait_. If
//     that finds zero, the last reader already left and its unit is on its
//     way: take it back out, take the unit, unlock. If not, the reader that
//     later brings reader_wait_ down to kAbandoned resets it and unlocks on
//     the writer's behalf (a Mutex may be unlocked by anyone).
//   - a reader unwound on reader_sem_: granted the unit, it holds a read
//     lock, so it unlocks it. Otherwise it must either take a unit or take
//     back its +1, and which one is right depends on whether a writer's
//     unlock has counted it (R). It loops: load the word; if a unit is
//     there, take it and unlock_shared(). If not, and a writer is pending,
//     then every reader still waiting (itself included) waits for that
//     writer, whose unlock has not counted them yet: the writers before it
//     released all their units before they unlocked w_, hence before it
//     announced itself, and those units are gone. So it takes back its +1,
//     with a CAS on the whole word, which fails if any writer lock or unlock
//     happened since the load (the high half changes even when the low half
//     comes back to the same value). If no writer is pending, a writer's
//     unlock is between its add and its releases, and a unit is coming:
//     yield and retry.
//
// Alternatives rejected:
//   - reader preference (readers enter whenever no writer is active): a
//     writer can starve; Go chose writer preference, so do we.
//   - a lock around a reader count (pthread-style): every reader would
//     contend on the lock; here an uncontended reader is one atomic add.
//   - per-reader queue records with their own lock: exact cancellation, but
//     the read path would take a lock; the unwinding cleanup above costs the
//     hot paths nothing.
#include "goro/rwmutex.hpp"

#include <thread>

#include "goro/detail/sema.hpp"
#include "goro/runtime.hpp"
#include "on_unwind.hpp"

namespace goro {
namespace {

// kAbandoned marks reader_wait_ when the writer waiting for the readers was
// unwound; above any real count (at most kMaxReaders - 1), below overflow.
constexpr std::int32_t kAbandoned = std::int32_t{1} << 30;

}  // namespace

void RWMutex::lock() {
  std::uint32_t unlocked = 0;
  // The writers' Mutex; parked writers report "sync.RWMutex.Lock".
  if (!w_.state_.compare_exchange_strong(unlocked, Mutex::kLocked, std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
    w_.lock_slow(WaitReason::sync_rwmutex_lock);
  }
  // Announce the writer. Acquire pairs with the release of readers that
  // already left (unlock_shared).
  const std::uint64_t now = reader_count_.fetch_add(kWriterBias, std::memory_order_acq_rel) + kWriterBias;
  const std::int32_t inside = static_cast<std::int32_t>(count_of(now) + kMaxReaders);
  // acq_rel pairs with the departing readers' decrements (unlock_shared_slow).
  if (inside != 0 && reader_wait_.fetch_add(inside, std::memory_order_acq_rel) + inside != 0) {
    bool granted = false;
    detail::OnUnwind cleanup([this, &granted] { abandon_writer(granted); });
    detail::semacquire(&writer_sem_, false, WaitReason::sync_rwmutex_lock, &granted);
    cleanup.dismiss();
  }
}

bool RWMutex::try_lock() noexcept {
  if (!w_.try_lock()) return false;
  std::uint64_t v = reader_count_.load(std::memory_order_relaxed);  // feeds the CAS below
  // Acquire pairs with the release of the readers that left.
  if (count_of(v) != 0 || !reader_count_.compare_exchange_strong(
                              v, v + kWriterBias, std::memory_order_acquire, std::memory_order_relaxed)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() {
  // Release pairs with the acquire add of readers (lock_shared).
  const std::uint64_t now = reader_count_.fetch_add(kMaxReaders, std::memory_order_acq_rel) + kMaxReaders;
  const std::int32_t waiting = count_of(now);
  if (waiting >= kMaxReaders) {
    // No writer was announced: undo (no carry happened) and panic.
    reader_count_.fetch_sub(kMaxReaders, std::memory_order_relaxed);
    throw Panic("sync: Unlock of unlocked RWMutex");
  }
  for (std::int32_t i = 0; i < waiting; ++i) detail::semrelease(&reader_sem_, false);
  // Only now: the next writer must not announce itself before these readers
  // are admitted (and abandon_reader() relies on it).
  w_.unlock();
}

bool RWMutex::try_lock_shared() noexcept {
  std::uint64_t v = reader_count_.load(std::memory_order_relaxed);  // feeds the CAS below
  for (;;) {
    if (count_of(v) < 0) return false;
    // Acquire pairs with the release add in unlock().
    if (reader_count_.compare_exchange_weak(v, v + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
}

void RWMutex::lock_shared_slow() {
  bool granted = false;
  detail::OnUnwind cleanup([this, &granted] { abandon_reader(granted); });
  // The writer's unlock releases us (invariant R).
  detail::semacquire(&reader_sem_, false, WaitReason::sync_rwmutex_rlock, &granted);
  cleanup.dismiss();
}

void RWMutex::unlock_shared_slow(std::int32_t count) {
  if (count + 1 == 0 || count + 1 == -kMaxReaders) {
    // There was no reader: undo (the add carries back what the subtraction
    // borrowed) and panic.
    reader_count_.fetch_add(1, std::memory_order_relaxed);
    throw Panic("sync: RUnlock of unlocked RWMutex");
  }
  // A writer is pending. acq_rel pairs with the writer's add (lock()) and
  // with the other departing readers.
  const std::int32_t left = reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (left == 0) {
    detail::semrelease(&writer_sem_, false);  // the last reader lets the writer in
  } else if (left == kAbandoned) {
    // The writer was unwound while waiting for us: finish its turn.
    reader_wait_.fetch_sub(kAbandoned, std::memory_order_relaxed);
    unlock();
  }
}

// abandon_writer: the writer was unwound out of writer_sem_ (essay). It
// holds w_ and has announced itself.
void RWMutex::abandon_writer(bool granted) noexcept {
  if (!granted) {
    // acq_rel pairs with the departing readers' decrements: exactly one of
    // us sees the other's change (essay).
    const std::int32_t now = reader_wait_.fetch_add(kAbandoned, std::memory_order_acq_rel) + kAbandoned;
    if (now != kAbandoned) return;  // the last reader to leave unlocks for us
    reader_wait_.fetch_sub(kAbandoned, std::memory_order_relaxed);
    detail::semacquire_spin(&writer_sem_);
  }
  unlock();
}

// abandon_reader: a reader was unwound out of reader_sem_ (essay). Its +1 is
// in reader_count_.
void RWMutex::abandon_reader(bool granted) noexcept {
  while (!granted) {
    // Acquire pairs with the writer's announcing add, which its w_.lock()
    // ordered after the previous writers' releases (essay).
    std::uint64_t v = reader_count_.load(std::memory_order_acquire);
    if (detail::semtryacquire(&reader_sem_)) {
      granted = true;
      break;
    }
    // Relaxed: it takes back our own +1; the load above did the acquiring.
    if (count_of(v) < 0 && reader_count_.compare_exchange_strong(v, v - 1, std::memory_order_relaxed)) {
      return;  // took back our +1: as if we had never come
    }
    std::this_thread::yield();
  }
  unlock_shared();
}

}  // namespace goro
