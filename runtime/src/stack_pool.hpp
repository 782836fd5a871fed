// stack_pool.hpp: goroutine records and goroutine stacks.
//
// A goroutine is two things with separate lives:
//   - its record (class Goroutine: state, id, the function object when it
//     is small, the sleep timer), from the RecordPool: dense (a dozen to a
//     page), taken at go() and returned at exit;
//   - its stack, a slot from the StackPool, bound when the goroutine is
//     first switched in and returned when it exits.
// So a goroutine that is queued but has never run costs a few hundred
// bytes, not a page: a program that spawns faster than it runs (skynet
// spawns 10 children per node; at its peak most live goroutines have not
// started) touches several times fewer fresh pages. (marl does the same:
// a task gets a fiber only when it first runs.)
//
// Stack slots, addresses growing to the right (stacks grow left):
//
//   slab:  | header page | slot 0 | slot 1 | ... | slot n-1 |   (n: 128, 256, ... 8192)
//   slot:  | first page | usable stack ..................... | band |
//          base         lo                                  hi     base+size
//
// - Slabs are reserved with MAP_NORESERVE and MADV_NOHUGEPAGE: only pages a
//   goroutine touches are committed, so a parked goroutine that never went
//   deep costs its stack's top page plus its share of a record page.
// - A slot's top page is populated when the slot is carved (or reused after
//   its memory was returned), with one madvise(MADV_POPULATE_WRITE): on
//   virtual machines a page fault can cost ~20 us against ~2.5 us for the
//   madvise (measured on this project's machines).
// - The first page is a PROT_NONE guard page while the kernel's mapping
//   budget allows (each guard splits the mapping: 2 map areas a stack, and
//   vm.max_map_count is 65530 by default, so guards cover some 28,000
//   stacks). Past that budget the first page is ordinary stack, and what
//   lies just below it is the canary band: the top kCanaryBytes of the
//   previous slot (or of the slab's header page), which no goroutine ever
//   writes. A healthy band reads all zero; the scheduler checks it, and the
//   saved stack pointer, at every switch, and an overflow aborts with the
//   goroutine's id, creation site and stack size. (Zero rather than a magic
//   value, because returning a slot's memory to the OS zeroes it.)
// - Free slots and free records go to per-P caches, then to these pools'
//   global lists (pointers, so moving a batch touches no cold memory). The
//   scavenger (run by sysmon) returns the memory of free slots that went
//   unused for a whole period with MADV_DONTNEED, so RSS falls back after a
//   burst. Records are kept, as Go keeps its g structs.
// Alternatives rejected: malloc'd stacks (one map area each above the mmap
// threshold, and no lazy commit control); a guard page per stack always
// (caps a stock kernel near 32k goroutines); segmented or copying stacks
// (not possible for C++ frames); the record at the top of its stack (one
// allocation, but every queued goroutine then holds a page).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "lock.hpp"

namespace goro {
class Goroutine;
}

namespace goro::rt {

inline constexpr std::size_t kDefaultStackSize = 64 * 1024;
inline constexpr std::size_t kMinStackSize = 16 * 1024;
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;  // Go's maxstacksize
inline constexpr std::size_t kCanaryBytes = 64;

// StackSlot is one stack: its base address and whether it has a guard page.
struct StackSlot {
  char* base = nullptr;
  bool guarded = false;
};

class StackPool {
 public:
  explicit StackPool(std::size_t usable_size);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  std::size_t usable_size() const noexcept { return usable_; }
  std::size_t slot_size() const noexcept { return slot_size_; }

  // lo/hi: the usable range of a slot (the stack pointer starts below hi).
  char* lo(const StackSlot& s) const noexcept { return s.guarded ? s.base + page_ : s.base; }
  char* hi(const StackSlot& s) const noexcept { return s.base + slot_size_ - kCanaryBytes; }

  // acquire returns a slot ready for use (top page committed). Slow path:
  // takes the pool lock, may mmap. Throws std::bad_alloc when the address
  // space is exhausted.
  StackSlot acquire();
  // put_batch / get_batch move free slots between a P's cache and the
  // global free list.
  void put_batch(const StackSlot* slots, int n);
  int get_batch(StackSlot* out, int max) noexcept;

  // scavenge returns the memory of free slots that stayed unused since the
  // previous call, beyond a small reserve, unless slots were carved in the
  // meantime (the pool is growing); at most `max`. Returns how many it
  // released. Called by sysmon.
  std::int64_t scavenge(std::int64_t max);
  // scavenge_pending: is there surplus a later scavenge() would release?
  bool scavenge_pending() noexcept;

  // leak_slabs makes the destructor keep the memory mapped (teardown found
  // goroutines it could not unwind, and something may still point at them).
  void leak_slabs() noexcept { leak_ = true; }

  // Statistics.
  std::int64_t slots_carved() noexcept;  // slots in existence (bound or free)
  std::int64_t free_slots() noexcept;
  std::int64_t reserved_bytes() noexcept;
  std::int64_t guarded() noexcept;

  // canary_intact reports whether the band below a canary-mode slot is
  // intact (always true for guarded slots).
  static bool canary_intact(const StackSlot& s) noexcept;

 private:
  StackSlot carve() GORO_REQUIRES(lock_);

  const std::size_t page_;
  const std::size_t usable_;
  const std::size_t slot_size_;

  Lock lock_;
  struct Slab {
    char* base;
    std::size_t bytes;
  };
  std::vector<Slab> slabs_ GORO_GUARDED_BY(lock_);
  char* bump_ GORO_GUARDED_BY(lock_) = nullptr;
  char* bump_end_ GORO_GUARDED_BY(lock_) = nullptr;
  std::vector<StackSlot> released_ GORO_GUARDED_BY(lock_);  // memory returned to the OS; populate before use
  std::vector<StackSlot> free_ GORO_GUARDED_BY(lock_);      // oldest first
  std::int64_t carved_total_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t guarded_count_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t guard_budget_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t low_water_ GORO_GUARDED_BY(lock_) = 0;  // lowest free_.size() since the last scavenge
  std::int64_t carved_ GORO_GUARDED_BY(lock_) = 0;     // slots handed out from carving or released_ since the last scavenge
  std::int64_t reserve_ GORO_GUARDED_BY(lock_);        // free slots always kept
  bool leak_ = false;
};

// RecordPool makes goroutine records, in chunks, and keeps the list of all
// of them (Go's allgs) for dumps and teardown.
class RecordPool {
 public:
  RecordPool() = default;
  ~RecordPool();
  RecordPool(const RecordPool&) = delete;
  RecordPool& operator=(const RecordPool&) = delete;

  // make builds a new record and registers it. Slow path (the pool lock).
  Goroutine* make();
  // put_batch / get_batch move free records between a P's cache and the
  // global free list. get_batch hands out the most recently freed first.
  void put_batch(Goroutine* const* gs, int n);
  int get_batch(Goroutine** out, int max) noexcept;

  // for_each calls f on every record (live or free) under the pool lock.
  void for_each(const std::function<void(Goroutine*)>& f);
  std::int64_t count() noexcept;

  void leak() noexcept { leak_ = true; }

 private:
  Lock lock_;
  std::vector<Goroutine*> chunks_ GORO_GUARDED_BY(lock_);  // arrays of kChunk records
  std::size_t used_in_last_ GORO_GUARDED_BY(lock_) = 0;
  std::vector<Goroutine*> all_ GORO_GUARDED_BY(lock_);
  std::vector<Goroutine*> free_ GORO_GUARDED_BY(lock_);
  bool leak_ = false;
};

}  // namespace goro::rt
