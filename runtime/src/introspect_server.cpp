// introspect_server.cpp: the thread that answers `goro ps/stat/top/dump`.
//
// Why a thread of its own and not a goroutine: the moment someone most
// wants to look inside a process is when it is stuck, and "stuck" often
// means every P is busy or every M is blocked. A plain thread parked in
// poll() costs nothing while nobody asks (no CPU when idle, like the rest of
// the runtime) and still answers then: everything it reads (sched_stats,
// goroutines) is read racily from atomics, as Go's own dump does, and the
// scheduler lock is taken only for the M list, which no hot path holds.
//
// One server per process, started by the first run() and kept across runs
// (a test binary calls run() thousands of times; between runs it answers
// with running=0). The socket is removed at exit; a process that dies
// without exiting (abort, SIGKILL) leaves a stale socket, which the next
// goro process of the same user and `goro ps` delete after checking that
// the pid is gone.
//
// Security: the directory is per user and 0700, the socket 0600, and every
// connection's peer uid is checked (SO_PEERCRED), so only the same user (or
// root) can read a process's goroutines. A directory in /tmp that exists
// but belongs to someone else is refused: the server then does not start.
//
// The deadlock detector counts this thread as the runtime's own
// (introspect_server_threads), so its presence never hides a deadlock.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>
#include <ctime>
#include <iterator>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "goro/detail/introspect_wire.hpp"
#include "goro/introspect.hpp"
#include "goro/runtime.hpp"
#include "goro/detail/print.hpp"
#include "scheduler.hpp"

namespace goro::detail {

std::string introspect_dir(unsigned uid, const char* xdg_runtime_dir) {
  if (xdg_runtime_dir != nullptr && xdg_runtime_dir[0] == '/') {
    struct stat st {};
    if (::stat(xdg_runtime_dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid) {
      std::string dir = std::string(xdg_runtime_dir) + "/goro";
      // sun_path holds 108 bytes: leave room for "/<pid>.sock".
      if (dir.size() < 80) return dir;
    }
  }
  return fmt::format("/tmp/goro-{}", uid);
}

std::vector<std::string> introspect_candidate_dirs(unsigned uid, const char* xdg_runtime_dir) {
  std::vector<std::string> dirs;
  auto add = [&](const std::string& d) {
    for (const auto& x : dirs) {
      if (x == d) return;
    }
    dirs.push_back(d);
  };
  add(introspect_dir(uid, xdg_runtime_dir));
  add(fmt::format("/run/user/{}/goro", uid));
  add(fmt::format("/tmp/goro-{}", uid));
  return dirs;
}

}  // namespace goro::detail

namespace goro::rt {
namespace {

// Server state. g_path and g_owner_pid are written before g_serving is set
// (release) and never change while it is set.
std::atomic<bool> g_started{false};
std::atomic<bool> g_serving{false};
std::atomic<int> g_thread_alive{0};
std::string g_path;
pid_t g_owner_pid = 0;
int g_listen_fd = -1;

void remove_socket_at_exit() {
  // Only the process that created the socket removes it: a forked child
  // (a death test, say) inherits g_path but not the server.
  if (g_owner_pid == ::getpid() && !g_path.empty()) ::unlink(g_path.c_str());
}

void after_fork_in_child() {
  // The server thread did not survive the fork; let a run() in the child
  // start its own (with its own pid's socket).
  if (g_listen_fd >= 0) ::close(g_listen_fd);
  g_listen_fd = -1;
  g_serving.store(false, std::memory_order_relaxed);
  g_thread_alive.store(0, std::memory_order_relaxed);
  g_started.store(false, std::memory_order_relaxed);
}

bool ensure_private_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return false;
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    print_stderr("goro: {} is not a directory owned by uid {}; introspection (goro stat) is off\n", dir,
                 static_cast<unsigned>(::geteuid()));
    return false;
  }
  if ((st.st_mode & 077) != 0) ::chmod(dir.c_str(), 0700);
  return true;
}

// remove_stale_sockets deletes "<pid>.sock" entries whose process is gone.
void remove_stale_sockets(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".sock") != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str(), &end, 10);
    if (pid <= 0 || std::strcmp(end, ".sock") != 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

std::string sanitize(std::string s) {
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!all.empty() && all.back() == '\0') all.pop_back();
  for (char& c : all) {
    if (c == '\0') c = ' ';
  }
  return sanitize(all);
}

