// net.cpp: Conn, Listener, listen and dial (Go's net/dial.go, tcpsock.go,
// unixsock.go, sock_posix.go), on the descriptor layer of fd.cpp.
//
// Errors are built as Go's *net.OpError prints itself:
//   <op> <network>[ <local>][->| ]<remote>: <error>
// e.g. "read tcp 127.0.0.1:41234->127.0.0.1:8080: i/o timeout",
// "dial tcp 127.0.0.1:1: connect: connection refused",
// "accept tcp 127.0.0.1:8080: use of closed network connection".
//
// Dialing (Go's dialSerial): the address resolves to a list; each is tried
// in turn with a share of the time left (Go's partialDeadline: equal
// shares, at least 2 s each while time allows); the first error is the one
// reported. A connect that does not complete at once waits for the socket
// to become writable under a write deadline. With a Context, a watcher
// goroutine moves that deadline into the past when the context is done
// (Go does the same), and the dial reports the context's reason.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>

#include "fd.hpp"
#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/net.hpp"
#include "goro/runtime.hpp"
#include "goro/runtime_timer.hpp"
#include "goro/select.hpp"
#include "resolve.hpp"

namespace goro::net {

Error::Error(std::error_code code, const std::string& what, bool timeout, bool closed)
    : std::system_error(code), text_(what), timeout_(timeout), closed_(closed) {}

const char* Error::what() const noexcept { return text_.what(); }

namespace detail {

struct Access {
  static Conn conn(NetFd* f) noexcept { return Conn(f); }
  static Listener listener(NetFd* f) noexcept { return Listener(f); }
  static PacketConn packet_conn(NetFd* f) noexcept { return PacketConn(f); }
};

namespace {

using Clock = std::chrono::steady_clock;

// op_error throws Go's *OpError. err: kErrClosing, kErrTimeout, ECANCELED
// (a cancelled context), or an errno from `syscall` ("connect: ...").
[[noreturn]] void op_error(const char* op, std::string_view net, std::string_view source, std::string_view addr,
                           int err, const char* syscall = nullptr) {
  std::string text = op;
  if (!net.empty()) text.append(" ").append(net);
  if (!source.empty()) text.append(" ").append(source);
  if (!addr.empty()) text.append(source.empty() ? " " : "->").append(addr);
  text += ": ";
  if (err == kErrClosing) {
    throw Error(std::make_error_code(std::errc::bad_file_descriptor), cat({text, "use of closed network connection"}),
                false, true);
  }
  if (err == kErrTimeout) throw Error(std::make_error_code(std::errc::timed_out), cat({text, "i/o timeout"}), true);
  if (err == ECANCELED) {
    throw Error(std::make_error_code(std::errc::operation_canceled), cat({text, "operation was canceled"}));
  }
  if (syscall != nullptr) text.append(syscall).append(": ");
  throw Error(std::error_code(err, std::generic_category()), text + errno_text(err), err == ETIMEDOUT);
}

[[noreturn]] void invalid(const char* op) {
  throw Error(std::make_error_code(std::errc::invalid_argument), cat({op, ": invalid argument"}));
}

// to_ns maps a deadline to the poller's form: 0 none; else monotonic ns.
std::int64_t to_ns(Clock::time_point t) {
  if (t == Clock::time_point{} || t == Clock::time_point::max()) return 0;
  const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns <= 0 ? 1 : ns;  // at or before the clock's epoch: long past
}

int set_nodelay(int s) {
  const int one = 1;
  return ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// set_inq turns on TCP_INQ (Linux 4.18): each read then also says how many
// bytes it left in the socket, and a read that emptied it lets the next
// one park without the recv that would say EAGAIN (netpoll.cpp, "Skipping
// the EAGAIN call"). False where the kernel lacks it.
bool set_inq(int s) {
  const int one = 1;
  return ::setsockopt(s, IPPROTO_TCP, TCP_INQ, &one, sizeof one) == 0;
}

bool get_flag(int s, int opt) {
  int v = 0;
  socklen_t n = sizeof v;
  return ::getsockopt(s, IPPROTO_TCP, opt, &v, &n) == 0 && v != 0;
}

int socket_of(int family, int socktype = SOCK_STREAM) {
  return ::socket(family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

// partial_deadline is Go's: the share of the time left for one of
// `remaining` addresses (0: no deadline).
std::int64_t partial_deadline(std::int64_t now, std::int64_t deadline, std::size_t remaining, bool* expired) {
  *expired = false;
  if (deadline == 0) return 0;
  const std::int64_t left = deadline - now;
  if (left <= 0) {
    *expired = true;
    return 0;
  }
  std::int64_t share = left / static_cast<std::int64_t>(remaining);
  constexpr std::int64_t kSaneMinimum = 2'000'000'000;  // Go's saneMinimum, 2 s
  if (share < kSaneMinimum) share = std::min(left, kSaneMinimum);
  return now + share;
}

// v4_wildcard is the IPv4 wildcard with an IPv6 wildcard's port.
SockAddr v4_wildcard(const SockAddr& v6) {
  SockAddr la;
  auto* in = reinterpret_cast<sockaddr_in*>(&la.ss);
  in->sin_family = AF_INET;
  in->sin_port = reinterpret_cast<const sockaddr_in6*>(&v6.ss)->sin6_port;
  in->sin_addr.s_addr = htonl(INADDR_ANY);
  la.len = sizeof(sockaddr_in);
  return la;
}

// v4_mapped is an IPv4 address as a dual-stack IPv6 socket sends to it.
SockAddr v4_mapped(const SockAddr& v4) {
  SockAddr a;
  const auto* in = reinterpret_cast<const sockaddr_in*>(&v4.ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = in->sin_port;
  in6->sin6_addr.s6_addr[10] = 0xff;
  in6->sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
  a.len = sizeof(sockaddr_in6);
  return a;
}

bool ctx_done(const Context* ctx) { return ctx != nullptr && ctx->err() != ContextError::none; }

// ctx_error is Go's mapErr: Canceled -> "operation was canceled",
// DeadlineExceeded -> "i/o timeout".
int ctx_error(const Context* ctx) { return ctx->err() == ContextError::canceled ? ECANCELED : kErrTimeout; }

// Watcher is Go's connect interrupter: while a connect waits, a goroutine
// waits for ctx to be done and then poisons the write deadline.
class Watcher {
 public:
  Watcher(const Context* ctx, NetFd* fd) {
    if (ctx == nullptr || ctx->done().is_nil()) return;
    Chan<Unit> ctx_done = ctx->done();
    try {
      goro::go([ctx_done, stop = stop_, result = result_, fd]() mutable {
        bool fired = false;
        Chan<Unit> d = ctx_done;
        Chan<Unit> s = stop;
        goro::select(goro::on_recv(d,
                                   [&](std::optional<Unit>) {
                                     fd->set_deadline(1, false, true);  // long ago: wakes the connect
                                     fired = true;
                                   }),
                     goro::on_recv(s, [](std::optional<Unit>) {}));
        result.send(fired);
      });
      active_ = true;
    } catch (const std::logic_error&) {
      // Outside run(): nobody can cancel a context's done channel by timer;
      // the deadline alone bounds the dial.
    }
  }
  // finish stops the watcher; true if it interrupted the connect.
  bool finish() {
    if (!active_) return false;
    active_ = false;
    stop_.close();
    return *result_.recv();
  }
  ~Watcher() {
    if (active_) finish();
  }

 private:
  Chan<Unit> stop_{0};
  Chan<bool> result_{1};
  bool active_ = false;
};

Conn dial_one(const Network& net, const SockAddr& ra, std::int64_t deadline, const Context* ctx) {
  const std::string raddr = format_addr(ra);
  const int s = socket_of(ra.family(), net.socktype);
  if (s < 0) op_error("dial", net.name, "", raddr, errno, "socket");
  const bool tcp = net.is_stream() && !net.is_unix();
  if (tcp && set_nodelay(s) != 0) {
    const int e = errno;
    ::close(s);
    op_error("dial", net.name, "", raddr, e, "setsockopt");
  }
  const bool inq = tcp && set_inq(s);
  // EINTR leaves the connect going on asynchronously, as EINPROGRESS does.
  const int cerr = ::connect(s, ra.sa(), ra.len) == 0 ? 0 : errno;
  if (cerr != 0 && cerr != EINPROGRESS && cerr != EALREADY && cerr != EINTR && cerr != EISCONN) {
    ::close(s);
    op_error("dial", net.name, "", raddr, cerr, "connect");
  }
  int err = 0;
  NetFd* fd = NetFd::open(s, ra.family(), net.is_stream(), net.static_name, &err);
  if (fd == nullptr) op_error("dial", net.name, "", raddr, err, "epoll_ctl");
  fd->set_remote_addr(raddr);
  fd->set_inq(inq);
  if (cerr == 0 || cerr == EISCONN) return Access::conn(fd);

  // In progress: wait for writability, bounded by the deadline and ctx.
  if (deadline != 0) fd->set_deadline(deadline, false, true);
  int werr;
  bool interrupted;
  {
    Watcher watcher(ctx, fd);
    try {
      werr = fd->wait_connected();
    } catch (...) {
      fd->close_nowait();
      fd->release();
      throw;
    }
    interrupted = watcher.finish();
  }
  if (werr != 0 || interrupted) {
    // Interrupted after connecting: the deadline is poisoned, fail anyway
    // (Go's issue 16523).
    int err = err_of(werr);
    const char* call = err > 0 ? "connect" : nullptr;
    if ((werr == 0 || werr == kErrTimeout) && ctx_done(ctx)) {
      err = ctx_error(ctx);
      call = nullptr;
    }
    fd->close_nowait();
    fd->release();
    op_error("dial", net.name, "", raddr, err, call);
  }
  if (deadline != 0) fd->set_deadline(0, false, true);
  return Access::conn(fd);
}

Conn dial_impl(const Context* ctx, std::string_view network, std::string_view address, std::int64_t timeout_ns) {
  Network net;
  if (!parse_network(network, &net)) {
    throw Error(std::make_error_code(std::errc::invalid_argument),
                cat({"dial ", network, ": unknown network ", network}));
  }
  const std::int64_t start = monotonic_now_ns();
  std::int64_t deadline = timeout_ns > 0 ? start + timeout_ns : 0;
  if (ctx != nullptr) {
    if (const auto d = ctx->deadline()) {
      const std::int64_t cd = to_ns(*d);
      if (cd != 0 && (deadline == 0 || cd < deadline)) deadline = cd;
    }
  }
  Resolved res;
  ResolveError rerr;
  if (!resolve(net, address, false, &res, &rerr)) {
    throw Error(rerr.code, cat({"dial ", net.name, ": ", rerr.text}));
  }
  std::optional<Error> first;
  for (std::size_t i = 0; i < res.addrs.size(); ++i) {
    const std::string raddr = net.is_unix() ? res.shown : format_addr(res.addrs[i]);
    if (ctx_done(ctx)) {
      try {
        op_error("dial", net.name, "", raddr, ctx_error(ctx));
      } catch (const Error& e) {
        throw first ? *first : e;
      }
    }
    bool expired = false;
    const std::int64_t d = partial_deadline(monotonic_now_ns(), deadline, res.addrs.size() - i, &expired);
    try {
      if (expired) op_error("dial", net.name, "", raddr, kErrTimeout);
      return dial_one(net, res.addrs[i], d, ctx);
    } catch (const Error& e) {
      if (!first) first.emplace(e);
      if (expired) break;
    }
  }
  throw *first;
}

}  // namespace
}  // namespace detail

using detail::Access;
using detail::kErrClosing;
using detail::kErrTimeout;
using detail::NetFd;
using detail::cat;
using detail::op_error;

// Held keeps a descriptor object alive for one call that may park. The
// call reads the handle's pointer once, at entry, and from then on uses
// only its own reference: the handle may be closed, moved from or
// destroyed while the call is parked (a goroutine that captured `this` of
// an object main destroys, docs/guide.md), and the call must come back to
// memory that is still there. Two uncontended atomics a call; each call
// that parks makes system calls costing a thousand times that.
namespace {
class Held {
 public:
  explicit Held(NetFd* fd) noexcept : fd_(fd) { fd_->pin(); }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held() { fd_->release(); }
  NetFd* operator->() const noexcept { return fd_; }

 private:
  NetFd* const fd_;
};

// drop_handle is what a handle's destructor, reset and move-assignment do
// with the descriptor it held: close it without waiting for the calls
// parked on it (they hold their own reference) and let go.
void drop_handle(NetFd*& fd) noexcept {
  if (fd != nullptr) {
    fd->close_nowait();
    fd->release();
    fd = nullptr;
  }
}

// set_fd_deadline is every handle's SetDeadline, SetReadDeadline and
// SetWriteDeadline: Go's words when the handle is empty or closed.
void set_fd_deadline(NetFd* fd, std::chrono::steady_clock::time_point t, bool read, bool write) {
  if (fd == nullptr) detail::invalid("set");
  if (fd->set_deadline(detail::to_ns(t), read, write) != 0) op_error("set", fd->net(), "", fd->local_addr(), kErrClosing);
}

}  // namespace

// --- Conn ---------------------------------------------------------------

Conn::Conn(Conn&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}

Conn& Conn::operator=(Conn&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

Conn::~Conn() { reset(); }

void Conn::reset() noexcept {
  drop_handle(fd_);
}

std::size_t Conn::read(void* buf, std::size_t len) {
  if (fd_ == nullptr) detail::invalid("read");
  const Held fd(fd_);  // see Held
  const std::int64_t n = fd->read(buf, len);
  if (n >= 0) return static_cast<std::size_t>(n);
  const int e = detail::err_of(n);
  op_error("read", fd->net(), fd->local_addr(), fd->remote_addr(), e, e > 0 ? "read" : nullptr);
}

std::size_t Conn::write(const void* buf, std::size_t len) {
  if (fd_ == nullptr) detail::invalid("write");
  const Held fd(fd_);  // see Held
  std::size_t written = 0;
  const std::int64_t n = fd->write(buf, len, &written);
  if (n >= 0) return static_cast<std::size_t>(n);
  const int e = detail::err_of(n);
  op_error("write", fd->net(), fd->local_addr(), fd->remote_addr(), e, e > 0 ? "write" : nullptr);
}

void Conn::close() {
  if (fd_ == nullptr) detail::invalid("close");
  const Held fd(fd_);  // see Held
  if (const int e = fd->close(); e != 0) op_error("close", fd->net(), fd->local_addr(), fd->remote_addr(), e);
}

void Conn::close_write() {
  if (fd_ == nullptr) detail::invalid("close");
  const int r = fd_->shutdown(SHUT_WR);
  if (r == 0) return;
  const int e = detail::err_of(r);
  op_error("close", fd_->net(), fd_->local_addr(), fd_->remote_addr(), e, e > 0 ? "shutdown" : nullptr);
}

void Conn::set_deadline(time_point t) { set_fd_deadline(fd_, t, true, true); }

void Conn::set_read_deadline(time_point t) { set_fd_deadline(fd_, t, true, false); }

void Conn::set_write_deadline(time_point t) { set_fd_deadline(fd_, t, false, true); }

std::string Conn::local_addr() const { return fd_ != nullptr ? fd_->local_addr() : std::string(); }
std::string Conn::remote_addr() const { return fd_ != nullptr ? fd_->remote_addr() : std::string(); }
int Conn::fd() const noexcept { return fd_ != nullptr ? fd_->sysfd() : -1; }

// --- Listener -------------------------------------------------------------

Listener::Listener(Listener&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

Listener::~Listener() { reset(); }

void Listener::reset() noexcept {
  drop_handle(fd_);
}

Conn Listener::accept() {
  if (fd_ == nullptr) detail::invalid("accept");
  const Held fd(fd_);  // see Held
  detail::SockAddr peer;
  int err = 0;
  const int s = fd->accept(&peer, &err);
  if (s < 0) op_error("accept", fd->net(), "", fd->local_addr(), err, err > 0 ? "accept4" : nullptr);
  const bool is_unix = peer.family() == AF_UNIX;
  bool inq = false;
  if (!is_unix) {
    // The listener has TCP_NODELAY and TCP_INQ on, and Linux copies them
    // into every socket it accepts; the first accept makes sure (once per
    // listener), so the others cost no setsockopt.
    int inherits = fd->inherits_options().load(std::memory_order_relaxed);
    if (inherits < 0) {
      inherits = detail::get_flag(s, TCP_NODELAY) && (!fd->inq() || detail::get_flag(s, TCP_INQ)) ? 1 : 0;
      fd->inherits_options().store(inherits, std::memory_order_relaxed);
    }
    if (inherits == 1) {
      inq = fd->inq();
    } else {
      if (detail::set_nodelay(s) != 0) {
        const int e = errno;
        ::close(s);
        op_error("accept", fd->net(), "", fd->local_addr(), e, "setsockopt");
      }
      inq = detail::set_inq(s);
    }
  }
  NetFd* c = NetFd::open(s, peer.family(), true, fd->net(), &err, fd->accepted_laddr());
  if (c == nullptr) op_error("accept", fd->net(), "", fd->local_addr(), err, "epoll_ctl");
  c->set_remote_addr(detail::format_addr(peer));
  c->set_inq(inq);
  return Access::conn(c);
}

void Listener::close() {
  if (fd_ == nullptr) detail::invalid("close");
  const Held fd(fd_);  // see Held
  if (const int e = fd->close(); e != 0) op_error("close", fd->net(), "", fd->local_addr(), e);
}

std::string Listener::addr() const { return fd_ != nullptr ? fd_->local_addr() : std::string(); }
int Listener::fd() const noexcept { return fd_ != nullptr ? fd_->sysfd() : -1; }

// --- listen and dial --------------------------------------------------------

Listener listen(std::string_view network, std::string_view address) {
  detail::Network net;
  if (!detail::parse_network(network, &net) || !net.is_stream()) {
    throw Error(std::make_error_code(std::errc::invalid_argument),
                cat({"listen ", network, ": unknown network ", network}));
  }
  detail::Resolved res;
  detail::ResolveError rerr;
  if (!detail::resolve(net, address, true, &res, &rerr)) throw Error(rerr.code, cat({"listen ", net.name, ": ", rerr.text}));
  detail::SockAddr la = res.addrs.front();
  int s = detail::socket_of(la.family());
  if (s < 0 && la.family() == AF_INET6 && res.wildcard && net.family == AF_UNSPEC) {
    la = detail::v4_wildcard(la);  // no IPv6 here
    s = detail::socket_of(AF_INET);
  }
  if (s < 0) op_error("listen", net.name, "", res.shown, errno, "socket");
  auto fail = [&](const char* call) {
    const int e = errno;
    ::close(s);
    op_error("listen", net.name, "", res.shown, e, call);
  };
  bool inq = false;
  if (!net.is_unix()) {
    const int one = 1;
    if (::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) fail("setsockopt");
    // Inherited by the sockets accept() returns (Listener::accept checks).
    if (detail::set_nodelay(s) != 0) fail("setsockopt");
    inq = detail::set_inq(s);
    if (la.family() == AF_INET6) {
      // Dual stack for "tcp", IPv6 only for "tcp6" (Go's ipv6only).
      const int v6only = net.family == AF_INET6 ? 1 : 0;
      if (::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) fail("setsockopt");
    }
  }
  if (::bind(s, la.sa(), la.len) != 0) fail("bind");
  // The kernel caps the backlog at net.core.somaxconn, which Go reads and uses.
  if (::listen(s, 65535) != 0) fail("listen");
  int err = 0;
  NetFd* fd = NetFd::open(s, la.family(), true, net.static_name, &err);
  if (fd == nullptr) op_error("listen", net.name, "", res.shown, err, "epoll_ctl");
  if (net.is_unix() && !address.empty() && address[0] != '@') fd->set_unlink_on_close(std::string(address));
  fd->set_inq(inq);
  // Bound to one IP address (not a wildcard, nor a Unix path: a
  // connection's own name is unnamed there), every connection it accepts
  // has that local address: no getsockname per accept.
  if (!net.is_unix() && !res.wildcard) fd->set_accepted_laddr(fd->local_addr());
  return Access::listener(fd);
}

// --- PacketConn -------------------------------------------------------------

PacketConn::PacketConn(PacketConn&& other) noexcept : fd_(std::exchange(other.fd_, nullptr)) {}

PacketConn& PacketConn::operator=(PacketConn&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = std::exchange(other.fd_, nullptr);
  }
  return *this;
}

PacketConn::~PacketConn() { reset(); }

void PacketConn::reset() noexcept {
  drop_handle(fd_);
}

std::size_t PacketConn::read_from(void* buf, std::size_t len, std::string* from) {
  if (fd_ == nullptr) detail::invalid("read");
  const Held fd(fd_);  // see Held
  detail::SockAddr sender;
  const std::int64_t n = fd->read_from(buf, len, &sender);
  if (n >= 0) {
    if (from != nullptr) *from = detail::format_addr(sender);
    return static_cast<std::size_t>(n);
  }
  const int e = detail::err_of(n);
  op_error("read", fd->net(), fd->local_addr(), "", e, e > 0 ? "recvfrom" : nullptr);
}

std::size_t PacketConn::write_to(const void* buf, std::size_t len, std::string_view addr) {
  if (fd_ == nullptr) detail::invalid("write");
  const Held fd(fd_);  // see Held
  detail::Network net;
  detail::parse_network(fd->net(), &net);
  detail::Resolved res;
  detail::ResolveError rerr;
  if (!detail::resolve(net, addr, false, &res, &rerr)) {
    throw Error(rerr.code, cat({"write ", net.name, " ", fd->local_addr(), ": ", rerr.text}));
  }
  // A dual-stack socket reaches IPv4 peers through mapped addresses.
  detail::SockAddr to = res.addrs.front();
  const int family = fd->family();
  for (const detail::SockAddr& a : res.addrs) {
    if (a.family() == family) {
      to = a;
      break;
    }
  }
  if (family == AF_INET6 && to.family() == AF_INET) to = detail::v4_mapped(to);
  const std::int64_t n = fd->write_to(buf, len, to);
  if (n >= 0) return static_cast<std::size_t>(n);
  const int e = detail::err_of(n);
  op_error("write", fd->net(), fd->local_addr(), std::string(addr), e, e > 0 ? "sendto" : nullptr);
}

void PacketConn::close() {
  if (fd_ == nullptr) detail::invalid("close");
  const Held fd(fd_);  // see Held
  if (const int e = fd->close(); e != 0) op_error("close", fd->net(), "", fd->local_addr(), e);
}

void PacketConn::set_deadline(time_point t) { set_fd_deadline(fd_, t, true, true); }

void PacketConn::set_read_deadline(time_point t) { set_fd_deadline(fd_, t, true, false); }

void PacketConn::set_write_deadline(time_point t) { set_fd_deadline(fd_, t, false, true); }

std::string PacketConn::local_addr() const { return fd_ != nullptr ? fd_->local_addr() : std::string(); }
int PacketConn::fd() const noexcept { return fd_ != nullptr ? fd_->sysfd() : -1; }

PacketConn listen_packet(std::string_view network, std::string_view address) {
  detail::Network net;
  if (!detail::parse_network(network, &net) || net.is_stream()) {
    throw Error(std::make_error_code(std::errc::invalid_argument),
                cat({"listen ", network, ": unknown network ", network}));
  }
  detail::Resolved res;
  detail::ResolveError rerr;
  if (!detail::resolve(net, address, true, &res, &rerr)) throw Error(rerr.code, cat({"listen ", net.name, ": ", rerr.text}));
  detail::SockAddr la = res.addrs.front();
  int s = detail::socket_of(la.family(), SOCK_DGRAM);
  if (s < 0 && la.family() == AF_INET6 && res.wildcard && net.family == AF_UNSPEC) {
    la = detail::v4_wildcard(la);
    s = detail::socket_of(AF_INET, SOCK_DGRAM);
  }
  if (s < 0) op_error("listen", net.name, "", res.shown, errno, "socket");
  auto fail = [&](const char* call) {
    const int e = errno;
    ::close(s);
    op_error("listen", net.name, "", res.shown, e, call);
  };
  if (la.family() == AF_INET6) {
    const int v6only = net.family == AF_INET6 ? 1 : 0;
    if (::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) fail("setsockopt");
  }
  if (::bind(s, la.sa(), la.len) != 0) fail("bind");
  int err = 0;
  NetFd* fd = NetFd::open(s, la.family(), false, net.static_name, &err);
  if (fd == nullptr) op_error("listen", net.name, "", res.shown, err, "epoll_ctl");
  if (net.is_unix() && !address.empty() && address[0] != '@') fd->set_unlink_on_close(std::string(address));
  return Access::packet_conn(fd);
}

Conn dial(std::string_view network, std::string_view address) {
  return detail::dial_impl(nullptr, network, address, 0);
}

Conn dial(std::string_view network, std::string_view address, std::chrono::nanoseconds timeout) {
  // Go's DialTimeout: a zero or negative timeout means none.
  return detail::dial_impl(nullptr, network, address, timeout.count() > 0 ? timeout.count() : 0);
}

Conn dial(const Context& ctx, std::string_view network, std::string_view address) {
  return detail::dial_impl(&ctx, network, address, 0);
}

}  // namespace goro::net
