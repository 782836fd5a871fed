// netpoll.cpp: the network poller (Go's runtime/netpoll.go and
// netpoll_epoll.go, in C++).
//
// What it is for. A goroutine that reads a socket with nothing to read must
// not hold its thread: it parks ("IO wait"), and one epoll instance watches
// every descriptor for the whole process. Whoever polls it (an M looking
// for work, the one idle M that blocks in it, sysmon) makes the goroutines
// whose descriptors became ready runnable again. The net module calls the
// functions of goro/detail/netpoll.hpp the way Go's internal/poll calls
// runtime_pollWait and friends; the scheduler calls those of netpoll.hpp.
//
// Registration. A descriptor is registered once, when the net module opens
// it (poll_open), for both directions, edge-triggered (EPOLLIN | EPOLLOUT |
// EPOLLRDHUP | EPOLLET), and leaves the epoll set when its last user closes
// it (poll_close, then close(2), which removes it). Edge-triggered: the kernel reports each arrival of data (or
// room), not the state, so a descriptor nobody waits on costs nothing per
// poll, and no re-arming call is ever needed. The price is that an edge
// must never be lost, which is what the protocol below is for.
//
// The PollDesc. Each registered descriptor has a record that holds, per
// direction, a one-slot semaphore (rg for reading, wg for writing) whose
// value is one of
//   0        nothing;
//   kReady   a readiness event arrived that no waiter has consumed yet;
//   kWait    a goroutine is about to park on it (not yet committed);
//   G        that goroutine, parked.
// Records are never freed: they live in chunks that only grow, indexed by
// a 32-bit number (type-stable memory, as Go's pollcache). An event carries
// the index and the record's generation (fdseq) at registration; poll_close
// bumps the generation, so an event that epoll handed out for a descriptor
// just closed (and perhaps already reused for a new socket) is dropped.
//
// The protocol (Go's netpollblock / netpollunblock), per direction:
//   1. The reader's system call says EAGAIN. It calls poll_wait, which
//      checks for closing and an expired deadline, then moves the slot
//      0 -> kWait (or consumes kReady -> 0 and returns: the event came in
//      between, retry the call).
//   2. It checks closing and the deadline AGAIN, after the CAS: a closer or
//      a deadline timer stores its flag and then looks at the slot, the
//      waiter stores the slot and then looks at the flag (all sequentially
//      consistent), so at least one of them sees the other.
//   3. It parks; park's unlock function (run on g0, once the goroutine's
//      context is saved) commits by CAS kWait -> G. If the CAS fails the
//      slot was changed meanwhile (an event set kReady, or a closer or timer
//      set 0): the park is cancelled and the goroutine goes on at once.
//   4. An event (netpoll) swaps the slot to kReady; a closer or an expired
//      deadline swaps it to 0 (leaving kReady alone). Whoever swaps a G out
//      of the slot readies it and decrements the waiter count. Nobody else
//      ever readies a goroutine parked here, so it is readied exactly once.
//   5. Woken, the goroutine swaps the slot to 0 and learns whether it was
//      an event (kReady: retry the system call) or not (check closing and
//      the deadline; none: a deadline moved later while it slept, wait
//      again).
// Invariants: a slot holds a G only while that goroutine is parked or
// parking there; the G is removed exactly once (by an event, a closer, a
// deadline, or the goroutine itself when teardown unwinds it); at most one
// goroutine waits per slot (the net module's fdMutex serializes readers and
// writers), so a second one is a fatal "double wait".
//
// Readiness is a hint, never a promise: a kReady may be stale (consumed
// data, a reused record), so every waiter retries its system call and
// parks again on EAGAIN. Spurious wake-ups are harmless; lost ones are not,
// and the CAS protocol rules them out.
//
// Skipping the EAGAIN call (poll_maybe_ready). A read that returned fewer
// bytes than asked drained the socket at that moment; any byte arriving
// after the slot was last cleared (poll_reset, or the swap of step 5,
// both made before that read) produces an event that sets kReady or wakes
// the waiter. So the net module's next read, finding the slot still 0,
// may park at once instead of making a system call that would say EAGAIN:
// an echo round trip then costs the four data calls and no more. If the
// event is merely still queued in epoll (nobody polled yet), the reader
// parks and the next poll wakes it: later by one poll, never lost. One
// condition outlives the read that consumed its event: end of stream (or
// an error) that arrived with the last bytes; the read returns the bytes,
// the next one would return 0. So an event saying the peer hung up or the
// socket failed sets a sticky `hup`, and with it the shortcut is off.
//
// Deadlines are runtime timers, one per direction in the record. Setting
// one bumps the direction's sequence number (rseq/wseq) and arms the timer
// carrying it; a timer whose sequence is stale when it fires does nothing
// (the record was closed, recycled, or given another deadline meanwhile).
// A deadline already past is stored as -1 and wakes a parked call at once.
// set_deadline stops the old timer before taking the record's lock, because
// RuntimeTimer::stop waits for a running callback, which takes that lock;
// deadline_lock serializes setters instead. Outside run() there are no
// timers: the deadline is stored, a goroutine waiting later arms its timer
// itself, and plain threads wait with a timeout (below).
//
// Plain threads. A thread that is not a goroutine blocks in ppoll on the
// descriptor plus an eventfd of its own, registered in the record while it
// waits; closing the record or changing its deadline writes that eventfd.
// So the same calls work (and block the thread) on plain threads, with or
// without a run.
//
// The scheduler (scheduler.cpp) polls without blocking in find_runnable
// when goroutines wait on I/O and nobody is blocked in the poller; one idle
// M at a time blocks in epoll_wait until the earliest timer (Runtime::
// lastpoll = 0 while it does; arming an earlier timer breaks the wait
// through the eventfd); sysmon polls when nobody has for 10 ms.
//
// Alternatives rejected: level-triggered epoll (every poll reports every
// ready descriptor nobody reads, and each wait needs an epoll_ctl to
// re-arm: EPOLLONESHOT's cost); a poller thread (a thread hop per event);
// io_uring (no faster for streaming sockets, and missing or restricted on
// many kernels); hooking libc's read/write (fragile, as libco and libgo
// show: TLS, dlsym order, getaddrinfo).
#include "netpoll.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <vector>

