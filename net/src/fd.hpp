// fd.hpp: a network descriptor shared by the goroutines that use it (Go's
// internal/poll.FD and net.netFD). See fd.cpp for the design essay.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "goro/detail/netpoll.hpp"

namespace goro::net::detail {

// Errors of the descriptor layer. Calls return -errno, or one of these
// (far below any -errno).
inline constexpr int kErrClosing = -100000;  // "use of closed network connection"
inline constexpr int kErrTimeout = -100001;  // "i/o timeout"

// err_of turns a negative call result into op_error's form: kErr* as is,
// -errno as the errno.
inline int err_of(long long r) noexcept {
  return r == kErrClosing || r == kErrTimeout ? static_cast<int>(r) : static_cast<int>(-r);
}

// FdMutex is Go's fdMutex: a reference count of the calls using the
// descriptor, a closed bit, and two locks that serialize reads and writes
// (so at most one reader and one writer wait on the poller at a time).
// Readers and writers that find their lock taken park on a semaphore.
class FdMutex {
 public:
  // incref adds a reference; false once closed.
  bool incref() noexcept;
  // incref_and_close adds a reference and sets the closed bit; false if
  // closed already. Wakes the callers waiting for a read or write lock.
  bool incref_and_close() noexcept;
  // decref drops a reference; true if it was the last after close (the
  // caller then destroys the descriptor).
  bool decref() noexcept;
  // rwlock takes the read (or write) lock and a reference, parking while
  // another call holds it; false once closed.
  bool rwlock(bool read);
  // rwunlock releases what rwlock took; true as decref.
  bool rwunlock(bool read) noexcept;
  bool closed() const noexcept { return (state_.load(std::memory_order_acquire) & 1) != 0; }

 private:
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> rsema_{0};
  std::atomic<std::uint32_t> wsema_{0};
};

// cat concatenates (GCC 12 warns falsely about `"x" + std::string`).
inline std::string cat(std::initializer_list<std::string_view> parts) {
  std::size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string s;
  s.reserve(n);
  for (std::string_view p : parts) s.append(p);
  return s;
}

// SockAddr is a socket address of any family.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const noexcept { return ss.ss_family; }
  const sockaddr* sa() const noexcept { return reinterpret_cast<const sockaddr*>(&ss); }
};

// format_addr writes an address as Go's Addr.String() does:
// "127.0.0.1:80", "[::1]:80" (IPv4-mapped IPv6 as IPv4), a Unix path.
std::string format_addr(const SockAddr& a);

// NetFd is one socket: its descriptor, its poller record, its addresses.
// Owned by a Conn or Listener handle plus the calls in progress; freed when
// the handle is gone and the descriptor closed.
class NetFd final : public goro::detail::PollOwner {
 public:
  // open wraps a connected or listening non-blocking socket and registers
  // it with the poller; on failure closes it and returns null (*err set).
  // laddr: the local address if known (else getsockname's).
  // net is a network name with static storage ("tcp", ...).
  static NetFd* open(int sysfd, int family, bool stream, const char* net, int* err,
                     const std::string* laddr = nullptr) noexcept;

  // Calls: >= 0 on success, else -errno or a kErr* code (always < 0).
  // read returns bytes read (0: end of stream).
  std::int64_t read(void* buf, std::size_t len);
  // write writes all of it; *written says how much went out before an error.
  std::int64_t write(const void* buf, std::size_t len, std::size_t* written);
  // read_from reads one datagram and its sender's address.
  std::int64_t read_from(void* buf, std::size_t len, SockAddr* from);
  // write_to sends one datagram to `to`.
  std::int64_t write_to(const void* buf, std::size_t len, const SockAddr& to);
  // accept returns a new descriptor (non-blocking) and its peer's
  // address, or -1 with *err a kErr* code or an errno (> 0).
  int accept(SockAddr* peer, int* err);
  // connect finishes a connect(2) that said EINPROGRESS: waits for the
  // socket to become writable, then asks the kernel how it went.
  int wait_connected();
  int shutdown(int how) noexcept;
  int set_deadline(std::int64_t when_ns, bool read, bool write) noexcept;

