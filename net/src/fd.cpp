// fd.cpp: a network descriptor shared by the goroutines that use it (Go's
// internal/poll.FD and fd_mutex.go, net.netFD).
//
// The problem. A Conn may be read by one goroutine while another writes it
// and a third closes it. The descriptor number must stay valid (not closed,
// so not reused by another socket) for as long as any call uses it, and
// close() must wake the calls parked on it rather than wait for them.
//
// FdMutex (Go's fdMutex) is one 64-bit word:
//   bit 0        closed
//   bit 1        read lock    (one read call at a time)
//   bit 2        write lock   (one write call at a time)
//   bits 3-22    references   (calls in progress, plus close itself)
//   bits 23-42   readers waiting for the read lock
//   bits 43-62   writers waiting for the write lock
// Every call takes a reference (a read or write call also its lock) and
// fails once closed is set. Readers and writers that find their lock held
// count themselves waiting and park on a semaphore (the sync module's); an
// unlock that sees waiters releases one, who retries. The locks are why at
// most one goroutine waits on each half of the poller record (netpoll.cpp).
//
// Closing, as Go does it:
//   1. close() sets closed and takes a reference in one CAS
//      (incref_and_close), and wakes the lock waiters: they fail.
//   2. It evicts the poller record (poll_unblock): calls parked in the
//      poller wake and fail with "use of closed network connection".
//   3. It drops its reference. Whoever drops the last reference while
//      closed is set destroys: removes the record from the poller, closes
//      the descriptor, and releases the closer.
//   4. close() waits for that release (the `destroyed_` slot: 0, the parked
//      closer, kDestroyed), so when it returns the descriptor is closed (a
//      port is free to listen on again). The handle's destructor and run()'s
//      teardown skip the wait (close_nowait): they never park.
// The object itself is freed when both the handle is gone and the
// descriptor is closed (refs_), so a call still leaving, or teardown
// holding a pin, never touches freed memory, and a handle that outlives
// its run() (a global Conn) still finds its object, closed.
#include "fd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "goro/detail/sema.hpp"
#include "goro/park.hpp"

namespace goro::net::detail {

using goro::detail::PollMode;
using goro::detail::PollResult;

namespace {

constexpr std::uint64_t kClosed = 1ULL << 0;
constexpr std::uint64_t kRLock = 1ULL << 1;
constexpr std::uint64_t kWLock = 1ULL << 2;
constexpr std::uint64_t kRef = 1ULL << 3;
constexpr std::uint64_t kRefMask = ((1ULL << 20) - 1) << 3;
constexpr std::uint64_t kRWait = 1ULL << 23;
constexpr std::uint64_t kRMask = ((1ULL << 20) - 1) << 23;
constexpr std::uint64_t kWWait = 1ULL << 43;
constexpr std::uint64_t kWMask = ((1ULL << 20) - 1) << 43;

constexpr std::uintptr_t kDestroyed = 1;

// Go caps one read or write call at 1 GiB (maxRW): larger ones loop.
constexpr std::size_t kMaxRW = std::size_t{1} << 30;

[[noreturn]] void too_many() noexcept {
  std::fputs("panic: too many concurrent operations on a single file or socket (max 1048575)\n", stderr);
  std::abort();
}

[[noreturn]] void inconsistent() noexcept {
  std::fputs("panic: inconsistent poll.fdMutex\n", stderr);
  std::abort();
}

int poll_error(PollResult r) noexcept { return r == PollResult::closing ? kErrClosing : kErrTimeout; }

}  // namespace

bool FdMutex::incref() noexcept {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & kClosed) != 0) return false;
    const std::uint64_t desired = old + kRef;
    if ((desired & kRefMask) == 0) too_many();
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acq_rel)) return true;
  }
}

bool FdMutex::incref_and_close() noexcept {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & kClosed) != 0) return false;
    // Closed, one more reference, and nobody counted as waiting: the
    // waiters are all released below and will find it closed.
    std::uint64_t desired = (old | kClosed) + kRef;
    if ((desired & kRefMask) == 0) too_many();
    desired &= ~(kRMask | kWMask);
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acq_rel)) {
      for (std::uint64_t r = old & kRMask; r != 0; r -= kRWait) goro::detail::semrelease(&rsema_, false);
      for (std::uint64_t w = old & kWMask; w != 0; w -= kWWait) goro::detail::semrelease(&wsema_, false);
      return true;
    }
  }
}

bool FdMutex::decref() noexcept {
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & kRefMask) == 0) inconsistent();
    const std::uint64_t desired = old - kRef;
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acq_rel)) {
      return (desired & (kClosed | kRefMask)) == kClosed;
    }
  }
}

