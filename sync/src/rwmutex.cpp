// rwmutex.cpp: Go's sync.RWMutex (sync/rwmutex.go) on the semaphore table,
// with the writers' lock folded into the readers' word.
//
// What it is for: many readers at once, or one writer, with readers costing
// one atomic add to enter and one to leave, an uncontended writer one CAS
// to enter and one to leave, and writers never starved by a stream of
// readers.
//
// State:
//   state_        one 64-bit word (rwmutex.hpp): the low 32 bits are Go's
//                 readerCount, readers inside or waiting; a writer subtracts
//                 kMaxReaders (2^30, more readers than can exist) to
//                 announce itself, so the count is negative exactly while a
//                 writer is pending or active. Above it: kHeld (a writer
//                 owns the lock), kWaiting (a writer waits to be handed
//                 kHeld) and the epoch (writer unlocks so far).
//   w_            a Mutex queueing the writers that found kHeld set; only
//                 its holder may set kWaiting, so at most one writer waits
//                 for kHeld and the rest wait, in Mutex order, for w_.
//   reader_wait_  how many of the readers that were inside when the writer
//                 announced itself have still to leave.
//   writer_sem_   the writer parks here until they have.
//   reader_sem_   readers that came while a writer was pending park here.
//   handoff_sem_  the kWaiting writer parks here until kHeld is handed over.
//
// Why not Go's layout (a separate sync.Mutex the writer holds throughout):
// in Go a writer makes four atomic read-modify-writes (w.Lock, the
// announcing add, the add in Unlock, w.Unlock), against a reader's two. A
// locked RMW costs about 6 ns on this machine even on a cache line the core
// owns, and in `goro bench rwmutex` (one write in ten operations) those
// atomics are most of the time. With kHeld in the readers' word an
// uncontended writer enters with one CAS (no writer, no reader: take kHeld
// and announce at once) and leaves with one CAS; the Mutex is touched only
// by writers that have to wait for another writer.
//
// Invariants:
//   N  count < 0  =>  kHeld is set and its owner has announced itself.
//   H  kHeld is cleared or handed over only after the owner's unlock has
//      released every reader it counted (R); so a writer announces itself
//      only once every earlier writer's units are in reader_sem_.
//   D  while a writer waits on writer_sem_, reader_wait_ is the number of
//      readers still inside that it waits for; the reader that brings it to
//      zero releases writer_sem_ once.
//   R  a writer's unlock releases reader_sem_ exactly once for each reader
//      that arrived during its tenure (count + kMaxReaders at unlock).
//      Readers take units in any order: the units are interchangeable, only
//      their number matters.
//   W  kWaiting is set only by w_'s holder (so by one writer at a time),
//      and the handover is decided exactly once: an owner giving kHeld up
//      (one subtract) that finds kWaiting set gives it back to the waiter
//      (kHeld - kWaiting, one add) and releases handoff_sem_; a waiter
//      setting kWaiting (one add) that finds kHeld already given up takes
//      it the same way itself. While kWaiting is set nobody else can take
//      kHeld (the fast path wants an idle word; slow writers queue on w_).
//
// lock(): fast path: if the word is idle (no count, no kHeld, no kWaiting),
// CAS in kHeld and the announcement together. Slow path: lock w_; set
// kHeld (fetch_or, `lock bts`); if it was set already, set kWaiting (an
// add) and, if the owner still has kHeld, park on handoff_sem_ to be
// handed it (W). Unlock w_ (the next queued writer becomes the kWaiting
// one). Announce with an add: r = the readers inside; if r > 0, add r to
// reader_wait_, and if that leaves it non-zero (readers that already left
// decremented it: it may go negative in between), park on writer_sem_. The
// slow path makes only unconditional read-modify-writes, never a CAS that
// the readers' adds could keep failing, so a writer gets in however busy
// the readers are.
// unlock(): if no reader arrived and nobody waits for kHeld, one CAS clears
// kHeld, takes back the announcement and bumps the epoch. Otherwise: CAS
// back the announcement (bumping the epoch): r = the readers that arrived
// meanwhile, now admitted; release reader_sem_ r times; then give kHeld up
// or hand it over (W). (These CASes can fail only on the adds of readers
// arriving and parking, once each, so they do not retry for ever.)
// Between the two steps kHeld is set with a count >= 0: readers enter, and
// a writer that comes then queues on w_ (H).
// lock_shared(): add 1; if the count is negative, park on reader_sem_.
// unlock_shared(): add -1; if the count is negative, a writer is pending:
// decrement reader_wait_, and the reader that reaches zero releases the
// writer.
//
// Fairness: as in Go, a pending writer stops new readers, and the readers
// it stopped are admitted (counted in the next writer's wait) before any
// next writer goes in. Between writers, a fast-path writer can take kHeld
// only while nobody waits for it; once w_'s head has set kWaiting it is
// handed the next tenure, and w_ itself has Mutex's fairness.
//
// Unwinding (run()'s teardown throws out of park(); on_unwind.hpp), keeping
// the invariants:
//   - a writer unwound while queued on w_: w_'s own cleanup.
//   - a writer unwound on handoff_sem_: if it was granted kHeld, or if the
//     owner has already given kHeld up (kWaiting clear, or kHeld clear in
//     the middle of the handover: the unit is on its way, take it), it owns
//     kHeld unannounced and gives it up; otherwise it takes back kWaiting
//     with a CAS that requires kHeld still set. Then it unlocks w_.
//   - a writer unwound on writer_sem_: granted the unit, it holds the lock,
//     so it unlocks. Otherwise it adds kAbandoned (2^30) to reader_wait_. If
//     that finds zero, the last reader already left and its unit is on its
//     way: take it back out, take the unit, unlock. If not, the reader that
//     later brings reader_wait_ down to kAbandoned resets it and unlocks on
//     the writer's behalf (the write lock is not tied to a goroutine).
//   - a reader unwound on reader_sem_: granted the unit, it holds a read
//     lock, so it unlocks it. Otherwise it must either take a unit or take
//     back its +1, and which one is right depends on whether a writer's
//     unlock has counted it (R). It loops: load the word; if a unit is
//     there, take it and unlock_shared(). If not, and a writer is pending,
//     then every reader still waiting (itself included) waits for that
//     writer, whose unlock has not counted them yet: by H the earlier
//     writers' units were all released before it announced itself, and
//     none is left. So it takes back its +1, with a CAS on the whole word,
//     which fails if any writer unlocked since the load (the epoch changes
//     even when the count comes back to the same value). If no writer is
//     pending, a writer's unlock is between its add and its releases, and a
//     unit is coming: yield and retry.
// The cleanups never park and never yield (on_unwind.hpp): they unlock
// without unlock()'s preemption point.
//
// Orphans (the runtime's orphans.cpp): a RWMutex may be destroyed while
// goroutines wait for it. Its destructor then finds it busy (a count, kHeld
// or kWaiting in state_, readers a writer waits for, units in flight on a
// semaphore), records the death and takes the waiters of its three
// semaphores out of the table (w_, a Mutex, does the same for the writers
// queued on it). Each waiter stamps wait_epoch() before it waits; its
// cleanup asks whether the RWMutex died since, and if so touches nothing.
//
// Alternatives rejected:
//   - reader preference (readers enter whenever no writer is active): a
//     writer can starve; Go chose writer preference, so do we.
//   - a lock around a reader count (pthread-style): every reader would
//     contend on the lock; here an uncontended reader is one atomic add.
//   - per-P reader counters (folly's SharedMutex, brpc): readers on
//     different cores stop sharing a line, but a writer must visit every
//     slot, the lock grows by a cache line per P (or needs a global slot
//     table), and a reader still makes two locked RMWs; in a workload with
//     one write in ten the writers' cross-core traffic would eat the gain.
//   - per-reader queue records with their own lock: exact cancellation, but
//     the read path would take a lock; the unwinding cleanup above costs the
//     hot paths nothing.
#include "goro/rwmutex.hpp"

