// netpoll.hpp: the scheduler's side of the network poller (netpoll.cpp).
// The net module's side is goro/detail/netpoll.hpp.
#pragma once

#include <atomic>
#include <cstdint>

namespace goro {
class Goroutine;
}

namespace goro::rt {

// kNetpollMax is how many goroutines one netpoll() call may return: a
// batch of kNetpollEvents events, each readying a reader and a writer.
inline constexpr int kNetpollEvents = 128;  // Go's batch (netpoll_epoll.go)
inline constexpr int kNetpollMax = 2 * kNetpollEvents;

// g_netpoll_waiters counts goroutines parked in "IO wait" (Go's
// netpollWaiters): incremented before a park commits, decremented by
// whoever takes the goroutine out of its PollDesc. find_runnable reads it
// to decide whether polling is worth a system call.
extern std::atomic<std::int64_t> g_netpoll_waiters;

inline std::int64_t netpoll_waiters() noexcept { return g_netpoll_waiters.load(std::memory_order_seq_cst); }

// netpoll_init creates the process's epoll instance and its wake-up
// eventfd, once; later calls return at once. Fatal if the kernel refuses.
void netpoll_init() noexcept;

// netpoll polls for readiness: delay_ns < 0 blocks until an event or
// netpoll_break, 0 does not block, > 0 blocks at most that long. Writes the
// goroutines it made ready to out (at most kNetpollMax; they are still in
// GStatus::kWaiting: the caller makes them runnable) and returns how many.
// Callable by any runtime thread, with or without a P.
int netpoll(std::int64_t delay_ns, Goroutine** out) noexcept;

// netpoll_break wakes the thread blocked in netpoll, if any (or makes the
// next blocking poll return at once). Coalesced: one write until consumed.
void netpoll_break() noexcept;

// netpoll_run_begin / netpoll_run_end bracket a run: descriptors opened
// meanwhile belong to it. netpoll_teardown closes those still open (run()'s
// teardown, once its goroutines are collected for unwinding).
std::uint64_t netpoll_run_begin() noexcept;
void netpoll_run_end() noexcept;
void netpoll_teardown(std::uint64_t run) noexcept;

// Statistics for sched_stats(): descriptors registered now; epoll_wait
// calls and readiness events since the process started.
std::int64_t netpoll_descriptors() noexcept;
std::uint64_t netpoll_polls() noexcept;
std::uint64_t netpoll_events() noexcept;

}  // namespace goro::rt
