// goro::net: Go's net package over the runtime's network poller.
//
// A goroutine that reads a socket with nothing to read parks ("IO wait" in
// dumps) and its thread runs other goroutines; one epoll instance watches
// every connection of the process, so a server holds a goroutine per
// connection and a handful of threads. The same calls made from a plain
// thread (not a goroutine) block that thread, in or out of run().
//
//   auto ln = goro::net::listen("tcp", "127.0.0.1:8080");
//   for (;;) {
//     goro::net::Conn c = ln.accept();
//     goro::go([c = std::move(c)]() mutable {
//       char buf[4096];
//       while (std::size_t n = c.read(buf, sizeof buf)) c.write(buf, n);   // echo until end of stream
//     });
//   }
//
// Semantics follow Go's net.Conn and net.Listener:
//   - read returns what is there (at least one byte), 0 at end of stream;
//     write writes everything (or throws);
//   - one goroutine may read while another writes and a third closes;
//     concurrent reads (or writes) of one Conn take turns;
//   - close wakes every call parked on the Conn or Listener, which throws
//     Error with closed() ("use of closed network connection"); the
//     descriptor is closed once the last of them has left, and close()
//     returns after that; a second close() throws the same Error;
//   - deadlines apply to calls in progress and to later ones until changed:
//     a call past its deadline throws Error with timeout() ("i/o
//     timeout"), even if data is waiting; moving a deadline into the past
//     wakes a parked call at once; a default time_point{} means none;
//   - TCP connections have TCP_NODELAY set, as Go sets it;
//   - names are resolved with the system resolver (getaddrinfo) inside
//     goro::blocking(); dial tries each address in turn.
// Errors are goro::net::Error: what() in Go's words ("dial tcp
// 127.0.0.1:1: connect: connection refused"), code() the errno where there
// is one (ETIMEDOUT for a timeout, EBADF for a closed Conn, ECANCELED for a
// cancelled dial, a resolver category for lookups).
//
// Memory ordering: bytes written by one side happen before the read that
// returns them on the other (the kernel's ordering); a close() happens
// before the Error it causes in a parked call.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace goro {

class Context;

namespace net {

namespace detail {
class NetFd;
struct Access;  // the implementation's way in (net/src)
}

// Error is every failure of goro::net (Go's *net.OpError and friends).
struct Error : std::system_error {
  Error(std::error_code code, const std::string& what, bool timeout = false, bool closed = false);
  const char* what() const noexcept override;
  // timeout: the call's deadline passed ("i/o timeout").
  bool timeout() const noexcept { return timeout_; }
  // closed: the Conn or Listener was closed ("use of closed network connection").
  bool closed() const noexcept { return closed_; }

 private:
  std::runtime_error text_;  // Go's message: what() returns it as is
  bool timeout_;
  bool closed_;
};

// resolver_category is the error category of name lookups (getaddrinfo's
// EAI_* values); message() is gai_strerror's.
const std::error_category& resolver_category() noexcept;

// Conn is a stream connection (Go's net.Conn: TCPConn, UnixConn).
// Move-only; the destructor closes it (without waiting for other users).
class Conn {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  Conn() noexcept = default;  // no connection: every call throws Error (EINVAL)
  Conn(Conn&& other) noexcept;
  Conn& operator=(Conn&& other) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // read parks until at least one byte is there and returns how many it
  // read (at most len); 0 means end of stream (io.EOF) or len == 0.
  std::size_t read(void* buf, std::size_t len);
  // write writes all len bytes, parking while the socket is full; returns len.
  std::size_t write(const void* buf, std::size_t len);
  std::size_t write(std::string_view s) { return write(s.data(), s.size()); }
  // close closes the connection (see the header comment). Throws Error
  // with closed() if it was closed already.
  void close();
  // close_write shuts down the writing half (TCPConn.CloseWrite): the peer
  // reads end of stream; this side may still read.
  void close_write();
  // Deadlines (see the header comment): read, write, or both.
  void set_deadline(time_point t);
  void set_read_deadline(time_point t);
  void set_write_deadline(time_point t);
  // local_addr / remote_addr: "127.0.0.1:41234", "[::1]:8080", a socket
  // path, or "" for an unnamed Unix socket.
  std::string local_addr() const;
  std::string remote_addr() const;
  // fd is the descriptor (non-blocking, registered with the poller): for
  // setsockopt and the like, not for reading behind the Conn's back.
  // -1 when there is no connection.
  int fd() const noexcept;
  explicit operator bool() const noexcept { return fd_ != nullptr; }

 private:
  friend struct detail::Access;
  explicit Conn(detail::NetFd* fd) noexcept : fd_(fd) {}
  void reset() noexcept;

