// stack_pool.cpp: see stack_pool.hpp for the layout and the policy.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels fail it harmlessly
#endif
#include <sys/syscall.h>
#include <sys/uio.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13; older kernels fail it (EINVAL)
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <new>
#include <string>

#include "goroutine.hpp"
#include "sanitizers.hpp"

namespace goro::rt {
namespace {

std::size_t round_up(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

long read_long_file(const char* path, long fallback) {
  std::ifstream in(path);
  long v = 0;
  if (in >> v) return v;
  return fallback;
}

// guard_markers_supported: can this kernel install guard markers
// (MADV_GUARD_INSTALL) in a private anonymous mapping? Not under the
// sanitizers: LeakSanitizer scans the slabs as root regions and skips only
// what /proc/self/maps shows unreadable, which a marker is not.
bool guard_markers_supported() {
  if (kUnderSanitizer) return false;
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) return false;
  const bool ok = madvise(mem, page, MADV_GUARD_INSTALL) == 0;
  munmap(mem, 2 * page);
  return ok;
}

long count_maps() {
  std::ifstream in("/proc/self/maps");
  long n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// The first slab holds this many slots, and each next one twice as many as
// the one before, up to kMaxSlotsPerSlab: a small program reserves little
// address space, and mmap stays rare. Large slabs matter for memory too:
// a slab's header page holds its slot 0's canary band, which the switch
// checks read, and a read of untouched memory commits a page on some
// kernels (this project's VMs): 4 KiB per 128 goroutines at a fixed 128.
constexpr std::size_t kSlotsPerSlab = 128;
constexpr std::size_t kMaxSlotsPerSlab = 8192;

// The pool always keeps this many free slots, so a steady workload that
// spawns and exits never pays for fresh pages.
constexpr std::int64_t kReserve = 1024;

// Records come in chunks of this many.
constexpr std::size_t kChunk = 256;

}  // namespace

StackPool::StackPool(std::size_t usable_size)
    : page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))),
      usable_(round_up(usable_size, page_)),
      slot_size_(page_ + round_up(usable_ + kRecordGapBytes + sizeof(Goroutine) + (kColours - 1) * kColourBytes +
                                      kCanaryBytes,
                                  page_)),
      top_(slot_size_ - kCanaryBytes - sizeof(Goroutine)),
      reserve_(kReserve) {
  // The record shares the top page with the first frames.
  static_assert(sizeof(Goroutine) % alignof(Goroutine) == 0 && kCanaryBytes % alignof(Goroutine) == 0 &&
                kColourBytes % alignof(Goroutine) == 0);
  static_assert(kRecordGapBytes + sizeof(Goroutine) + (kColours - 1) * kColourBytes + kCanaryBytes <= 1088,
                "the record would crowd the stack's top page");
  if (guard_markers_supported()) {
    // Guard markers split no mapping: every slot gets one.
    guard_markers_ = true;
    guard_budget_ = std::numeric_limits<std::int64_t>::max();
  } else {
    // Guard budget: each PROT_NONE guard page costs two map areas. Leave
    // 8192 of the kernel's budget (beyond what the process already uses) to
    // everyone else; sanitizers map a lot themselves, so they get half of
    // the rest.
    const long max_maps = read_long_file("/proc/sys/vm/max_map_count", 65530);
    long spare = max_maps - count_maps() - 8192;
    if (kUnderSanitizer) spare /= 2;
    guard_budget_ = std::max<long>(0, spare / 2);
  }
  // GORODEBUG=stackguard=0: canaries only (tests the canary path).
  if (const char* dbg = std::getenv("GORODEBUG"); dbg != nullptr && std::strstr(dbg, "stackguard=0") != nullptr) {
    guard_budget_ = 0;
  }
}

StackPool::~StackPool() {
  if (leak_) return;
  for_each_record([](Goroutine* g) { g->~Goroutine(); });
  for (const Slab& s : slabs_) {
#if GORO_ASAN
    __lsan_unregister_root_region(s.base, s.bytes);
    GORO_UNPOISON(s.base, s.bytes);
#endif
    munmap(s.base, s.bytes);
  }
}