bool FdMutex::rwlock(bool read) {
  const std::uint64_t bit = read ? kRLock : kWLock;
  const std::uint64_t wait = read ? kRWait : kWWait;
  const std::uint64_t mask = read ? kRMask : kWMask;
  std::atomic<std::uint32_t>* sema = read ? &rsema_ : &wsema_;
  for (;;) {
    std::uint64_t old = state_.load(std::memory_order_relaxed);
    if ((old & kClosed) != 0) return false;
    std::uint64_t desired;
    if ((old & bit) == 0) {
      desired = (old | bit) + kRef;
      if ((desired & kRefMask) == 0) too_many();
    } else {
      desired = old + wait;
      if ((desired & mask) == 0) too_many();
    }
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acq_rel)) {
      if ((old & bit) == 0) return true;
      // A released unit means "try again"; on teardown's unwinding the unit
      // is passed on (semacquire releases it again).
      goro::detail::semacquire(sema, false, WaitReason::semacquire);
    }
  }
}

bool FdMutex::rwunlock(bool read) noexcept {
  const std::uint64_t bit = read ? kRLock : kWLock;
  const std::uint64_t wait = read ? kRWait : kWWait;
  const std::uint64_t mask = read ? kRMask : kWMask;
  std::uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((old & bit) == 0 || (old & kRefMask) == 0) inconsistent();
    std::uint64_t desired = (old & ~bit) - kRef;
    if ((old & mask) != 0) desired -= wait;
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acq_rel)) {
      if ((old & mask) != 0) goro::detail::semrelease(read ? &rsema_ : &wsema_, false);
      return (desired & (kClosed | kRefMask)) == kClosed;
    }
  }
}

std::string format_addr(const SockAddr& a) {
  char host[INET6_ADDRSTRLEN];
  switch (a.family()) {
    case AF_INET: {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&a.ss);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      return cat({host, ":", std::to_string(ntohs(in->sin_port))});
    }
    case AF_INET6: {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a.ss);
      const unsigned port = ntohs(in6->sin6_port);
      if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        // Go prints an IPv4-mapped address in its IPv4 form.
        inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof host);
        return cat({host, ":", std::to_string(port)});
      }
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      const std::string zone = in6->sin6_scope_id != 0 ? cat({"%", std::to_string(in6->sin6_scope_id)}) : "";
      return cat({"[", host, zone, "]:", std::to_string(port)});
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&a.ss);
      const std::size_t off = offsetof(sockaddr_un, sun_path);
      if (a.len <= off) return "";
      std::size_t n = a.len - off;
      if (un->sun_path[0] == '\0') return cat({"@", std::string_view(un->sun_path + 1, n - 1)});  // abstract
      return std::string(un->sun_path, strnlen(un->sun_path, n));
    }
    default:
      return "";
  }
}

NetFd* NetFd::open(int sysfd, int family, bool stream, const char* net, int* err, const std::string* laddr) noexcept {
  NetFd* f;
  try {
    f = new NetFd(sysfd, family, stream, net);
    if (laddr != nullptr) {
      f->laddr_ = *laddr;
    } else {
      SockAddr local;
      local.len = sizeof local.ss;
      if (::getsockname(sysfd, reinterpret_cast<sockaddr*>(&local.ss), &local.len) == 0) {
        f->laddr_ = format_addr(local);
      }
    }
  } catch (...) {
    ::close(sysfd);
    *err = ENOMEM;
    return nullptr;
  }
  f->pd_ = goro::detail::poll_open(sysfd, f, err);
  if (f->pd_ == nullptr) {
    ::close(sysfd);
    delete f;
    return nullptr;
  }
  return f;
}

void NetFd::unref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void NetFd::release() noexcept { unref(); }

void NetFd::pin() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

void NetFd::close_and_unpin() noexcept {
  close_nowait();
  unref();
}

void NetFd::destroy() noexcept {
  goro::detail::poll_close(pd_);
  pd_ = nullptr;
  ::close(sysfd_);
  const std::uintptr_t closer = destroyed_.exchange(kDestroyed, std::memory_order_acq_rel);
  if (closer != 0 && closer != kDestroyed) goro::ready(reinterpret_cast<Goroutine*>(closer));
  unref();  // the open descriptor's reference
}

void NetFd::unlink_socket_file() noexcept {
  if (extras_ != nullptr && !extras_->unlink_path.empty() &&
      !extras_->unlinked.exchange(true, std::memory_order_relaxed)) {
    ::unlink(extras_->unlink_path.c_str());
  }
}