// write_frames writes a stack as the "stacks" and "stack groups" answers
// carry it: one line a frame, "\t<pc hex>\t<line>\t<file>\t<function>".
void write_frames(std::string& out, const std::vector<Frame>& stack) {
  for (const Frame& f : stack) {
    fmt::format_to(std::back_inserter(out), "\t{:x}\t{}\t{}\t{}\n", f.pc, f.line, sanitize(f.file),
                   sanitize(f.function));
  }
}

// answer_with answers with what one of the public writers (which take a
// stream) writes.
template <class Write>
std::string answer_with(Write&& write) {
  std::ostringstream out;
  write(out);
  return std::move(out).str();
}

std::string answer_request(const std::string& request) {
  std::string out;
  const auto to = std::back_inserter(out);
  if (request == "info") {
    const SchedStats s = sched_stats();
    fmt::format_to(to, "pid {}\ncommand {}\nrunning {}\ngoroutines {}\ngomaxprocs {}\n", ::getpid(), command_line(),
                   s.gomaxprocs > 0 ? 1 : 0, s.goroutines, s.gomaxprocs);
  } else if (request == "stats") {
    const SchedStats s = sched_stats();
    fmt::format_to(to,
                   "pid {}\nmonotonic_ns {}\nrunning {}\ngomaxprocs {}\nidle_procs {}\nthreads {}\n"
                   "spinning_threads {}\nidle_threads {}\nglobal_runq {}\nlocal_runq",
                   ::getpid(), now_ns(), s.gomaxprocs > 0 ? 1 : 0, s.gomaxprocs, s.idle_procs, s.threads,
                   s.spinning_threads, s.idle_threads, s.global_runq);
    for (const std::int64_t n : s.local_runq) fmt::format_to(to, " {}", n);
    fmt::format_to(to,
                   "\nspare_procs {}\nspare_runq {}\n"
                   "goroutines {}\ncreated {}\nsteals {}\ncontext_switches {}\nparks {}\nhandoffs {}\n"
                   "preempt_requests {}\nhogs {}\nthread_blocks {}\nblocking_calls {}\ntimers {}\n"
                   "stacks_in_use {}\nstack_bytes_reserved {}\nguarded_stacks {}\nuptime_ms {}\n",
                   s.spare_procs, s.spare_runq, s.goroutines, s.created, s.steals, s.context_switches, s.parks, s.handoffs, s.preempt_requests,
                   s.hogs, s.thread_blocks, s.blocking_calls, s.timers, s.stacks_in_use, s.stack_bytes_reserved,
                   s.guarded_stacks, s.uptime_ms);
  } else if (request == "goroutines" || request == "stacks") {
    const bool stacks = request == "stacks";
    for (const GoroutineInfo& g : goroutines(stacks)) {
      fmt::format_to(to, "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}", g.id, to_string(g.state), sanitize(g.wait_reason),
                     g.waiting_for.count(), sanitize(g.created_at), sanitize(g.created_by), g.parent_id,
                     sanitize(g.name));
      if (stacks) {
        fmt::format_to(to, "\t{}\t{}\t{}", sanitize(g.submitted_at), sanitize(g.submitted_by),
                       g.stack_elided ? 1 : 0);
      }
      out += '\n';
      write_frames(out, g.stack);
    }
  } else if (request == "stack groups") {
    const std::vector<GoroutineInfo> all = goroutines();
    for (const StackGroup& group : group_goroutines(all)) {
      fmt::format_to(to, "G\t{}\t{}\t{}\t{}\t{}\n", group.count, sanitize(group.what), sanitize(group.created_at),
                     group.elided ? 1 : 0, fmt::join(group.ids, " "));
      write_frames(out, group.stack);
    }
  } else if (request == "dump") {
    return answer_with([](std::ostream& o) { dump_goroutines(o, false); });
  } else if (request == "dump group") {
    return answer_with([](std::ostream& o) { dump_goroutines(o, true); });
  } else if (request == "pprof") {
    return answer_with([](std::ostream& o) { write_goroutine_profile(o); });
  } else {
    fmt::format_to(to, "error unknown request '{}'\n", sanitize(request));
  }
  return out;
}