#include <thread>

#include "goro/detail/sema.hpp"
#include "goro/runtime.hpp"
#include "goro/park.hpp"
#include "on_unwind.hpp"

namespace goro {
namespace {

// kAbandoned marks reader_wait_ when the writer waiting for the readers was
// unwound; above any real count (at most kMaxReaders - 1), below overflow.
constexpr std::int32_t kAbandoned = std::int32_t{1} << 30;

}  // namespace

void RWMutex::lock_slow() {
  const std::uint64_t since = detail::wait_epoch();  // for an unwinding cleanup (essay)
  // The writers' Mutex; parked writers report "sync.RWMutex.Lock".
  w_.lock_as(WaitReason::sync_rwmutex_lock);
  // Take kHeld, unannounced. Unconditional read-modify-writes (no CAS that
  // the readers' adds could keep failing): a writer gets in however busy
  // the readers are. Acquire pairs with the release of the last owner.
  if ((state_.fetch_or(kHeld, std::memory_order_acquire) & kHeld) != 0) {
    // Owned: ask for it (W). Only we (w_'s holder) set kWaiting, so it is
    // clear and an add sets it (an add returns the whole old word with no
    // CAS loop; fetch_or tested on another bit would compile to one).
    if ((state_.fetch_add(kWaiting, std::memory_order_acquire) & kHeld) != 0) {
      // The owner had not given it up: its unlock hands it to us.
      detail::SemaUnwind unwind{this, since};
      detail::OnUnwind cleanup([this, &unwind] { abandon_handoff(unwind); });
      detail::semacquire(&handoff_sem_, false, WaitReason::sync_rwmutex_lock, unwind);
      cleanup.dismiss();
    } else {
      // It gave it up in between, before it could see kWaiting: since our
      // kWaiting, nobody else can take it. Take it ourselves.
      state_.fetch_add(kHeld - kWaiting, std::memory_order_relaxed);
    }
  }
  // kHeld now keeps the other writers out; let the next queued one become
  // the kWaiting one. (release(): no preemption point inside lock().)
  w_.release();
  // Announce. acq_rel: acquire pairs with the departing readers.
  const std::uint64_t now = state_.fetch_add(kWriterBias, std::memory_order_acq_rel) + kWriterBias;
  // Wait for the readers that were inside. acq_rel pairs with their
  // decrements (unlock_shared_slow).
  const auto inside = static_cast<std::int32_t>(count_of(now) + kMaxReaders);
  if (inside != 0 && reader_wait_.fetch_add(inside, std::memory_order_acq_rel) + inside != 0) {
    detail::SemaUnwind unwind{this, since};
    detail::OnUnwind cleanup([this, &unwind] { abandon_writer(unwind); });
    detail::semacquire(&writer_sem_, false, WaitReason::sync_rwmutex_lock, unwind);
    cleanup.dismiss();
  }
}

void RWMutex::unlock_impl() {
  std::uint64_t v = state_.load(std::memory_order_relaxed);  // feeds the CASes below
  for (;;) {
    // Not announced (or not held): no write lock to release. Checked before
    // any change, so the word is left as it was.
    if ((v & kHeld) == 0 || count_of(v) >= 0) throw Panic("sync: Unlock of unlocked RWMutex");
    const std::int32_t waiting = static_cast<std::int32_t>(count_of(v) + kMaxReaders);
    if (waiting == 0 && (v & kWaiting) == 0) {
      // Nobody to admit or hand over to: free it in one CAS. Release pairs
      // with the acquire of the next reader and writer.
      if (state_.compare_exchange_weak(v, v - kWriterBias - kHeld + kEpoch, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    // Take back the announcement, keeping kHeld (H): from here new readers
    // enter, and the `waiting` ones are ours to admit. Release as above.
    if (state_.compare_exchange_weak(v, v - kWriterBias + kEpoch, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      admit_and_release(waiting);
      return;
    }
  }
}

// admit_and_release: the second half of a contended unlock.
void RWMutex::admit_and_release(std::int32_t waiting) noexcept {
  for (std::int32_t i = 0; i < waiting; ++i) detail::semrelease(&reader_sem_, false);
  // Give kHeld up; release pairs with the acquire of the next owner.
  if ((state_.fetch_sub(kHeld, std::memory_order_release) & kWaiting) != 0) {
    // A writer asked for it: give it back, to that writer (W). No one else
    // can take it in between (kWaiting stops the fast path); handoff_sem_
    // orders our critical section before the new owner's.
    state_.fetch_add(kHeld - kWaiting, std::memory_order_relaxed);
    detail::semrelease(&handoff_sem_, false);
  }
}

bool RWMutex::try_lock_shared_impl() noexcept {
  std::uint64_t v = state_.load(std::memory_order_relaxed);  // feeds the CAS below
  for (;;) {
    if (count_of(v) < 0) return false;
    // Acquire pairs with the release in unlock().
    if (state_.compare_exchange_weak(v, v + 1, std::memory_order_acquire, std::memory_order_relaxed)) {
      return true;
    }
  }
}

void RWMutex::lock_shared_slow() {
  detail::SemaUnwind unwind{this, detail::wait_epoch()};
  detail::OnUnwind cleanup([this, &unwind] { abandon_reader(unwind); });
  // The writer's unlock releases us (invariant R).
  detail::semacquire(&reader_sem_, false, WaitReason::sync_rwmutex_rlock, unwind);
  cleanup.dismiss();
}

void RWMutex::unlock_shared_slow(std::int32_t count) {
  if (count + 1 == 0 || count + 1 == -kMaxReaders) {
    // There was no reader: undo (the add carries back what the subtraction
    // borrowed) and panic.
    state_.fetch_add(1, std::memory_order_relaxed);
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
    unlock_impl();
  }
}

// abandon_handoff: a writer was unwound out of handoff_sem_ (essay). It
// holds w_ and set kWaiting.
void RWMutex::abandon_handoff(const detail::SemaUnwind& unwind) noexcept {
  if (unwind.gone) return;
  detail::UnwindCleanup guard;
  if (!guard.alive(this, unwind.since)) return;  // destroyed (essay: Orphans)
  bool granted = unwind.granted;
  if (!granted) {
    std::uint64_t v = state_.load(std::memory_order_relaxed);  // feeds the CAS below
    for (;;) {
      if ((v & (kWaiting | kHeld)) != (kWaiting | kHeld)) {
        // The owner gave kHeld up and saw kWaiting: it is handing kHeld
        // over, or has; its unit is on the way.
        detail::semacquire_spin(&handoff_sem_);
        granted = true;
        break;
      }
      // The owner has not given it up yet: take back our request.
      if (state_.compare_exchange_weak(v, v - kWaiting, std::memory_order_relaxed)) break;
    }
  }
  if (granted) {
    // kHeld is ours, unannounced, and nobody waits for it (W): give it up.
    // Release pairs with the next owner's acquire.
    state_.fetch_sub(kHeld, std::memory_order_release);
  }
  w_.release();  // without unlock()'s preemption point: cleanups must not yield
}

// abandon_writer: the writer was unwound out of writer_sem_ (essay). It
// owns kHeld and has announced itself.
void RWMutex::abandon_writer(const detail::SemaUnwind& unwind) noexcept {
  if (unwind.gone) return;
  detail::UnwindCleanup guard;
  if (!guard.alive(this, unwind.since)) return;  // destroyed (essay: Orphans)
  if (!unwind.granted) {
    // acq_rel pairs with the departing readers' decrements: exactly one of
    // us sees the other's change (essay).
    const std::int32_t now = reader_wait_.fetch_add(kAbandoned, std::memory_order_acq_rel) + kAbandoned;
    if (now != kAbandoned) return;  // the last reader to leave unlocks for us
    reader_wait_.fetch_sub(kAbandoned, std::memory_order_relaxed);
    detail::semacquire_spin(&writer_sem_);
  }
  unlock_impl();
}

// abandon_reader: a reader was unwound out of reader_sem_ (essay). Its +1 is
// in state_.
void RWMutex::abandon_reader(const detail::SemaUnwind& unwind) noexcept {
  if (unwind.gone) return;
  detail::UnwindCleanup guard;
  if (!guard.alive(this, unwind.since)) return;  // destroyed (essay: Orphans)
  bool granted = unwind.granted;
  while (!granted) {
    // Acquire pairs with the announcing writer's acq_rel, which comes after
    // the earlier writers' releases (H).
    std::uint64_t v = state_.load(std::memory_order_acquire);
    if (detail::semtryacquire(&reader_sem_)) {
      granted = true;
      break;
    }
    // Relaxed: it takes back our own +1; the load above did the acquiring.
    if (count_of(v) < 0 && state_.compare_exchange_strong(v, v - 1, std::memory_order_relaxed)) {
      return;  // took back our +1: as if we had never come
    }
    std::this_thread::yield();
  }
  unlock_shared_impl();  // without unlock_shared()'s preemption point
}

}  // namespace goro

namespace goro {

// destroyed: ~RWMutex's slow path (essay: Orphans).
void RWMutex::destroyed() noexcept {
  const bool b = busy();
  detail::primitive_destroyed(this, b);
  if (b) {
    detail::sema_orphan(&writer_sem_);
    detail::sema_orphan(&reader_sem_);
    detail::sema_orphan(&handoff_sem_);
  }
}

}  // namespace goro