void NetFd::wait_destroyed() {
  struct Publish {
    static bool unlock(Goroutine* g, void* arg) {
      auto* slot = static_cast<std::atomic<std::uintptr_t>*>(arg);
      std::uintptr_t expected = 0;
      // Fails only if the descriptor was destroyed meanwhile: do not park.
      return slot->compare_exchange_strong(expected, reinterpret_cast<std::uintptr_t>(g), std::memory_order_acq_rel);
    }
  };
  while (destroyed_.load(std::memory_order_acquire) != kDestroyed) {
    try {
      goro::park(&Publish::unlock, &destroyed_, WaitReason::semacquire);
    } catch (...) {
      // Unwound by teardown: stop being the closer to wake.
      std::uintptr_t self = destroyed_.load(std::memory_order_acquire);
      if (self != kDestroyed) destroyed_.compare_exchange_strong(self, 0, std::memory_order_acq_rel);
      throw;
    }
  }
}

int NetFd::close() {
  if (!mu_.incref_and_close()) return kErrClosing;
  // Pinned until we return: the handle's owner may destroy it as soon as
  // its own parked call fails (a reader goroutine ending on our close).
  pin();
  struct Unpin {
    NetFd* f;
    ~Unpin() { f->unref(); }
  } unpin{this};
  unlink_socket_file();
  goro::detail::poll_unblock(pd_);
  if (mu_.decref()) destroy();
  wait_destroyed();
  return 0;
}

void NetFd::close_nowait() noexcept {
  if (!mu_.incref_and_close()) return;
  unlink_socket_file();
  goro::detail::poll_unblock(pd_);
  if (mu_.decref()) destroy();
}

// IoCall is one read- or write-side call from start to end (Go's
// readLock/writeLock with prepareRead/prepareWrite): a preemption point, as
// every runtime call has (a loop of calls that fail at once, a deadline in
// the past, must still let others run); the side's lock for the length of
// the call; and, unless the call does its own (read: prepare_read), a
// reset of the poller's state for that side. error() is 0, or why the call
// cannot go on. The last reference out after a close destroys the
// descriptor.
class NetFd::IoCall {
 public:
  IoCall(NetFd* f, PollMode mode, bool reset = true) : f_(f), read_(mode == PollMode::read) {
    goro::detail::preempt_point();
    if (!f->mu_.rwlock(read_)) {
      err_ = kErrClosing;
      return;
    }
    locked_ = true;
    if (!reset) return;
    if (const PollResult r = goro::detail::poll_reset(f->pd_, mode); r != PollResult::ok) err_ = poll_error(r);
  }
  ~IoCall() {
    if (locked_ && f_->mu_.rwunlock(read_)) f_->destroy();
  }
  IoCall(const IoCall&) = delete;
  IoCall& operator=(const IoCall&) = delete;
  int error() const noexcept { return err_; }

 private:
  NetFd* f_;
  bool read_;
  bool locked_ = false;
  int err_ = 0;
};

// retry_io runs a non-blocking system call until it gives an answer: EINTR
// (and also_retry, if given) retry at once, EAGAIN parks the goroutine on
// the poller until the descriptor is ready for `mode`. It returns the
// call's result (>= 0), -errno, or kErrTimeout / kErrClosing when the wait
// ended by a deadline or a close.
template <class Call>
std::int64_t NetFd::retry_io(PollMode mode, Call call, int also_retry) {
  for (;;) {
    const auto n = call();
    if (n >= 0) return n;
    const int err = errno;
    if (err == EINTR || err == also_retry) continue;
    if (err != EAGAIN) return -err;
    if (const PollResult r = goro::detail::poll_wait(pd_, mode); r != PollResult::ok) return poll_error(r);
  }
}

int NetFd::prepare_read(std::size_t len) {
  // See netpoll.cpp, "Skipping the EAGAIN call": after a short read, and
  // with no readiness event since, the socket is still empty: wait first.
  // Every poll_reset is followed by a read (or forgets the drained state),
  // or the next short-cut could wait for data that is already there.
  PollResult r;
  if (read_drained_ && len != 0 && !goro::detail::poll_maybe_ready(pd_, PollMode::read)) {
    r = goro::detail::poll_wait(pd_, PollMode::read);
  } else {
    r = goro::detail::poll_reset(pd_, PollMode::read);
    read_drained_ = false;
  }
  return r == PollResult::ok ? 0 : poll_error(r);
}

std::int64_t NetFd::read(void* buf, std::size_t len) {
  IoCall call(this, PollMode::read, /*reset=*/false);
  if (call.error() != 0) return call.error();
  if (const int e = prepare_read(len); e != 0) return e;
  if (len == 0) return 0;
  if (len > kMaxRW) len = kMaxRW;
  int inq = -1;  // bytes left in the socket after this read, when the kernel says (TCP_INQ)
  const std::int64_t n = retry_io(PollMode::read, [&]() -> ssize_t {
    if (!inq_) return ::recv(sysfd_, buf, len, 0);
    iovec iov{buf, len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(sysfd_, &msg, 0);
    if (got > 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ) std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
      }
    }
    return got;
  });
  // Empty after this read: the kernel said so (inq == 0), or the read came
  // back short. Either way the next read may park at once.
  if (n >= 0) read_drained_ = stream_ && n > 0 && (inq >= 0 ? inq == 0 : static_cast<std::size_t>(n) < len);
  return n;
}

