// goro/detail/fast_path.hpp: the two runtime flags that the inline fast
// paths of goro's public templates and classes (Mutex, RWMutex, WaitGroup,
// Once, Cond) read. Not part of the public contract: the blocking seam
// itself (park/ready) is internal to goro.
#pragma once

#include <atomic>

namespace goro {

// Goroutine is the opaque record of a goroutine, or of a plain thread that
// blocks through the runtime.
class Goroutine;

namespace detail {

// t_preempt is the preemption flag of the M running on this thread (false
// forever on plain threads). sysmon sets it, through the M's pointer to it,
// when the M's goroutine has run for 10 ms; the M clears it when it
// switches goroutines. The flag itself is thread-local, not a pointer to
// the M's: the check on every fast path is then a single load.
extern constinit thread_local std::atomic<bool> t_preempt;

void preempt_slow() noexcept;

// preempt_point is a cooperative preemption check: primitives call it on
// their fast paths so that a goroutine flagged by sysmon yields at its next
// runtime call. One thread-local relaxed load when not flagged.
inline void preempt_point() noexcept {
  if (t_preempt.load(std::memory_order_relaxed)) [[unlikely]] preempt_slow();
}

// g_run_exiting is set from the moment a run's main returns until its
// teardown has unwound every goroutine it left.
extern std::atomic<bool> g_run_exiting;
inline bool run_exiting() noexcept { return g_run_exiting.load(std::memory_order_acquire); }

}  // namespace detail
}  // namespace goro
