// stack_pool.hpp: goroutine records and goroutine stacks.
//
// A goroutine is a record (class Goroutine: state, id, the function object
// when it is small, the sleep timer) and a stack, with these lives:
//   - go() takes a spawn record from the RecordPool: dense (ten to a page),
//     no stack yet;
//   - its first switch-in binds a stack slot from the StackPool and moves
//     the goroutine into the record at the top of that slot; the spawn
//     record goes back to the free list as soon as the goroutine's first
//     lines have taken the function object out of it (goroutine.cpp,
//     "Moving a record");
//   - its exit returns the slot, record included.
// So a goroutine that is queued but has never run costs a few hundred
// bytes, not a page: a program that spawns faster than it runs (skynet
// spawns 10 children per node; at its peak most live goroutines have not
// started) touches several times fewer fresh pages (marl does the same: a
// task gets a fiber only when it first runs). And one that has run costs
// one page, its stack's top page, which holds its record and its first
// frames: a million parked goroutines cost a million pages, not a million
// pages plus a million records.
//
// Stack slots, addresses growing to the right (stacks grow left):
//
//   slab:  | header page | slot 0 | slot 1 | ... | slot n-1 |   (n: 128, 256, ... 8192)
//   slot:  | first page | usable stack ......... | gap | record | colour | band |
//          base         lo                      hi                          base+size
//
// - Slabs are reserved with MAP_NORESERVE and MADV_NOHUGEPAGE: only pages a
//   goroutine touches are committed, so a parked goroutine that never went
//   deep costs its stack's top page.
// - A slot's top page is populated when the slot is carved (or reused after
//   its memory was returned) with madvise(MADV_POPULATE_WRITE): on virtual
//   machines a page fault can cost ~20 us against ~2.5 us for the madvise
//   (measured on this project's machines). A growing pool carves slots in
//   batches (a sixteenth of the pool, up to 16) and makes their guards and
//   commits their top pages with one process_madvise each where the kernel
//   allows it on the calling process (6.13, PIDFD_SELF_PROCESS 6.15): 0.2
//   and 0.6 us a page against 1.4 and 2.2. The batch's other slots wait in
//   `prepared_` for the next acquires; a small program commits at most a
//   sixteenth more top pages than it uses.
// - The first page is a guard page. Where the kernel has guard markers
//   (MADV_GUARD_INSTALL, Linux 6.13; not in sanitizer builds, whose leak
//   scanner would read them) every slot gets one: a marker lives in the
//   page table, splits no mapping, and takes the address space's lock only
//   for reading (1.4 us against mprotect's 3.6 on this project's VMs, and
//   it does not stall the other threads' page faults and madvise calls).
//   Otherwise the guard is PROT_NONE while the kernel's mapping budget
//   allows (each splits the mapping: 2 map areas a stack, and
//   vm.max_map_count is 65530 by default, so guards cover some 28,000
//   stacks). Past that budget the first page is ordinary stack, and what
//   lies just below it is the canary band: the top kCanaryBytes of the
//   previous slot (or of the slab's header page), which no goroutine ever
//   writes. A healthy band reads all zero; the scheduler checks it, and the
//   saved stack pointer, at every switch, and an overflow aborts with the
//   goroutine's id, creation site and stack size. (Zero rather than a magic
//   value, because returning a slot's memory to the OS zeroes it.)
// - colour is 0 to 7 cache lines, cycling with the slot's number: slots
//   are 72 KiB apart, so without it every goroutine's record, and the
//   frames just below it, would sit at the same offset in its page and
//   compete for the same cache sets. gap (two lines) keeps the record's
//   lines from being paired with frame lines by the adjacent-line
//   prefetcher. Without them chan_mpmc and pingpong ran 20-70% slower in
//   some runs (it depends on where the physical pages land) than with
//   records apart from their stacks.
// - Free slots and free records go to per-P caches, then to these pools'
//   global lists (pointers, so moving a batch touches no cold memory). The
//   scavenger (run by sysmon) returns the memory of free slots that went
//   unused for a whole period with MADV_DONTNEED, so RSS falls back after a
//   burst. Spawn records are kept, as Go keeps its g structs.
// - A slot's record is built when the slot is carved, and built again when
//   a slot whose memory went back to the OS is reused (it read all zero).
//   for_each_record visits the records of every slot except those: reading
//   a returned page commits it again on some kernels (this project's VMs),
//   so a dump after a burst would bring the whole burst back. A free slot's
//   record reads kDead.
// Alternatives rejected: malloc'd stacks (one map area each above the mmap
// threshold, and no lazy commit control); a PROT_NONE guard page per stack
// always (caps a stock kernel near 32k goroutines); segmented or copying stacks
// (not possible for C++ frames); a record only at the top of the stack,
// from go() on (one record per goroutine, but every queued goroutine then
// holds a page); a record only in the RecordPool (every parked goroutine
// then costs its page plus the record, 384 bytes, elsewhere: 1.65x Go's
// bytes per parked goroutine instead of 1.51x).
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