#include "goro/detail/netpoll.hpp"
#include "external.hpp"
#include "scheduler.hpp"

namespace goro::rt {
// The deadline timers' callbacks (below).
void read_deadline_fired(void* pd, std::int64_t now_ns);
void write_deadline_fired(void* pd, std::int64_t now_ns);
}  // namespace goro::rt

namespace goro::detail {

// PollDesc: see the essay. Fields are grouped by who may touch them.
struct PollDesc {
  PollDesc() noexcept = default;

  // DeadlineTimers: the record's two timers, made the first time it gets
  // a deadline (most connections never do: ~110 bytes saved on each) and
  // kept with the record from then on, as the record is.
  struct DeadlineTimers {
    explicit DeadlineTimers(PollDesc* pd) noexcept
        : read(&rt::read_deadline_fired, pd), write(&rt::write_deadline_fired, pd) {}
    RuntimeTimer read;
    RuntimeTimer write;
  };
  // timer returns the direction's timer, or null if none was ever made.
  RuntimeTimer* timer(PollMode mode) const noexcept {
    DeadlineTimers* t = timers.load(std::memory_order_acquire);
    return t == nullptr ? nullptr : (mode == PollMode::read ? &t->read : &t->write);
  }
  // make_timer returns the direction's timer, making both (under deadline_lock).
  RuntimeTimer& make_timer(PollMode mode) {
    DeadlineTimers* t = timers.load(std::memory_order_relaxed);
    if (t == nullptr) {
      t = new DeadlineTimers(this);
      timers.store(t, std::memory_order_release);
    }
    return mode == PollMode::read ? t->read : t->write;
  }

  // --- registry (under Registry::mu), constant while open ---------------
  std::uint32_t index = 0;           // position in the chunk table, forever
  int fd = -1;
  PollOwner* owner = nullptr;
  std::uint64_t run = 0;             // the run that opened it (0: none)
  PollDesc* next = nullptr;          // open list, or free list
  PollDesc* prev = nullptr;          // open list
  // fdseq is the record's generation, in the tag of its epoll events.
  // Bumped by poll_close (registry lock); read by netpoll without it.
  std::atomic<std::uint32_t> fdseq{0};

