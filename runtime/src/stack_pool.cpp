// stack_pool.cpp: see stack_pool.hpp for the layout and the policy.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels fail it harmlessly
#endif

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

long count_maps() {
  std::ifstream in("/proc/self/maps");
  long n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// Slabs hold this many slots: big enough that mmap is rare (one call per
// 128 goroutines at most), small enough that a small program reserves
// little address space.
constexpr std::size_t kSlotsPerSlab = 128;

// The pool always keeps this many free records, so a steady workload that
// spawns and exits never pays for fresh pages.
constexpr std::int64_t kReserve = 1024;

}  // namespace

StackPool::StackPool(std::size_t usable_size)
    : page_(static_cast<std::size_t>(sysconf(_SC_PAGESIZE))),
      usable_(round_up(usable_size, page_)),
      record_bytes_(round_up(sizeof(Goroutine), 64) + kCanaryBytes),
      slot_size_(page_ + round_up(usable_ + record_bytes_, page_)),
      slots_per_slab_(kSlotsPerSlab),
      reserve_(kReserve) {
  // Guard budget: each guard page costs two map areas. Leave half the
  // kernel's budget (minus what the process already uses) to everyone else;
  // sanitizers map a lot themselves, so give them a quarter.
  const long max_maps = read_long_file("/proc/sys/vm/max_map_count", 65530);
  long spare = max_maps - count_maps() - 4096;
  spare = kUnderSanitizer ? spare / 4 : spare / 2;
  guard_budget_ = std::max<long>(0, spare / 2);
  // GORODEBUG=stackguard=0: canaries only (tests the canary path).
  if (const char* dbg = std::getenv("GORODEBUG"); dbg != nullptr && std::strstr(dbg, "stackguard=0") != nullptr) {
    guard_budget_ = 0;
  }
}

StackPool::~StackPool() {
  if (leak_) return;
  for (const Slab& s : slabs_) {
#if GORO_ASAN
    __lsan_unregister_root_region(s.base, s.bytes);
    GORO_UNPOISON(s.base, s.bytes);
#endif
    munmap(s.base, s.bytes);
  }
}