std::int64_t NetFd::write(const void* buf, std::size_t len, std::size_t* written) {
  *written = 0;
  IoCall call(this, PollMode::write);
  if (call.error() != 0) return call.error();
  const char* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < len) {
    const std::size_t chunk = std::min(len - done, kMaxRW);
    // MSG_NOSIGNAL: a peer that went away is EPIPE, not SIGPIPE (Go's
    // runtime ignores SIGPIPE on sockets; a library cannot).
    const std::int64_t n = retry_io(PollMode::write, [&] { return ::send(sysfd_, p + done, chunk, MSG_NOSIGNAL); });
    if (n < 0) return n;
    if (n == 0) return -EIO;
    done += static_cast<std::size_t>(n);
    *written = done;
  }
  return static_cast<std::int64_t>(done);
}

std::int64_t NetFd::read_from(void* buf, std::size_t len, SockAddr* from) {
  IoCall call(this, PollMode::read);
  if (call.error() != 0) return call.error();
  return retry_io(PollMode::read, [&] {
    from->len = sizeof from->ss;
    return ::recvfrom(sysfd_, buf, len, 0, reinterpret_cast<sockaddr*>(&from->ss), &from->len);
  });
}

std::int64_t NetFd::write_to(const void* buf, std::size_t len, const SockAddr& to) {
  IoCall call(this, PollMode::write);
  if (call.error() != 0) return call.error();
  return retry_io(PollMode::write, [&] { return ::sendto(sysfd_, buf, len, MSG_NOSIGNAL, to.sa(), to.len); });
}

int NetFd::accept(SockAddr* peer, int* err) {
  *err = 0;
  IoCall call(this, PollMode::read);
  if (call.error() != 0) {
    *err = call.error();
    return -1;
  }
  // A connection reset before we took it is not the listener's failure.
  const std::int64_t s = retry_io(
      PollMode::read,
      [&] {
        peer->len = sizeof peer->ss;
        return ::accept4(sysfd_, reinterpret_cast<sockaddr*>(&peer->ss), &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      },
      ECONNABORTED);
  if (s >= 0) return static_cast<int>(s);
  *err = err_of(s);
  return -1;
}

int NetFd::wait_connected() {
  if (!mu_.incref()) return kErrClosing;
  struct Ref {
    NetFd* f;
    ~Ref() {
      if (f->mu_.decref()) f->destroy();
    }
  } ref{this};
  // On loopback (and often elsewhere) the handshake is over before
  // connect(2) even returned: one getpeername then saves a park, a poll and
  // a wake-up. Not yet connected (ENOTCONN), or refused: wait and ask.
  {
    SockAddr peer;
    peer.len = sizeof peer.ss;
    if (::getpeername(sysfd_, reinterpret_cast<sockaddr*>(&peer.ss), &peer.len) == 0) return 0;
  }
  for (;;) {
    const PollResult r = goro::detail::poll_wait(pd_, PollMode::write);
    if (r != PollResult::ok) return poll_error(r);
    int soerr = 0;
    socklen_t n = sizeof soerr;
    if (::getsockopt(sysfd_, SOL_SOCKET, SO_ERROR, &soerr, &n) != 0) return -errno;
    switch (soerr) {
      case EINPROGRESS:
      case EALREADY:
      case EINTR:
        continue;
      case EISCONN:
        return 0;
      case 0: {
        // The poller may wake us spuriously: make sure we are connected.
        SockAddr peer;
        peer.len = sizeof peer.ss;
        if (::getpeername(sysfd_, reinterpret_cast<sockaddr*>(&peer.ss), &peer.len) == 0) return 0;
        continue;
      }
      default:
        return -soerr;
    }
  }
}

int NetFd::shutdown(int how) noexcept {
  if (!mu_.incref()) return kErrClosing;
  const int rc = ::shutdown(sysfd_, how) == 0 ? 0 : -errno;
  if (mu_.decref()) destroy();
  return rc;
}

int NetFd::set_deadline(std::int64_t when_ns, bool read, bool write) noexcept {
  if (!mu_.incref()) return kErrClosing;
  goro::detail::poll_set_deadline(pd_, when_ns, read, write);
  if (mu_.decref()) destroy();
  return 0;
}

}  // namespace goro::net::detail
