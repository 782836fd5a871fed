// lock.hpp: the runtime's names for the futex lock and note (defined in
// goro/detail/lock.hpp and goro/detail/futex.hpp so that channels and sync
// can share them).
#pragma once

#include "goro/detail/futex.hpp"
#include "goro/detail/lock.hpp"

namespace goro::rt {
using detail::cpu_relax;
using detail::futex_wait;
using detail::futex_wake;
using detail::Lock;
using detail::LockGuard;
using detail::Note;
using detail::SpinGuard;
using detail::SpinLock;
}  // namespace goro::rt