StackSlot StackPool::carve() {
  if (bump_ == bump_end_) {
    const std::size_t slots = std::min(kSlotsPerSlab << std::min<std::size_t>(slabs_.size(), 16), kMaxSlotsPerSlab);
    const std::size_t bytes = page_ + slot_size_ * slots;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    // Huge pages would commit 2 MiB for a goroutine that touched 4 KiB.
    madvise(mem, bytes, MADV_NOHUGEPAGE);
#if GORO_ASAN
    // Parked goroutines hold the only pointers to some heap blocks: let
    // LeakSanitizer scan the stacks.
    __lsan_register_root_region(mem, bytes);
#endif
    slabs_.push_back({static_cast<char*>(mem), bytes});
    bump_ = static_cast<char*>(mem) + page_;  // the header page holds slot 0's canary band
    bump_end_ = static_cast<char*>(mem) + bytes;
  }
  StackSlot s{bump_, static_cast<std::uint32_t>(carved_total_), false};
  bump_ += slot_size_;
  ++carved_total_;
  hidden_.push_back(true);  // until acquire has built its record
  // The guard is reserved here and made by acquire, outside the lock.
  if (guarded_count_ < guard_budget_) {
    ++guarded_count_;
    s.guarded = true;
  }
  return s;
}

void StackPool::advise_pages(char* const* pages, int n, int advice, bool* ok) noexcept {
  int done = 0;
#if defined(SYS_process_madvise)
  // One process_madvise on ourselves (PIDFD_SELF_PROCESS: Linux 6.15; any
  // advice on the calling process: 6.13) costs 0.2 us a page for guard
  // markers and 0.6 for populating, against 1.4 and 2.2 for one madvise a
  // page (this project's VMs). Where it fails, a madvise each.
  static std::atomic<bool> batch_works{true};
  if (n > 1 && batch_works.load(std::memory_order_relaxed)) {
    struct iovec iov[kPrepareMax];
    for (int i = 0; i < n; ++i) iov[i] = {pages[i], page_};
    const long r = syscall(SYS_process_madvise, kPidfdSelfProcess, iov, n, advice, 0);
    if (r < 0) {
      batch_works.store(false, std::memory_order_relaxed);
    } else {
      done = static_cast<int>(static_cast<std::size_t>(r) / page_);  // the pages advised, in order
    }
  }
#endif
  for (int i = 0; i < n; ++i) ok[i] = i < done || madvise(pages[i], page_, advice) == 0;
}

void StackPool::prepare(StackSlot* slots, int n) noexcept {
  char* pages[kPrepareMax] = {};
  bool ok[kPrepareMax] = {};
  // Guards (the slots are on no list, hidden from listings: nobody else
  // looks at them meanwhile). mprotect takes the address space's lock for
  // writing and costs microseconds: made under lock_, it held every other
  // P's acquire spinning, then yielding (3,500 sched_yield calls in one
  // timers run on 2 Ps).
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (slots[i].guarded) pages[k++] = slots[i].base;
  }
  if (guard_markers_) {
    advise_pages(pages, k, MADV_GUARD_INSTALL, ok);
  } else {
    for (int i = 0; i < k; ++i) ok[i] = mprotect(pages[i], page_, PROT_NONE) == 0;
  }
  int failed = 0;
  for (int i = 0, j = 0; i < n; ++i) {
    if (!slots[i].guarded) continue;
    if (!ok[j++]) {
      slots[i].guarded = false;
      ++failed;
    }
  }
  if (failed != 0) {
    LockGuard l(lock_);
    guarded_count_ -= failed;
  }
  // Commit the top pages now rather than by page faults (the essay).
  for (int i = 0; i < n; ++i) pages[i] = slots[i].base + slot_size_ - page_;
  advise_pages(pages, n, MADV_POPULATE_WRITE, ok);
}