  detail::NetFd* fd_ = nullptr;
};

// Listener accepts stream connections (Go's net.Listener). Move-only; the
// destructor closes it (and removes the socket file of a Unix listener).
class Listener {
 public:
  Listener() noexcept = default;  // not listening: every call throws Error (EINVAL)
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener();

  // accept parks until a connection arrives. After close(): Error with closed().
  Conn accept();
  // close stops listening and wakes a parked accept(). Throws Error with
  // closed() if it was closed already.
  void close();
  // addr is the address listened on, with the real port when listening on
  // port 0: "127.0.0.1:41234", "[::]:8080", or the socket path.
  std::string addr() const;
  int fd() const noexcept;
  explicit operator bool() const noexcept { return fd_ != nullptr; }

 private:
  friend struct detail::Access;
  explicit Listener(detail::NetFd* fd) noexcept : fd_(fd) {}
  void reset() noexcept;

  detail::NetFd* fd_ = nullptr;
};

// PacketConn is a datagram socket (Go's net.PacketConn: UDPConn,
// UnixConn on "unixgram"). Move-only; the destructor closes it. Close,
// deadlines and errors behave as Conn's.
class PacketConn {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  PacketConn() noexcept = default;  // no socket: every call throws Error (EINVAL)
  PacketConn(PacketConn&& other) noexcept;
  PacketConn& operator=(PacketConn&& other) noexcept;
  PacketConn(const PacketConn&) = delete;
  PacketConn& operator=(const PacketConn&) = delete;
  ~PacketConn();

  // read_from parks until a datagram arrives, copies it (cut to len, as
  // Go does) and returns how many bytes it copied; *from, if given, gets
  // the sender's address ("127.0.0.1:5353", a path, or "" if unnamed).
  std::size_t read_from(void* buf, std::size_t len, std::string* from = nullptr);
  // write_to sends one datagram to addr ("host:port", or a socket path for
  // "unixgram"), parking while the socket buffer is full; returns len.
  std::size_t write_to(const void* buf, std::size_t len, std::string_view addr);
  std::size_t write_to(std::string_view data, std::string_view addr) { return write_to(data.data(), data.size(), addr); }
  void close();
  void set_deadline(time_point t);
  void set_read_deadline(time_point t);
  void set_write_deadline(time_point t);
  std::string local_addr() const;
  int fd() const noexcept;
  explicit operator bool() const noexcept { return fd_ != nullptr; }

 private:
  friend struct detail::Access;
  explicit PacketConn(detail::NetFd* fd) noexcept : fd_(fd) {}
  void reset() noexcept;

  detail::NetFd* fd_ = nullptr;
};

// listen listens on a local address (net.Listen). network: "tcp", "tcp4",
// "tcp6" or "unix". address: "127.0.0.1:0", ":8080" (every interface, IPv4
// and IPv6 for "tcp"), "[::1]:0", "localhost:9000" (a name: its first IPv4
// address, as Go does), or a socket path ("@name": Linux's abstract
// namespace).
Listener listen(std::string_view network, std::string_view address);

// listen_packet opens a datagram socket on a local address
// (net.ListenPacket). network: "udp", "udp4", "udp6" or "unixgram";
// addresses as for listen.
PacketConn listen_packet(std::string_view network, std::string_view address);

// dial connects to an address (net.Dial); networks are listen's and
// listen_packet's ("udp": a Conn whose reads and writes are datagrams to
// and from that one peer). With a name, each address it resolves to is
// tried in turn.
Conn dial(std::string_view network, std::string_view address);
// dial with a timeout for the whole dial, resolution included (net.DialTimeout).
Conn dial(std::string_view network, std::string_view address, std::chrono::nanoseconds timeout);
// dial until ctx is done (Dialer.DialContext): cancelling ctx aborts the
// dial ("operation was canceled"), its deadline bounds it ("i/o timeout").
Conn dial(const Context& ctx, std::string_view network, std::string_view address);

}  // namespace net

// wait_readable waits until fd (any descriptor: a pipe, an eventfd, a
// socket another library owns) is readable, parking the goroutine ("IO
// wait") or, on a plain thread, blocking the thread. Returns true when
// ready, false when the deadline passed first (time_point::max(): none).
// Readiness is a hint, as poll(2)'s is: the caller's read may still say
// EAGAIN, and then waits again. Regular files are always ready. The
// descriptor must stay open while the call waits.
bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline =
                               std::chrono::steady_clock::time_point::max());
// wait_writable: the same for writing.
bool wait_writable(int fd, std::chrono::steady_clock::time_point deadline =
                               std::chrono::steady_clock::time_point::max());

}  // namespace goro