// --- Serving many clients --------------------------------------------------
//
// One thread, one poll() over the listening socket and every connection,
// all non-blocking: a client that connects and says nothing, sends half a
// line, or does not read its answer holds only its own slot, never the
// server. Each connection goes through two phases: reading its request
// (at most kIntrospectMaxRequest bytes, then answered with an error) and
// writing its answer (computed at once, when the request line is complete:
// the answer is a snapshot, and the time to compute it is the only time
// other clients wait). A connection that makes no progress for
// kClientIdleMs is dropped, and at most kMaxClients are open: one more
// evicts the idlest client still reading (a silent client must not keep a
// real one out). Nothing is polled with a timeout while no client is open,
// so an idle server costs no CPU.
//
// Alternatives rejected: a thread per client (unbounded threads at a
// client's whim, and each one counted by the deadlock detector); the old
// one-client-at-a-time loop with SO_RCVTIMEO (50 silent clients held
// `goro dump` for 100 s).

constexpr std::size_t kMaxClients = 128;
constexpr std::int64_t kClientIdleMs = 10'000;
constexpr std::size_t kReadChunk = 512;

std::int64_t monotonic_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

struct Client {
  int fd = -1;
  bool writing = false;  // the request is in; `out` is the answer
  std::string in;        // the request so far (bounded: kIntrospectMaxRequest)
  std::string out;
  std::size_t sent = 0;
  std::int64_t last_progress_ms = 0;
};

// start_answer switches c to writing `answer_text`.
void start_answer(Client& c, std::string answer_text) {
  c.writing = true;
  c.in.clear();
  c.in.shrink_to_fit();
  c.out = std::move(answer_text);
  c.sent = 0;
}

// accept_client sets up a new connection (the peer check answers at once).
void accept_client(Client& c, int fd, std::int64_t now) {
  c = Client{};
  c.fd = fd;
  c.last_progress_ms = now;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != ::geteuid() && cred.uid != 0)) {
    start_answer(c, "error permission denied: the process belongs to another user\n");
  }
}

// on_readable reads what c sent; false: drop c (it left, or broke).
bool on_readable(Client& c) {
  char buf[kReadChunk];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;  // closed before its request line was complete
    // Never hold more than one request's worth: the parser needs no more
    // to decide (complete, or too long).
    const std::size_t room = goro::detail::kIntrospectMaxRequest + 1 - c.in.size();
    c.in.append(buf, std::min(static_cast<std::size_t>(n), room));
    std::string request;
    switch (goro::detail::introspect_parse_request(c.in, &request)) {
      case goro::detail::RequestStatus::kIncomplete:
        continue;
      case goro::detail::RequestStatus::kComplete:
        start_answer(c, goro::detail::introspect_answer(request));
        return true;
      case goro::detail::RequestStatus::kTooLong:
        start_answer(c, fmt::format("error request too long (at most {} bytes and a newline)\n",
                                    goro::detail::kIntrospectMaxRequest));
        return true;
    }
  }
}

// on_writable sends what the socket takes; false: done, or the client left.
bool on_writable(Client& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    c.sent += static_cast<std::size_t>(n);
  }
  return false;  // all sent: closing is the end of the answer
}

