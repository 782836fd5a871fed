// wait.cpp: goro::wait_readable / wait_writable, readiness of descriptors
// goro does not own (a pipe, an eventfd, another library's socket: the
// hook for libcurl's multi interface or c-ares).
//
// A goroutine registers the descriptor with the poller for the length of
// one wait (epoll_ctl ADD, then DEL): the registration reports the
// descriptor's state at once if it is ready, so nothing is missed between
// the first look and the park. If the descriptor is registered already
// (goro::net's own, or another goroutine waits on it), a duplicate of it is
// registered instead: epoll keys registrations by descriptor and file, so
// the duplicate is a separate entry. A first non-blocking poll(2) answers
// without any of that when the descriptor is ready; a plain thread simply
// blocks in ppoll.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>

#include "goro/detail/netpoll.hpp"
#include "goro/net.hpp"
#include "goro/park.hpp"
#include "goro/runtime_timer.hpp"

namespace goro {

namespace {

using goro::detail::PollMode;
using goro::detail::PollResult;

// check polls fd once without blocking: ready, or throws for a bad descriptor.
bool check(int fd, short events, const char* who) {
  pollfd p{fd, events, 0};
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw std::system_error(errno, std::generic_category(), who);
  if ((p.revents & POLLNVAL) != 0) throw std::system_error(EBADF, std::generic_category(), who);
  return n > 0;
}

bool wait_fd(int fd, bool read, std::chrono::steady_clock::time_point deadline, const char* who) {
  const short events = read ? static_cast<short>(POLLIN | POLLRDHUP) : static_cast<short>(POLLOUT);
  if (check(fd, events, who)) return true;
  std::int64_t until = 0;  // 0: no deadline
  if (deadline != std::chrono::steady_clock::time_point::max()) {
    until = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    if (until <= monotonic_now_ns()) return false;
  }
  if (!in_goroutine()) {
    for (;;) {
      pollfd p{fd, events, 0};
      timespec ts{};
      if (until != 0) {
        const std::int64_t left = until - monotonic_now_ns();
        if (left <= 0) return false;
        ts.tv_sec = left / 1'000'000'000;
        ts.tv_nsec = left % 1'000'000'000;
      }
      const int n = ::ppoll(&p, 1, until != 0 ? &ts : nullptr, nullptr);
      if (n > 0) {
        if ((p.revents & POLLNVAL) != 0) throw std::system_error(EBADF, std::generic_category(), who);
        return true;
      }
      if (n < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), who);
    }
  }
  int err = 0;
  int wfd = fd;
  goro::detail::PollDesc* pd = goro::detail::poll_open(fd, nullptr, &err);
  if (pd == nullptr && err == EEXIST) {
    wfd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (wfd < 0) throw std::system_error(errno, std::generic_category(), who);
    pd = goro::detail::poll_open(wfd, nullptr, &err);
  }
  if (pd == nullptr) {
    if (wfd != fd) ::close(wfd);
    if (err == EPERM) return true;  // a regular file or directory: always ready, as poll(2) says
    throw std::system_error(err, std::generic_category(), who);
  }
  struct Unregister {
    goro::detail::PollDesc* pd;
    int fd, wfd;
    ~Unregister() {
      goro::detail::poll_unblock(pd);
      goro::detail::poll_close(pd);
      if (wfd != fd) ::close(wfd);
    }
  } unregister{pd, fd, wfd};
  if (until != 0) goro::detail::poll_set_deadline(pd, until, read, !read);
  return goro::detail::poll_wait(pd, read ? PollMode::read : PollMode::write) == PollResult::ok;
}

}  // namespace

bool wait_readable(int fd, std::chrono::steady_clock::time_point deadline) {
  return wait_fd(fd, true, deadline, "goro::wait_readable");
}

bool wait_writable(int fd, std::chrono::steady_clock::time_point deadline) {
  return wait_fd(fd, false, deadline, "goro::wait_writable");
}

}  // namespace goro