char* StackPool::take_slot(bool* guarded) {
  if (!released_.empty()) {
    // A released slot keeps its guard page (mprotect survives MADV_DONTNEED).
    const ReleasedSlot r = released_.back();
    released_.pop_back();
    *guarded = r.guarded;
    return r.slot;
  }
  if (bump_ == bump_end_) {
    const std::size_t bytes = page_ + slot_size_ * slots_per_slab_;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
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
  char* slot = bump_;
  bump_ += slot_size_;
  *guarded = false;
  if (guarded_count_ < guard_budget_ && mprotect(slot, page_, PROT_NONE) == 0) {
    ++guarded_count_;
    *guarded = true;
  }
  return slot;
}

Goroutine* StackPool::new_goroutine() {
  char* slot;
  bool guarded;
  {
    LockGuard l(lock_);
    slot = take_slot(&guarded);
  }
  char* hi = slot + slot_size_ - record_bytes_;
  // Commit the top page now, in one call, rather than by a page fault.
  madvise(slot + slot_size_ - page_, page_, MADV_POPULATE_WRITE);
  GORO_UNPOISON(slot + (guarded ? page_ : 0), slot_size_ - (guarded ? page_ : 0));
  auto* g = new (hi) Goroutine();
  g->stack.slot = slot;
  g->stack.lo = guarded ? slot + page_ : slot;
  g->stack.hi = hi;
  g->stack.guarded = guarded;
  {
    LockGuard l(allg_lock_);
    g->allg_index = static_cast<std::uint32_t>(allgs_.size());
    allgs_.push_back(g);
  }
  return g;
}

void StackPool::put_batch(Goroutine* head, Goroutine* tail, int n) noexcept {
  LockGuard l(lock_);
  tail->sched_link = free_head_;
  free_head_ = head;
  free_count_ += n;
}

Goroutine* StackPool::get_batch(int max, int* got) noexcept {
  LockGuard l(lock_);
  Goroutine* head = free_head_;
  Goroutine* last = nullptr;
  int n = 0;
  for (Goroutine* g = free_head_; g != nullptr && n < max; g = g->sched_link) {
    last = g;
    ++n;
  }
  if (n == 0) {
    *got = 0;
    return nullptr;
  }
  free_head_ = last->sched_link;
  last->sched_link = nullptr;
  free_count_ -= n;
  low_water_ = std::min(low_water_, free_count_);
  *got = n;
  return head;
}

bool StackPool::scavenge_pending() noexcept {
  LockGuard l(lock_);
  return std::min(low_water_, free_count_) > reserve_ || free_count_ > reserve_;
}

void StackPool::release_record(Goroutine* g) noexcept {
  {
    LockGuard l(allg_lock_);
    Goroutine* last = allgs_.back();
    last->allg_index = g->allg_index;
    allgs_[g->allg_index] = last;
    allgs_.pop_back();
  }
  g->~Goroutine();
}

std::int64_t StackPool::scavenge(std::int64_t max) {
  // Take the surplus that stayed unused for a whole period: the low-water
  // mark of the free list since the last call, above the reserve.
  Goroutine* chain = nullptr;
  std::int64_t n = 0;
  {
    LockGuard l(lock_);
    std::int64_t surplus = std::min(low_water_, free_count_) - reserve_;
    low_water_ = free_count_;
    if (surplus <= 0) return 0;
    surplus = std::min(surplus, max);
    while (n < surplus && free_head_ != nullptr) {
      Goroutine* g = free_head_;
      free_head_ = g->sched_link;
      g->sched_link = chain;
      chain = g;
      ++n;
    }
    free_count_ -= n;
    low_water_ = free_count_;
  }
  std::vector<ReleasedSlot> slots;
  slots.reserve(static_cast<std::size_t>(n));
  while (chain != nullptr) {
    Goroutine* g = chain;
    chain = g->sched_link;
    const ReleasedSlot r{g->stack.slot, g->stack.guarded};
    release_record(g);
    slots.push_back(r);
  }
  // Return the memory in as few calls as possible: neighbouring slots
  // coalesce into one range (after a burst most of a slab is free at once).
  // MADV_DONTNEED also accepts the PROT_NONE guard pages inside a range.
  std::sort(slots.begin(), slots.end(),
            [](const ReleasedSlot& a, const ReleasedSlot& b) { return a.slot < b.slot; });
  std::size_t i = 0;
  while (i < slots.size()) {
    std::size_t j = i + 1;
    while (j < slots.size() && slots[j].slot == slots[j - 1].slot + slot_size_) ++j;
    // Whole slots go, bands included: a released band reads zero, which is
    // what a healthy band reads, so the slot above is not disturbed.
    char* begin = slots[i].slot;
    const std::size_t bytes = (j - i) * slot_size_;
    GORO_UNPOISON(begin, bytes);
    madvise(begin, bytes, MADV_DONTNEED);
    i = j;
  }
  {
    LockGuard l(lock_);
    released_.insert(released_.end(), slots.begin(), slots.end());
  }
  return n;
}

void StackPool::for_each_goroutine(const std::function<void(Goroutine*)>& f) {
  LockGuard l(allg_lock_);
  for (Goroutine* g : allgs_) f(g);
}

std::int64_t StackPool::records() noexcept {
  LockGuard l(allg_lock_);
  return static_cast<std::int64_t>(allgs_.size());
}

std::int64_t StackPool::free_records() noexcept {
  LockGuard l(lock_);
  return free_count_;
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

bool StackPool::canary_intact(const Goroutine* g) noexcept {
  if (g->stack.guarded) return true;
  // The band is the last bytes of the previous slot (or of the header page).
  const auto* band = reinterpret_cast<const volatile std::uint64_t*>(g->stack.slot - kCanaryBytes);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < kCanaryBytes / sizeof(std::uint64_t); ++i) acc |= band[i];
  return acc == 0;
}

}  // namespace goro::rt
