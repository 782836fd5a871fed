// stack_pool.hpp: goroutine stacks, and the goroutine records that live on them.
//
// Layout (addresses grow to the right; stacks grow left):
//
//   slab:  | header page | slot 0 | slot 1 | ... | slot 127 |
//   slot:  | first page | usable stack ........ | Goroutine record | band |
//          slot          lo                     hi                        slot+size
//
// - Slots are carved from big anonymous mappings (slabs) reserved with
//   MAP_NORESERVE and MADV_NOHUGEPAGE: only pages a goroutine touches are
//   committed, so a parked goroutine costs about one page (its record, its
//   function object and its first frames share the top page).
// - A slot's top page is populated when the slot is carved, with one
//   madvise(MADV_POPULATE_WRITE): on virtual machines a page fault can cost
//   ~20 us against ~2.5 us for the madvise (measured on this project's
//   machines), and every goroutine needs that page anyway.
// - The first page is a PROT_NONE guard page while the kernel's mapping
//   budget allows (each guard splits the mapping: 2 map areas a stack, and
//   vm.max_map_count is 65530 by default, so guards cover some 30,000
//   stacks). Past that budget the first page is ordinary stack, and what
//   lies just below it is the canary band: the last kCanaryBytes of the
//   previous slot (or of the slab's header page), which no goroutine ever
//   writes and which sits in a page that is resident anyway (the previous
//   record's page). A healthy band reads all zero; the scheduler checks it,
//   and the saved stack pointer, at every switch, and an overflow aborts
//   with the goroutine's id, creation site and stack size. (A zero band,
//   not a magic value, because returning a neighbour's memory to the OS
//   zeroes it.)
// - Exited goroutines keep their slot and go to a free list (per P, then
//   this pool's global list), so spawning reuses warm memory. The scavenger
//   (run by sysmon) returns the memory of free slots that went unused for a
//   whole scavenge period with MADV_DONTNEED, so RSS falls back after a burst.
// Alternatives rejected: malloc'd stacks (one map area each above the mmap
// threshold, and no lazy commit control); a guard page per stack always
// (caps a stock kernel near 32k goroutines); segmented or copying stacks
// (not possible for C++ frames).
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

class StackPool {
 public:
  explicit StackPool(std::size_t usable_size);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  std::size_t usable_size() const noexcept { return usable_; }

  // new_goroutine builds a record on a fresh (or released) slot and registers
  // it in allgs. Slow path: takes the pool lock, may mmap. Throws
  // std::bad_alloc when the address space is exhausted.
  Goroutine* new_goroutine();

  // put_batch / get_batch move free goroutines between a P's cache and the
  // global free list (a chain through sched_link). Take the pool lock.
  void put_batch(Goroutine* head, Goroutine* tail, int n) noexcept;
  Goroutine* get_batch(int max, int* got) noexcept;

  // scavenge returns the memory of free goroutines that stayed unused since
  // the previous call, beyond a small reserve; at most `max`. Returns how
  // many it released. Called by sysmon.
  std::int64_t scavenge(std::int64_t max);
  // scavenge_pending: is there surplus the next scavenge() would release?
  bool scavenge_pending() noexcept;

  // for_each_goroutine calls f on every record (live or free) under the allg lock.
  void for_each_goroutine(const std::function<void(Goroutine*)>& f);

  // leak_slabs makes the destructor keep the memory mapped (teardown found
  // goroutines it could not unwind, and something may still point at them).
  void leak_slabs() noexcept { leak_ = true; }

  // Statistics.
  std::int64_t records() noexcept;        // records in existence (live + free)
  std::int64_t free_records() noexcept;   // in the global free list
  std::int64_t reserved_bytes() noexcept;
  std::int64_t guarded() noexcept;

  // check_canary reports whether g's canary band is intact (always true for
  // guarded stacks).
  static bool canary_intact(const Goroutine* g) noexcept;

 private:
  char* take_slot(bool* guarded);  // under lock_
  void release_record(Goroutine* g) noexcept;

  const std::size_t page_;
  const std::size_t usable_;
  const std::size_t record_bytes_;  // the record, rounded to 64
  const std::size_t slot_size_;
  std::size_t slots_per_slab_;

  Lock lock_;  // everything below
  struct Slab {
    char* base;
    std::size_t bytes;
  };
  std::vector<Slab> slabs_;
  char* bump_ = nullptr;
  char* bump_end_ = nullptr;
  struct ReleasedSlot {
    char* slot;
    bool guarded;
  };
  std::vector<ReleasedSlot> released_;  // slots whose memory went back to the OS
  std::int64_t guarded_count_ = 0;
  std::int64_t guard_budget_ = 0;
  Goroutine* free_head_ = nullptr;
  std::int64_t free_count_ = 0;
  std::int64_t low_water_ = 0;  // lowest free_count_ since the last scavenge
  std::int64_t reserve_;        // free records always kept
  bool leak_ = false;

  Lock allg_lock_;
  std::vector<Goroutine*> allgs_;
};

}  // namespace goro::rt