StackSlot StackPool::acquire() {
  StackSlot s;
  StackSlot fresh[kPrepareMax];
  int n = 0;
  bool reused = false;
  {
    LockGuard l(lock_);
    ++carved_;
    if (!released_.empty()) {
      // A released slot keeps its guard page (guards survive MADV_DONTNEED).
      s = released_.back();
      released_.pop_back();
      reused = true;
    } else if (!prepared_.empty()) {
      s = prepared_.back();
      prepared_.pop_back();
    } else {
      // Carve a batch, a sixteenth of the pool (at most kPrepareMax), so a
      // growing pool pays for its system calls once a batch, and a small
      // program commits few pages it does not use.
      const int want = static_cast<int>(std::clamp<std::int64_t>(carved_total_ / 16, 1, kPrepareMax));
      for (; n < want; ++n) {
        try {
          fresh[n] = carve();
        } catch (const std::bad_alloc&) {
          if (n == 0) throw;  // out of address space
          break;
        }
      }
    }
  }
  if (n != 0) {
    prepare(fresh, n);
    // Hand the batch out in address order, as slots carved one at a time
    // would be: prepared_ is taken from its back.
    s = fresh[0];
    if (n > 1) {
      LockGuard l(lock_);
      prepared_.insert(prepared_.end(), std::make_reverse_iterator(fresh + n), std::make_reverse_iterator(fresh + 1));
    }
  } else if (reused) {
    // Its memory went back to the OS: commit the top page again.
    madvise(s.base + slot_size_ - page_, page_, MADV_POPULATE_WRITE);
  }
  GORO_UNPOISON(lo(s), static_cast<std::size_t>(s.base + slot_size_ - lo(s)));
  // New, or its memory read all zero: build the record, then show it.
  ::new (record(s)) Goroutine();
  LockGuard l(lock_);
  hidden_[s.index] = false;
  return s;
}

void StackPool::for_each_record(const std::function<void(Goroutine*)>& f) {
  LockGuard l(lock_);
  std::size_t i = 0;
  for (const Slab& slab : slabs_) {
    const std::size_t n = (slab.bytes - page_) / slot_size_;
    for (std::size_t j = 0; j < n && i < hidden_.size(); ++j, ++i) {
      if (!hidden_[i]) f(record(StackSlot{slab.base + page_ + j * slot_size_, static_cast<std::uint32_t>(i), false}));
    }
  }
}

void StackPool::put_batch(const StackSlot* slots, int n) {
  LockGuard l(lock_);
  free_.insert(free_.end(), slots, slots + n);
}

int StackPool::get_batch(StackSlot* out, int max) noexcept {
  LockGuard l(lock_);
  const int n = static_cast<int>(std::min<std::size_t>(free_.size(), static_cast<std::size_t>(max)));
  // Most recently freed first (warmest); out[n-1] is used first.
  std::copy(free_.end() - n, free_.end(), out);
  free_.resize(free_.size() - static_cast<std::size_t>(n));
  low_water_ = std::min(low_water_, static_cast<std::int64_t>(free_.size()));
  return n;
}

bool StackPool::scavenge_pending() noexcept {
  LockGuard l(lock_);
  return static_cast<std::int64_t>(free_.size()) > reserve_;
}