void server_main(int listen_fd) {
  // Signals belong to the program's threads and the Ms, not to us.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::vector<Client> clients;
  std::vector<pollfd> pfds;
  std::int64_t accept_paused_until = 0;  // out of descriptors: retry then
  const auto drop = [&](std::size_t i) {
    ::close(clients[i].fd);
    clients[i] = std::move(clients.back());
    clients.pop_back();
  };
  for (;;) {
    std::int64_t now = monotonic_ms();
    pfds.clear();
    const bool accepting = now >= accept_paused_until;
    pfds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
    std::int64_t next_deadline = accepting ? -1 : accept_paused_until;
    for (const Client& c : clients) {
      pfds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
      const std::int64_t d = c.last_progress_ms + kClientIdleMs;
      if (next_deadline < 0 || d < next_deadline) next_deadline = d;
    }
    // No timeout while nobody is connected: no CPU while nobody asks.
    const int timeout = next_deadline < 0 ? -1 : static_cast<int>(std::max<std::int64_t>(0, next_deadline - now) + 1);
    const int r = ::poll(pfds.data(), pfds.size(), timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    now = monotonic_ms();

    // Serve the connections first (the listening socket may add to them).
    for (std::size_t k = clients.size(); k-- > 0;) {
      Client& c = clients[k];
      const short ev = pfds[k + 1].revents;
      bool keep = true;
      if (ev & (POLLIN | POLLOUT | POLLHUP | POLLERR)) {
        const bool was_writing = c.writing;
        const std::size_t in_before = c.in.size(), sent_before = c.sent;
        keep = c.writing ? on_writable(c) : on_readable(c);
        // Answered at once: try to send it now, without another poll.
        if (keep && !was_writing && c.writing) keep = on_writable(c);
        if (c.in.size() != in_before || c.sent != sent_before || c.writing != was_writing) c.last_progress_ms = now;
      }
      if (keep && now - c.last_progress_ms >= kClientIdleMs) keep = false;
      if (!keep) drop(k);
    }

    if (accepting && (pfds[0].revents & POLLIN)) {
      for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
            accept_paused_until = now + 100;  // do not spin on a full table
          }
          break;  // EAGAIN: all taken
        }
        if (clients.size() >= kMaxClients) {
          // Evict the client that has been silent longest while still
          // reading; if every slot is answering, refuse the newcomer.
          std::size_t victim = clients.size();
          for (std::size_t i = 0; i < clients.size(); ++i) {
            if (!clients[i].writing &&
                (victim == clients.size() || clients[i].last_progress_ms < clients[victim].last_progress_ms)) {
              victim = i;
            }
          }
          if (victim == clients.size()) {
            static const char kBusy[] = "error busy: too many introspection clients\n";
            (void)!::send(fd, kBusy, sizeof kBusy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            continue;
          }
          drop(victim);
        }
        clients.emplace_back();
        accept_client(clients.back(), fd, now);
        // A client that wrote its request before we accepted it is served
        // by the next poll() round, at once (its socket is readable).
      }
    }
  }
  for (const Client& c : clients) ::close(c.fd);
  g_serving.store(false, std::memory_order_release);
  g_thread_alive.store(0, std::memory_order_release);
}

}  // namespace

int introspect_server_threads() noexcept { return g_thread_alive.load(std::memory_order_acquire); }

void introspect_server_start() {
  // Called by run() only, and runs never overlap; the exchange just makes
  // a second call a no-op.
  if (g_started.exchange(true, std::memory_order_acq_rel)) return;
  static bool registered = [] {
    std::atexit(remove_socket_at_exit);
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    return true;
  }();
  (void)registered;

  const unsigned uid = ::geteuid();
  const std::string dir = goro::detail::introspect_dir(uid, std::getenv("XDG_RUNTIME_DIR"));
  if (!ensure_private_dir(dir)) return;
  remove_stale_sockets(dir);
  const std::string path = fmt::format("{}/{}.sock", dir, ::getpid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  // Non-blocking: the server accepts until EAGAIN, then polls again.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  ::unlink(path.c_str());  // a stale socket of an earlier process with our pid
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0600) != 0 ||
      ::listen(fd, 64) != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return;
  }
  g_path = path;
  g_owner_pid = ::getpid();
  g_listen_fd = fd;
  g_thread_alive.store(1, std::memory_order_release);
  try {
    std::thread(server_main, fd).detach();
  } catch (const std::system_error&) {
    g_thread_alive.store(0, std::memory_order_release);
    ::close(fd);
    ::unlink(path.c_str());
    return;
  }
  g_serving.store(true, std::memory_order_release);
}

}  // namespace goro::rt

namespace goro::detail {

bool introspect_serving() noexcept { return rt::g_serving.load(std::memory_order_acquire); }

std::string introspect_socket_path() { return introspect_serving() ? rt::g_path : std::string(); }

}  // namespace goro::detail

namespace goro::detail {

std::string introspect_answer(const std::string& request) { return rt::answer_request(request); }

}  // namespace goro::detail