  // --- lock-free, sequentially consistent -----------------------------------
  std::atomic<std::uintptr_t> rg{0};  // read semaphore: 0, kReady, kWait or a G
  std::atomic<std::uintptr_t> wg{0};  // write semaphore
  std::atomic<bool> closing{false};   // set by poll_unblock (under lock)
  // hup: an event said the peer hung up or the socket has an error
  // (EPOLLRDHUP, EPOLLHUP, EPOLLERR). Sticky: the condition outlives the
  // read that consumed the event (poll_maybe_ready).
  std::atomic<bool> hup{false};
  std::atomic<std::int64_t> rd{0};    // read deadline: 0 none, -1 expired, else monotonic ns
  std::atomic<std::int64_t> wd{0};    // write deadline

  // --- under lock -------------------------------------------------------------
  rt::Lock lock;
  std::uint64_t rseq = 0, wseq = 0;      // bumped when a deadline changes or the record closes
  std::uint64_t rt_seq = 0, wt_seq = 0;  // the sequence the armed timer was armed with
  int thread_wake[2] = {-1, -1};         // eventfd of a plain thread waiting to read / write

  // deadline_lock serializes deadline setters (and a waiter arming its
  // timer); taken before `lock`, never by a timer callback.
  rt::Lock deadline_lock;
  // Written once, under deadline_lock; read without it (acquire).
  std::atomic<DeadlineTimers*> timers{nullptr};
};

}  // namespace goro::detail