std::int64_t StackPool::scavenge(std::int64_t max) {
  // Take the surplus that stayed unused for a whole period: the low-water
  // mark of the free list since the last call, above the reserve. Not while
  // the pool is growing (slots were handed out from carving this period):
  // what is free now is likely needed again at once, and a page given back
  // costs a page fault to take back.
  std::vector<StackSlot> victims;
  {
    LockGuard l(lock_);
    const auto size = static_cast<std::int64_t>(free_.size());
    std::int64_t surplus = std::min(low_water_, size) - reserve_;
    low_water_ = size;
    if (carved_ != 0) {
      carved_ = 0;
      return 0;
    }
    if (surplus <= 0) return 0;
    surplus = std::min(surplus, max);
    // The oldest (coldest) go first.
    victims.assign(free_.begin(), free_.begin() + surplus);
    free_.erase(free_.begin(), free_.begin() + surplus);
    // Their records (kDead: free slots) are not to be read from now on.
    for (const StackSlot& v : victims) hidden_[v.index] = true;
    low_water_ = static_cast<std::int64_t>(free_.size());
  }
  // Return the memory in as few calls as possible: neighbouring slots
  // coalesce into one range (after a burst most of a slab is free at once).
  // Whole slots go, bands included: a released band reads zero, which is
  // what a healthy band reads, so the slot above is not disturbed.
  // MADV_DONTNEED also accepts the PROT_NONE guard pages inside a range.
  std::sort(victims.begin(), victims.end(), [](const StackSlot& a, const StackSlot& b) { return a.base < b.base; });
  std::size_t i = 0;
  while (i < victims.size()) {
    std::size_t j = i + 1;
    while (j < victims.size() && victims[j].base == victims[j - 1].base + slot_size_) ++j;
    const std::size_t bytes = (j - i) * slot_size_;
    GORO_UNPOISON(victims[i].base, bytes);
    madvise(victims[i].base, bytes, MADV_DONTNEED);
    i = j;
  }
  {
    LockGuard l(lock_);
    released_.insert(released_.end(), victims.begin(), victims.end());
  }
  return static_cast<std::int64_t>(victims.size());
}

std::int64_t StackPool::slots_carved() noexcept {
  LockGuard l(lock_);
  return carved_total_;
}

std::int64_t StackPool::free_slots() noexcept {
  LockGuard l(lock_);
  return static_cast<std::int64_t>(free_.size() + released_.size() + prepared_.size());
}

std::int64_t StackPool::reserved_bytes() noexcept {
  LockGuard l(lock_);
  std::int64_t b = 0;
  for (const Slab& s : slabs_) b += static_cast<std::int64_t>(s.bytes);
  return b;
}

std::int64_t StackPool::guarded() noexcept {
  LockGuard l(lock_);
  return guarded_count_;
}

bool StackPool::canary_intact(const StackSlot& s) noexcept {
  if (s.guarded) return true;
  // The band is the top of the previous slot (or of the header page).
  const auto* band = reinterpret_cast<const volatile std::uint64_t*>(s.base - kCanaryBytes);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < kCanaryBytes / sizeof(std::uint64_t); ++i) acc |= band[i];
  return acc == 0;
}

RecordPool::~RecordPool() {
  if (leak_) return;
  for (Goroutine* g : all_) g->~Goroutine();  // spawn records only: slots' records go with the StackPool
  for (Goroutine* chunk : chunks_) ::operator delete(static_cast<void*>(chunk), std::align_val_t(alignof(Goroutine)));
}

Goroutine* RecordPool::make() {
  LockGuard l(lock_);
  if (chunks_.empty() || used_in_last_ == kChunk) {
    void* mem = ::operator new(kChunk * sizeof(Goroutine), std::align_val_t(alignof(Goroutine)));
    chunks_.push_back(static_cast<Goroutine*>(mem));
    used_in_last_ = 0;
  }
  Goroutine* g = new (chunks_.back() + used_in_last_++) Goroutine();
  all_.push_back(g);
  return g;
}

void RecordPool::put_batch(Goroutine* const* gs, int n) {
  LockGuard l(lock_);
  free_.insert(free_.end(), gs, gs + n);
}

int RecordPool::get_batch(Goroutine** out, int max) noexcept {
  LockGuard l(lock_);
  const int n = static_cast<int>(std::min<std::size_t>(free_.size(), static_cast<std::size_t>(max)));
  std::copy(free_.end() - n, free_.end(), out);
  free_.resize(free_.size() - static_cast<std::size_t>(n));
  return n;
}

void RecordPool::for_each(const std::function<void(Goroutine*)>& f, const std::function<void()>& then) {
  LockGuard l(lock_);
  for (Goroutine* g : all_) f(g);
  if (then) then();
}

std::int64_t RecordPool::count() noexcept {
  LockGuard l(lock_);
  return static_cast<std::int64_t>(all_.size());
}

}  // namespace goro::rt