// Consecutive slots put their record (and so their first frames) this many
// cache lines apart, in a cycle of kColours.
inline constexpr std::size_t kColours = 8;
inline constexpr std::size_t kColourBytes = 64;
// Between the first frame and the record: two cache lines, so the record's
// first line (written by other Ps: status, on every ready) is never paired,
// by the adjacent-line prefetcher, with a line of frames.
inline constexpr std::size_t kRecordGapBytes = 128;

// StackSlot is one stack: its base address, its number in the pool (in
// order of carving: it gives the colour) and whether it has a guard page.
struct StackSlot {
  char* base = nullptr;
  std::uint32_t index = 0;
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
  char* hi(const StackSlot& s) const noexcept { return reinterpret_cast<char*>(record(s)) - kRecordGapBytes; }
  // record: the goroutine record of a slot, kRecordGapBytes above hi.
  Goroutine* record(const StackSlot& s) const noexcept {
    return reinterpret_cast<Goroutine*>(s.base + top_ - (s.index % kColours) * kColourBytes);
  }

  // acquire returns a slot ready for use (top page committed, record
  // built). Slow path: takes the pool lock, may mmap. Throws std::bad_alloc
  // when the address space is exhausted.
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

  // for_each_record calls f on the record of every slot (bound or free)
  // whose memory is in use, under the pool lock: not on slots whose memory
  // went back to the OS, nor on a slot whose record is being built.
  void for_each_record(const std::function<void(Goroutine*)>& f);

 private:
  StackSlot carve() GORO_REQUIRES(lock_);
  // prepare makes the guard pages of freshly carved slots (a guard marker
  // where the kernel has them, else PROT_NONE; a slot whose guard failed
  // loses its guarded flag) and commits their top pages. Called without
  // the lock: the slots are on no list yet.
  void prepare(StackSlot* slots, int n) noexcept;
  // advise_pages applies a madvise advice to n single pages, in one system
  // call where the kernel allows; ok[i] says whether page i took it.
  void advise_pages(char* const* pages, int n, int advice, bool* ok) noexcept;

  // A fresh batch: at most this many slots are carved and prepared at once.
  // 16 saves most of the system calls' cost (spawn_parked: 9.3 us a
  // goroutine with one slot at a time, 7.2-7.7 with 16, 6.9 with 64); 64
  // made timers 12% slower (its ~5,000 slots are carved while others run;
  // 16 was as fast as one at a time).
  static constexpr int kPrepareMax = 16;
  static constexpr int kPidfdSelfProcess = -10001;  // PIDFD_SELF_PROCESS (Linux 6.15)

  const std::size_t page_;
  const std::size_t usable_;
  const std::size_t slot_size_;
  const std::size_t top_;  // offset of a colour-0 slot's record

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
  std::vector<StackSlot> prepared_ GORO_GUARDED_BY(lock_);  // carved with a batch, guarded and committed, never used
  // hidden[i]: slot i's record is not to be read (its memory went back to
  // the OS, or it is being built).
  std::vector<bool> hidden_ GORO_GUARDED_BY(lock_);
  std::int64_t carved_total_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t guarded_count_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t guard_budget_ GORO_GUARDED_BY(lock_) = 0;
  std::int64_t low_water_ GORO_GUARDED_BY(lock_) = 0;  // lowest free_.size() since the last scavenge
  std::int64_t carved_ GORO_GUARDED_BY(lock_) = 0;     // slots handed out from carving or released_ since the last scavenge
  std::int64_t reserve_ GORO_GUARDED_BY(lock_);        // free slots always kept
  bool leak_ = false;
  bool guard_markers_ = false;  // guards are MADV_GUARD_INSTALL markers (set once, in the constructor)
};

// RecordPool makes spawn records, in chunks, and keeps the list of all of
// them (with the StackPool's slot records: Go's allgs) for dumps and
// teardown.
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

  // for_each calls f on every spawn record (live or free) under the pool
  // lock; then calls then(), still under it.
  void for_each(const std::function<void(Goroutine*)>& f, const std::function<void()>& then = nullptr);
  std::int64_t count() noexcept;
  // lock: bind_stack moves a goroutine under it while a listing is under way.
  Lock& lock() noexcept { return lock_; }

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