namespace goro::rt {

using goro::detail::PollDesc;
using goro::detail::PollMode;
using goro::detail::PollResult;

std::atomic<std::int64_t> g_netpoll_waiters{0};

namespace {

constexpr std::uintptr_t kReady = 1;
constexpr std::uintptr_t kWait = 2;

// The break eventfd's tag: no record has this index.
constexpr std::uint64_t kBreakTag = ~std::uint64_t{0};

int g_epfd = -1;
int g_wakefd = -1;
std::once_flag g_init_once;
// g_wake_sig: a break was written and no blocking poll has consumed it
// (Go's netpollWakeSig), so breaks coalesce into one write.
std::atomic<std::uint32_t> g_wake_sig{0};
std::atomic<std::uint64_t> g_polls{0};
std::atomic<std::uint64_t> g_events{0};
std::atomic<std::uint64_t> g_run_gen{0};
std::atomic<std::uint64_t> g_active_run{0};
// epoll_pwait2 (Linux 5.11) takes a timespec; without it, epoll_wait's
// milliseconds (rounded up, so a timer is never polled early).
std::atomic<bool> g_have_pwait2{true};

// Registry: the chunk table of records, the free list and the list of open
// records (for teardown). Chunks are never freed: epoll may hand out an
// event naming a record long after its descriptor closed.
constexpr std::uint32_t kChunkBits = 8;
constexpr std::uint32_t kChunkSize = 1u << kChunkBits;  // 256 records, ~70 KiB
constexpr std::uint32_t kMaxChunks = 1u << 14;          // 4M descriptors
struct Registry {
  std::mutex mu;
  PollDesc* free = nullptr;
  PollDesc* open = nullptr;
  std::uint32_t chunks_used = 0;  // under mu
  std::atomic<std::int64_t> open_count{0};
  // Published with release after the chunk is built; netpoll reads with acquire.
  std::atomic<PollDesc*> chunks[kMaxChunks] = {};
};
Registry g_registry;

std::atomic<std::uintptr_t>& slot(PollDesc* pd, PollMode mode) noexcept {
  return mode == PollMode::read ? pd->rg : pd->wg;
}
std::atomic<std::int64_t>& deadline(PollDesc* pd, PollMode mode) noexcept {
  return mode == PollMode::read ? pd->rd : pd->wd;
}
int mode_index(PollMode mode) noexcept { return mode == PollMode::read ? 0 : 1; }

std::uint64_t tag_of(PollDesc* pd) noexcept {
  return (std::uint64_t{pd->fdseq.load(std::memory_order_relaxed)} << 32) | pd->index;
}

// checkerr is Go's netpollcheckerr: closing first, then the deadline of
// the direction. A deadline in the past counts even before its timer fired
// (the timer may be late, or absent outside run()).
PollResult checkerr(PollDesc* pd, PollMode mode) noexcept {
  if (pd->closing.load(std::memory_order_seq_cst)) return PollResult::closing;
  const std::int64_t d = deadline(pd, mode).load(std::memory_order_seq_cst);
  if (d < 0) return PollResult::timeout;
  if (d > 0 && monotonic_now_ns() >= d) return PollResult::timeout;
  return PollResult::ok;
}

// unblock is Go's netpollunblock: ioready (an event) leaves kReady behind;
// a closer or a deadline leaves 0 and does nothing to an empty slot.
// Returns the parked goroutine taken out of the slot, if any (the caller
// readies it), and counts it out of the waiters.
Goroutine* unblock(PollDesc* pd, PollMode mode, bool ioready) noexcept {
  std::atomic<std::uintptr_t>& gpp = slot(pd, mode);
  std::uintptr_t old = gpp.load(std::memory_order_seq_cst);
  for (;;) {
    if (old == kReady) return nullptr;
    if (old == 0 && !ioready) return nullptr;
    const std::uintptr_t desired = ioready ? kReady : 0;
    if (gpp.compare_exchange_weak(old, desired, std::memory_order_seq_cst)) break;
  }
  if (old == 0 || old == kWait) return nullptr;  // kWait: the commit will fail, the park is cancelled
  g_netpoll_waiters.fetch_sub(1, std::memory_order_seq_cst);
  return reinterpret_cast<Goroutine*>(old);
}

// wake_thread writes the eventfd of a plain thread waiting on the
// direction, if any (under pd->lock).
void wake_thread(PollDesc* pd, PollMode mode) noexcept {
  const int efd = pd->thread_wake[mode_index(mode)];
  if (efd >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(efd, &one, sizeof one);
  }
}

// start_timer arms t for `when` if a run is active (a plain thread inside
// a run arms it too); false outside run(): the deadline stays stored and
// a goroutine that waits arms the timer then (arm_if_needed).
bool start_timer(RuntimeTimer& t, std::int64_t when) noexcept {
  Machine* m = current_machine();
  // Not while run() tears down: its timers are gone, and one armed now
  // would outlive the run's Ps.
  if (m != nullptr && g_runtime != nullptr && g_runtime->tearing_down) return false;
  if (m == nullptr || m->p == nullptr) {
    ExternalRef ref;
    if (!ref) return false;
    t.start(when);
    return true;
  }
  t.start(when);
  return true;
}

void deadline_fired(PollDesc* pd, PollMode mode) noexcept {
  Goroutine* g = nullptr;
  {
    LockGuard l(pd->lock);
    const bool read = mode == PollMode::read;
    if ((read ? pd->rseq : pd->wseq) != (read ? pd->rt_seq : pd->wt_seq)) return;  // stale
    std::atomic<std::int64_t>& d = deadline(pd, mode);
    if (d.load(std::memory_order_relaxed) <= 0) return;  // already expired or cleared
    d.store(-1, std::memory_order_seq_cst);
    g = unblock(pd, mode, false);
    wake_thread(pd, mode);
  }
  if (g != nullptr) goro::ready(g);
}


// arm_if_needed gives a goroutine about to park a timer for its deadline
// if the deadline was set outside run() (or its timer was dropped when an
// earlier run ended).
void arm_if_needed(PollDesc* pd, PollMode mode) noexcept {
  if (deadline(pd, mode).load(std::memory_order_relaxed) <= 0) return;
  if (RuntimeTimer* armed = pd->timer(mode); armed != nullptr && armed->pending()) return;
  LockGuard dl(pd->deadline_lock);
  LockGuard l(pd->lock);
  const std::int64_t d = deadline(pd, mode).load(std::memory_order_relaxed);
  RuntimeTimer& t = pd->make_timer(mode);
  if (d <= 0 || t.pending() || pd->closing.load(std::memory_order_relaxed)) return;
  // The sequence stays: a callback of an earlier arming that is about to
  // run finds the deadline still pending and does the same as ours would.
  if (mode == PollMode::read) {
    pd->rt_seq = pd->rseq;
  } else {
    pd->wt_seq = pd->wseq;
  }
  start_timer(t, d);
}

// commit is park's unlock function: kWait -> G. The waiter count goes up
// first, so that a goroutine committed here is never missing from it.
bool commit(Goroutine* g, void* arg) {
  auto* gpp = static_cast<std::atomic<std::uintptr_t>*>(arg);
  g_netpoll_waiters.fetch_add(1, std::memory_order_seq_cst);
  std::uintptr_t expected = kWait;
  if (gpp->compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(g), std::memory_order_seq_cst)) {
    return true;
  }
  g_netpoll_waiters.fetch_sub(1, std::memory_order_seq_cst);
  return false;
}

// block is Go's netpollblock for a goroutine: true if woken by readiness.
bool block(PollDesc* pd, PollMode mode) {
  std::atomic<std::uintptr_t>& gpp = slot(pd, mode);
  std::uintptr_t old = gpp.load(std::memory_order_seq_cst);
  for (;;) {
    if (old == kReady) {
      if (gpp.compare_exchange_weak(old, 0, std::memory_order_seq_cst)) return true;
      continue;
    }
    if (old != 0) fatal("runtime: netpoll: double wait on a descriptor");
    if (gpp.compare_exchange_weak(old, kWait, std::memory_order_seq_cst)) break;
  }
  // Step 2: re-check after publishing kWait (closers and timers store
  // their flag, then look at the slot).
  if (checkerr(pd, mode) == PollResult::ok) {
    arm_if_needed(pd, mode);
    try {
      park(&commit, &gpp, WaitReason::io_wait);
    } catch (...) {
      // Teardown unwinds us: take ourselves out of the slot (if nobody did).
      if (gpp.exchange(0, std::memory_order_seq_cst) > kWait) {
        g_netpoll_waiters.fetch_sub(1, std::memory_order_seq_cst);
      }
      throw;
    }
  }
  old = gpp.exchange(0, std::memory_order_seq_cst);
  if (old > kWait) fatal("runtime: netpoll: corrupted poll descriptor");
  return old == kReady;
}

// ThreadWake is a plain thread's eventfd for thread_wait, made on first use.
struct ThreadWake {
  int fd = -1;
  ~ThreadWake() {
    if (fd >= 0) ::close(fd);
  }
};

int thread_wake_fd() noexcept {
  thread_local ThreadWake w;
  if (w.fd < 0) w.fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return w.fd;
}

// thread_wait: a plain thread blocks in ppoll on the descriptor and on its
// own eventfd, which closers and deadline setters write.
PollResult thread_wait(PollDesc* pd, PollMode mode) noexcept {
  const int efd = thread_wake_fd();
  const int i = mode_index(mode);
  std::int64_t d;
  {
    LockGuard l(pd->lock);
    const PollResult e = checkerr(pd, mode);
    if (e != PollResult::ok) return e;
    if (pd->thread_wake[i] >= 0) fatal("runtime: netpoll: double wait on a descriptor");
    pd->thread_wake[i] = efd;
    d = deadline(pd, mode).load(std::memory_order_relaxed);
  }
  struct pollfd fds[2] = {
      {pd->fd, static_cast<short>(mode == PollMode::read ? (POLLIN | POLLRDHUP) : POLLOUT), 0},
      {efd, POLLIN, 0},
  };
  struct timespec ts {};
  bool timed = false;
  if (d > 0) {
    const std::int64_t left = d - monotonic_now_ns();
    timed = true;
    if (left > 0) {
      ts.tv_sec = left / 1'000'000'000;
      ts.tv_nsec = left % 1'000'000'000;
    }
  }
  // Without an eventfd (descriptors exhausted) a closer cannot wake us:
  // look again every 10 ms instead.
  if (efd < 0 && (!timed || ts.tv_sec > 0 || ts.tv_nsec > 10'000'000)) {
    timed = true;
    ts = {0, 10'000'000};
  }
  ::ppoll(fds, efd >= 0 ? 2 : 1, timed ? &ts : nullptr, nullptr);
  {
    LockGuard l(pd->lock);
    pd->thread_wake[i] = -1;
  }
  if (efd >= 0 && (fds[1].revents & POLLIN) != 0) {
    std::uint64_t v;
    [[maybe_unused]] ssize_t n = ::read(efd, &v, sizeof v);
  }
  return checkerr(pd, mode);
}

PollDesc* lookup(std::uint32_t index) noexcept {
  PollDesc* chunk = g_registry.chunks[index >> kChunkBits].load(std::memory_order_acquire);
  return chunk == nullptr ? nullptr : &chunk[index & (kChunkSize - 1)];
}

// alloc_locked takes a free record, carving a new chunk if needed.
PollDesc* alloc_locked() noexcept {
  Registry& r = g_registry;
  if (r.free == nullptr) {
    if (r.chunks_used == kMaxChunks) return nullptr;
    const std::uint32_t c = r.chunks_used++;
    PollDesc* chunk = new (std::nothrow) PollDesc[kChunkSize];
    if (chunk == nullptr) {
      --r.chunks_used;
      return nullptr;
    }
    for (std::uint32_t i = kChunkSize; i-- > 0;) {
      chunk[i].index = (c << kChunkBits) | i;
      chunk[i].next = r.free;
      r.free = &chunk[i];
    }
    r.chunks[c].store(chunk, std::memory_order_release);
  }
  PollDesc* pd = r.free;
  r.free = pd->next;
  pd->next = nullptr;
  return pd;
}

void free_locked(PollDesc* pd) noexcept {
  pd->next = g_registry.free;
  g_registry.free = pd;
}

bool epoll_wait_ns(epoll_event* ev, int max, std::int64_t delay_ns, int* n) noexcept {
  if (g_have_pwait2.load(std::memory_order_relaxed)) {
    struct timespec ts;
    if (delay_ns >= 0) {
      ts.tv_sec = delay_ns / 1'000'000'000;
      ts.tv_nsec = delay_ns % 1'000'000'000;
    }
    *n = ::epoll_pwait2(g_epfd, ev, max, delay_ns < 0 ? nullptr : &ts, nullptr);
    if (*n >= 0 || errno != ENOSYS) return *n >= 0;
    g_have_pwait2.store(false, std::memory_order_relaxed);
  }
  int ms;
  if (delay_ns < 0) {
    ms = -1;
  } else if (delay_ns == 0) {
    ms = 0;
  } else if (delay_ns >= 1'000'000'000LL * 1'000'000) {
    ms = 1'000'000'000;  // ~11 days: the caller polls again
  } else {
    ms = static_cast<int>((delay_ns + 999'999) / 1'000'000);
  }
  *n = ::epoll_wait(g_epfd, ev, max, ms);
  return *n >= 0;
}

}  // namespace

void read_deadline_fired(void* pd, std::int64_t) { deadline_fired(static_cast<PollDesc*>(pd), PollMode::read); }
void write_deadline_fired(void* pd, std::int64_t) { deadline_fired(static_cast<PollDesc*>(pd), PollMode::write); }

void netpoll_init() noexcept {
  std::call_once(g_init_once, [] {
    g_epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) fatal("runtime: netpoll: epoll_create1 failed");
    g_wakefd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g_wakefd < 0) fatal("runtime: netpoll: eventfd failed");
    // Level-triggered: a non-blocking poll that sees the break leaves it for
    // the blocked poller it was meant for.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kBreakTag;
    if (::epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_wakefd, &ev) != 0) fatal("runtime: netpoll: epoll_ctl failed");
  });
}

