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

#include "goro/detail/introspect_wire.hpp"
#include "goro/introspect.hpp"
#include "goro/runtime.hpp"
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
  return "/tmp/goro-" + std::to_string(uid);
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
  add("/run/user/" + std::to_string(uid) + "/goro");
  add("/tmp/goro-" + std::to_string(uid));
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
    std::fprintf(stderr, "goro: %s is not a directory owned by uid %u; introspection (goro stat) is off\n",
                 dir.c_str(), static_cast<unsigned>(::geteuid()));
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
void write_frames(std::ostream& out, const std::vector<Frame>& stack) {
  for (const Frame& f : stack) {
    out << "\t" << std::hex << f.pc << std::dec << "\t" << f.line << "\t" << sanitize(f.file) << "\t"
        << sanitize(f.function) << "\n";
  }
}

std::string answer(const std::string& request) {
  std::ostringstream out;
  if (request == "info") {
    const SchedStats s = sched_stats();
    out << "pid " << ::getpid() << "\n"
        << "command " << command_line() << "\n"
        << "running " << (s.gomaxprocs > 0 ? 1 : 0) << "\n"
        << "goroutines " << s.goroutines << "\n"
        << "gomaxprocs " << s.gomaxprocs << "\n";
  } else if (request == "stats") {
    const SchedStats s = sched_stats();
    out << "pid " << ::getpid() << "\n"
        << "monotonic_ns " << now_ns() << "\n"
        << "running " << (s.gomaxprocs > 0 ? 1 : 0) << "\n"
        << "gomaxprocs " << s.gomaxprocs << "\n"
        << "idle_procs " << s.idle_procs << "\n"
        << "threads " << s.threads << "\n"
        << "spinning_threads " << s.spinning_threads << "\n"
        << "idle_threads " << s.idle_threads << "\n"
        << "global_runq " << s.global_runq << "\n"
        << "local_runq";
    for (const std::int64_t n : s.local_runq) out << " " << n;
    out << "\n"
        << "goroutines " << s.goroutines << "\n"
        << "created " << s.created << "\n"
        << "steals " << s.steals << "\n"
        << "context_switches " << s.context_switches << "\n"
        << "parks " << s.parks << "\n"
        << "handoffs " << s.handoffs << "\n"
        << "preempt_requests " << s.preempt_requests << "\n"
        << "hogs " << s.hogs << "\n"
        << "thread_blocks " << s.thread_blocks << "\n"
        << "blocking_calls " << s.blocking_calls << "\n"
        << "timers " << s.timers << "\n"
        << "stacks_in_use " << s.stacks_in_use << "\n"
        << "stack_bytes_reserved " << s.stack_bytes_reserved << "\n"
        << "guarded_stacks " << s.guarded_stacks << "\n"
        << "uptime_ms " << s.uptime_ms << "\n";
  } else if (request == "goroutines" || request == "stacks") {
    const bool stacks = request == "stacks";
    for (const GoroutineInfo& g : goroutines(stacks)) {
      out << g.id << "\t" << to_string(g.state) << "\t" << sanitize(g.wait_reason) << "\t" << g.waiting_for.count()
          << "\t" << sanitize(g.created_at) << "\t" << sanitize(g.created_by) << "\t" << g.parent_id << "\t"
          << sanitize(g.name);
      if (stacks) {
        out << "\t" << sanitize(g.submitted_at) << "\t" << sanitize(g.submitted_by) << "\t" << (g.stack_elided ? 1 : 0);
      }
      out << "\n";
      write_frames(out, g.stack);
    }
  } else if (request == "stack groups") {
    const std::vector<GoroutineInfo> all = goroutines();
    for (const StackGroup& group : group_goroutines(all)) {
      out << "G\t" << group.count << "\t" << sanitize(group.what) << "\t" << sanitize(group.created_at) << "\t"
          << (group.elided ? 1 : 0) << "\t";
      for (std::size_t i = 0; i < group.ids.size(); ++i) out << (i ? " " : "") << group.ids[i];
      out << "\n";
      write_frames(out, group.stack);
    }
  } else if (request == "dump") {
    dump_goroutines(out, false);
  } else if (request == "dump group") {
    dump_goroutines(out, true);
  } else if (request == "pprof") {
    write_goroutine_profile(out);
  } else {
    out << "error unknown request '" << sanitize(request) << "'\n";
  }
  return out.str();
}

void send_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client left or stalled past the timeout
    off += static_cast<std::size_t>(n);
  }
}

void serve_one(int fd) {
  // A client that connects and says nothing must not hold the server.
  const timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != ::geteuid() && cred.uid != 0)) {
    send_all(fd, "error permission denied: the process belongs to another user\n");
    return;
  }
  std::string request;
  char buf[128];
  while (request.find('\n') == std::string::npos && request.size() < 256) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buf, static_cast<std::size_t>(n));
  }
  const auto nl = request.find('\n');
  if (nl == std::string::npos) return;
  request.resize(nl);
  if (!request.empty() && request.back() == '\r') request.pop_back();
  send_all(fd, answer(request));
}

void server_main(int listen_fd) {
  // Signals belong to the program's threads and the Ms, not to us.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    pollfd pfd{listen_fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, -1);  // no timeout: no CPU while nobody asks
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
        ::usleep(100000);  // out of descriptors: try again later, do not spin
        continue;
      }
      break;
    }
    serve_one(fd);
    ::close(fd);
  }
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
  const std::string path = dir + "/" + std::to_string(::getpid()) + ".sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::unlink(path.c_str());  // a stale socket of an earlier process with our pid
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0600) != 0 ||
      ::listen(fd, 16) != 0) {
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
