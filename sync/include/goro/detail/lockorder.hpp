// goro/detail/lockorder.hpp: the hooks through which Mutex and RWMutex
// report acquisitions to the lock-order checker (GORODEBUG=lockorder=1,
// sync/src/lockorder.cpp). Not part of the public contract.
#pragma once

#include <atomic>

namespace goro::detail {

// g_lockorder: the checker is on (set by run() from $GORODEBUG; defined in
// the runtime). Read relaxed on every lock and unlock.
extern std::atomic<bool> g_lockorder;

inline bool lockorder_on() noexcept { return g_lockorder.load(std::memory_order_relaxed); }

// lockorder_acquired: the caller now holds `lock` (a "sync.Mutex" or
// "sync.RWMutex"); `tried`: taken by a successful try_lock, which cannot
// have waited. lockorder_released: `lock` was released. lockorder_forget:
// `lock` is being destroyed.
void lockorder_acquired(const void* lock, const char* kind, bool tried) noexcept;
void lockorder_released(const void* lock) noexcept;
void lockorder_forget(const void* lock) noexcept;

}  // namespace goro::detail