void netpoll_break() noexcept {
  if (g_wakefd < 0) return;
  std::uint32_t expected = 0;
  if (!g_wake_sig.compare_exchange_strong(expected, 1, std::memory_order_seq_cst)) return;
  const std::uint64_t one = 1;
  // EAGAIN (the counter is full) still leaves it readable: fine.
  [[maybe_unused]] ssize_t n = ::write(g_wakefd, &one, sizeof one);
}

int netpoll(std::int64_t delay_ns, Goroutine** out) noexcept {
  epoll_event ev[kNetpollEvents];
  int n;
  for (;;) {
    if (epoll_wait_ns(ev, kNetpollEvents, delay_ns, &n)) break;
    // EINTR: a blocking poll returns, so that the caller recomputes its
    // delay (the earliest timer may have moved); a non-blocking one retries.
    if (errno != EINTR) fatal("runtime: netpoll: epoll_wait failed");
    if (delay_ns > 0) return 0;
  }
  g_polls.fetch_add(1, std::memory_order_relaxed);
  int k = 0;
  std::uint64_t events = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t tag = ev[i].data.u64;
    if (tag == kBreakTag) {
      // Only a blocking poll consumes the break (it was meant to end one).
      if (delay_ns != 0) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(g_wakefd, &v, sizeof v);
        g_wake_sig.store(0, std::memory_order_seq_cst);
      }
      continue;
    }
    PollDesc* pd = lookup(static_cast<std::uint32_t>(tag));
    if (pd == nullptr || pd->fdseq.load(std::memory_order_acquire) != static_cast<std::uint32_t>(tag >> 32)) {
      continue;  // the descriptor was closed after the event was queued
    }
    ++events;
    const std::uint32_t e = ev[i].events;
    if ((e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) pd->hup.store(true, std::memory_order_seq_cst);
    if ((e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
      if (Goroutine* g = unblock(pd, PollMode::read, true)) out[k++] = g;
    }
    if ((e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
      if (Goroutine* g = unblock(pd, PollMode::write, true)) out[k++] = g;
    }
  }
  if (events != 0) g_events.fetch_add(events, std::memory_order_relaxed);
  return k;
}

std::uint64_t netpoll_run_begin() noexcept {
  const std::uint64_t run = g_run_gen.fetch_add(1, std::memory_order_relaxed) + 1;
  g_active_run.store(run, std::memory_order_seq_cst);
  return run;
}

void netpoll_run_end() noexcept { g_active_run.store(0, std::memory_order_seq_cst); }

void netpoll_teardown(std::uint64_t run) noexcept {
  std::vector<goro::detail::PollOwner*> owners;
  {
    std::lock_guard<std::mutex> l(g_registry.mu);
    for (PollDesc* pd = g_registry.open; pd != nullptr; pd = pd->next) {
      if (pd->run != run || pd->owner == nullptr) continue;
      // Pinned under the lock: the owner is alive while its record is open.
      pd->owner->pin();
      try {
        owners.push_back(pd->owner);
      } catch (...) {
        break;  // out of memory: leave the rest open rather than fail teardown
      }
    }
  }
  for (goro::detail::PollOwner* o : owners) o->close_and_unpin();
}

std::int64_t netpoll_descriptors() noexcept { return g_registry.open_count.load(std::memory_order_relaxed); }
std::uint64_t netpoll_polls() noexcept { return g_polls.load(std::memory_order_relaxed); }
std::uint64_t netpoll_events() noexcept { return g_events.load(std::memory_order_relaxed); }

}  // namespace goro::rt