  // close is Go's FD.Close: wakes every call parked on the descriptor and
  // waits until the last has left and the descriptor is closed. 0 or kErrClosing.
  int close();
  // close_nowait does the same without waiting: the last call out closes
  // the descriptor (the handle's destructor, run()'s teardown).
  void close_nowait() noexcept;
  // release drops the handle's hold; the object is freed once the
  // descriptor is closed too.
  void release() noexcept;

  int sysfd() const noexcept { return sysfd_; }
  int family() const noexcept { return family_; }
  bool closed() const noexcept { return mu_.closed(); }
  const char* net() const noexcept { return net_; }
  // local_addr is getsockname's when the descriptor was opened;
  // remote_addr is set by whoever made the connection (dial, accept).
  const std::string& local_addr() const noexcept { return laddr_; }
  const std::string& remote_addr() const noexcept { return raddr_; }
  void set_remote_addr(std::string a) { raddr_ = std::move(a); }
  // unlink_on_close: a Unix listener removes its socket file when closed.
  void set_unlink_on_close(std::string path) { extras().unlink_path = std::move(path); }
  // set_inq: the socket has TCP_INQ on, so each read learns whether it
  // emptied the socket (set before the descriptor is shared).
  void set_inq(bool on) noexcept { inq_ = on; }
  bool inq() const noexcept { return inq_; }
  // Options accepted sockets inherit from a listener (TCP_NODELAY,
  // TCP_INQ): -1 unknown until the first accept checks, 0 no, 1 yes.
  std::atomic<int>& inherits_options() noexcept { return inherits_options_; }

  // accepted_laddr: the local address of the connections a listener
  // accepts, when its own address says it (not a wildcard); else null.
  const std::string* accepted_laddr() const noexcept {
    return extras_ == nullptr || extras_->accepted_laddr.empty() ? nullptr : &extras_->accepted_laddr;
  }
  void set_accepted_laddr(std::string a) { extras().accepted_laddr = std::move(a); }

  // PollOwner (run()'s teardown).
  void pin() noexcept override;
  void close_and_unpin() noexcept override;

 private:
  NetFd(int sysfd, int family, bool stream, const char* net)
      : sysfd_(sysfd), family_(family), stream_(stream), net_(net) {}

  // ListenerExtras: what only listeners need, kept out of the per-
  // connection object (set before the descriptor is shared).
  struct ListenerExtras {
    std::string unlink_path;     // a Unix listener's socket file
    std::string accepted_laddr;  // see accepted_laddr()
    std::atomic<bool> unlinked{false};
  };
  ListenerExtras& extras() {
    if (extras_ == nullptr) extras_ = std::make_unique<ListenerExtras>();
    return *extras_;
  }
  ~NetFd() = default;

  // destroy closes the descriptor: called once, by whoever dropped the
  // last reference after close.
  void destroy() noexcept;
  void unref() noexcept;
  void wait_destroyed();
  void unlink_socket_file() noexcept;
  int prepare_read(std::size_t len);
  class IoCall;
  template <class Call>
  std::int64_t retry_io(goro::detail::PollMode mode, Call call, int also_retry = EINTR);

  const int sysfd_;
  const int family_;
  const bool stream_;
  const char* const net_;
  goro::detail::PollDesc* pd_ = nullptr;
  FdMutex mu_;
  // refs_: the handle (1), the open descriptor (1), and teardown pins.
  std::atomic<int> refs_{2};
  // destroyed_: 0 while open; a closer parked in close() (its Goroutine*);
  // kDestroyed once the descriptor is closed (Go's csema, one slot).
  std::atomic<std::uintptr_t> destroyed_{0};
  // read_drained_: the last read was short, so the socket was empty
  // (netpoll.cpp, "Skipping the EAGAIN call"). Under the read lock.
  bool read_drained_ = false;
  bool inq_ = false;
  std::atomic<int> inherits_options_{-1};
  std::string raddr_;
  std::string laddr_;
  std::unique_ptr<ListenerExtras> extras_;
};

}  // namespace goro::net::detail