namespace goro::detail {

using namespace goro::rt;

PollDesc* poll_open(int fd, PollOwner* owner, int* err) noexcept {
  netpoll_init();
  PollDesc* pd;
  {
    std::lock_guard<std::mutex> l(g_registry.mu);
    pd = alloc_locked();
  }
  if (pd == nullptr) {
    *err = ENOMEM;
    return nullptr;
  }
  {
    LockGuard l(pd->lock);
    pd->fd = fd;
    pd->owner = owner;
    pd->closing.store(false, std::memory_order_relaxed);
    pd->hup.store(false, std::memory_order_relaxed);
    pd->rg.store(0, std::memory_order_relaxed);
    pd->wg.store(0, std::memory_order_relaxed);
    pd->rd.store(0, std::memory_order_relaxed);
    pd->wd.store(0, std::memory_order_relaxed);
    ++pd->rseq;
    ++pd->wseq;
    pd->thread_wake[0] = pd->thread_wake[1] = -1;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag_of(pd);
  if (::epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    *err = errno;
    std::lock_guard<std::mutex> l(g_registry.mu);
    pd->fdseq.fetch_add(1, std::memory_order_release);
    free_locked(pd);
    return nullptr;
  }
  std::lock_guard<std::mutex> l(g_registry.mu);
  pd->run = g_active_run.load(std::memory_order_seq_cst);
  pd->prev = nullptr;
  pd->next = g_registry.open;
  if (g_registry.open != nullptr) g_registry.open->prev = pd;
  g_registry.open = pd;
  g_registry.open_count.fetch_add(1, std::memory_order_relaxed);
  *err = 0;
  return pd;
}

void poll_close(PollDesc* pd) noexcept {
  if (!pd->closing.load(std::memory_order_seq_cst)) fatal("runtime: netpoll: close of a descriptor without unblock");
  if (pd->rg.load(std::memory_order_seq_cst) > kWait || pd->wg.load(std::memory_order_seq_cst) > kWait) {
    fatal("runtime: netpoll: close of a descriptor with a parked goroutine");
  }
  // A timer armed by a setter racing with poll_unblock may still be
  // pending: harmless (its sequence is stale) but it must not make the
  // record's next owner believe a timer is armed for its deadline.
  if (RuntimeTimer* t = pd->timer(PollMode::read)) t->stop();
  if (RuntimeTimer* t = pd->timer(PollMode::write)) t->stop();
  // A descriptor goro::net owns is about to be closed, which removes it
  // from epoll: no EPOLL_CTL_DEL (one system call less per connection).
  // Had the user duplicated it (dup, fork without exec), the registration
  // would live on until the duplicate closes; its events carry this
  // generation and are dropped. A descriptor wait_readable borrowed stays
  // open: it is removed.
  if (pd->owner == nullptr) {
    epoll_event ev{};
    ::epoll_ctl(g_epfd, EPOLL_CTL_DEL, pd->fd, &ev);
  }
  std::lock_guard<std::mutex> l(g_registry.mu);
  if (pd->prev != nullptr) {
    pd->prev->next = pd->next;
  } else {
    g_registry.open = pd->next;
  }
  if (pd->next != nullptr) pd->next->prev = pd->prev;
  pd->prev = nullptr;
  // Events still in flight for this generation are dropped from now on.
  pd->fdseq.fetch_add(1, std::memory_order_release);
  pd->fd = -1;
  pd->owner = nullptr;
  pd->rg.store(0, std::memory_order_relaxed);
  pd->wg.store(0, std::memory_order_relaxed);
  g_registry.open_count.fetch_sub(1, std::memory_order_relaxed);
  free_locked(pd);
}

PollResult poll_reset(PollDesc* pd, PollMode mode) noexcept {
  const PollResult e = checkerr(pd, mode);
  if (e != PollResult::ok) return e;
  slot(pd, mode).store(0, std::memory_order_seq_cst);
  return PollResult::ok;
}

bool poll_maybe_ready(PollDesc* pd, PollMode mode) noexcept {
  return slot(pd, mode).load(std::memory_order_seq_cst) == kReady || pd->hup.load(std::memory_order_seq_cst);
}

PollResult poll_wait(PollDesc* pd, PollMode mode) {
  PollResult e = checkerr(pd, mode);
  if (e != PollResult::ok) return e;
  if (!in_goroutine()) return thread_wait(pd, mode);
  while (!block(pd, mode)) {
    e = checkerr(pd, mode);
    if (e != PollResult::ok) return e;
    // Woken by a deadline that was moved later meanwhile: wait again.
  }
  return PollResult::ok;
}

void poll_set_deadline(PollDesc* pd, std::int64_t when_ns, bool read, bool write) noexcept {
  std::int64_t d = when_ns;
  if (d != 0 && d <= monotonic_now_ns()) d = -1;  // already past: expired, not "none"
  LockGuard dl(pd->deadline_lock);
  // Outside pd->lock: stop() waits for a running callback, which takes it.
  if (RuntimeTimer* t = pd->timer(PollMode::read); read && t != nullptr) t->stop();
  if (RuntimeTimer* t = pd->timer(PollMode::write); write && t != nullptr) t->stop();
  Goroutine* rg = nullptr;
  Goroutine* wg = nullptr;
  {
    LockGuard l(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    if (read) {
      pd->rd.store(d, std::memory_order_seq_cst);
      pd->rt_seq = ++pd->rseq;
      if (d > 0) start_timer(pd->make_timer(PollMode::read), d);
      if (d < 0) rg = unblock(pd, PollMode::read, false);
      wake_thread(pd, PollMode::read);
    }
    if (write) {
      pd->wd.store(d, std::memory_order_seq_cst);
      pd->wt_seq = ++pd->wseq;
      if (d > 0) start_timer(pd->make_timer(PollMode::write), d);
      if (d < 0) wg = unblock(pd, PollMode::write, false);
      wake_thread(pd, PollMode::write);
    }
  }
  if (rg != nullptr) goro::ready(rg);
  if (wg != nullptr) goro::ready(wg);
}

void poll_unblock(PollDesc* pd) noexcept {
  Goroutine* rg;
  Goroutine* wg;
  {
    LockGuard l(pd->lock);
    if (pd->closing.load(std::memory_order_relaxed)) return;
    pd->closing.store(true, std::memory_order_seq_cst);
    ++pd->rseq;  // makes armed timers stale
    ++pd->wseq;
    rg = unblock(pd, PollMode::read, false);
    wg = unblock(pd, PollMode::write, false);
    wake_thread(pd, PollMode::read);
    wake_thread(pd, PollMode::write);
  }
  if (rg != nullptr) goro::ready(rg);
  if (wg != nullptr) goro::ready(wg);
  // No setter arms a timer once closing is set; stop those armed before.
  if (RuntimeTimer* t = pd->timer(PollMode::read)) t->stop();
  if (RuntimeTimer* t = pd->timer(PollMode::write)) t->stop();
}

}  // namespace goro::detail
