// goro ps / stat / top / dump: looking inside a live goro process.
//
// Every goro process serves its scheduler statistics and goroutine dump on
// a Unix socket in a per-user directory (see goro/detail/introspect_wire.hpp
// for where and what travels). These commands find that socket from a pid,
// ask, and render: a table or JSON for stat, Go's dump text or JSON for
// dump, a full-screen view for top. Nothing here needs the target process's
// cooperation beyond linking goro.
#include <dirent.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "reply.hpp"
#include "goro/detail/introspect_wire.hpp"

namespace goro_cli {
namespace {

// Failure carries a message for the user; commands print it and exit 1.
struct Failure {
  std::string message;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string process_name(int pid) {
  std::string comm = read_file(fmt::format("/proc/{}/comm", pid));
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\0')) comm.pop_back();
  return comm.empty() ? "?" : comm;
}

std::string user_name(unsigned uid) {
  if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return fmt::format("uid {}", uid);
}

// environ_value reads one variable from /proc/<pid>/environ (readable by
// the process's owner and root).
std::optional<std::string> environ_value(int pid, const std::string& key) {
  const std::string env = read_file(fmt::format("/proc/{}/environ", pid));
  std::size_t start = 0;
  while (start < env.size()) {
    std::size_t end = env.find('\0', start);
    if (end == std::string::npos) end = env.size();
    const std::string entry = env.substr(start, end - start);
    if (entry.size() > key.size() && entry.compare(0, key.size(), key) == 0 && entry[key.size()] == '=') {
      return entry.substr(key.size() + 1);
    }
    start = end + 1;
  }
  return std::nullopt;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// socket_of finds the introspection socket of `pid`, or explains why not.
std::string socket_of(int pid) {
  struct stat st {};
  const std::string proc = fmt::format("/proc/{}", pid);
  if (pid <= 0 || ::stat(proc.c_str(), &st) != 0) throw Failure{fmt::format("no process with pid {}", pid)};
  const unsigned me = ::geteuid();
  if (st.st_uid != me && me != 0) {
    throw Failure{fmt::format("process {} ({}) belongs to {}; goro can only inspect your own processes (or run it as root)",
                              pid, process_name(pid), user_name(st.st_uid))};
  }
  std::vector<std::string> dirs;
  if (auto xdg = environ_value(pid, "XDG_RUNTIME_DIR")) {
    dirs = goro::detail::introspect_candidate_dirs(st.st_uid, xdg->c_str());
  } else {
    dirs = goro::detail::introspect_candidate_dirs(st.st_uid, st.st_uid == me ? std::getenv("XDG_RUNTIME_DIR")
                                                                              : nullptr);
  }
  for (const std::string& dir : dirs) {
    const std::string path = fmt::format("{}/{}.sock", dir, pid);
    if (is_socket(path)) return path;
  }
  throw Failure{fmt::format("process {} ({}) is not serving goro introspection: it does not use goro, has not "
                            "called goro::run() yet, or runs with GORODEBUG=introspect=0",
                            pid, process_name(pid))};
}

// ask sends one request and returns the whole answer, waiting at most
// `timeout_s` for each piece of it (dumps with stacks take longer: the
// process walks every goroutine's stack first).
std::string ask(const std::string& path, const std::string& request, int pid, int timeout_s = 5) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Failure{std::string("socket: ") + std::strerror(errno)};
  const timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Cut to fit, as the path's owner made sure it does (introspect_dir).
  *fmt::format_to_n(addr.sun_path, sizeof addr.sun_path - 1, "{}", path).out = '\0';
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EACCES || err == EPERM) {
      throw Failure{fmt::format("process {}: permission denied on {} (it belongs to another user)", pid, path)};
    }
    throw Failure{fmt::format("process {} does not answer on {}: {}{}", pid, path, std::strerror(err),
                              err == ECONNREFUSED ? " (a stale socket: the process has exited or restarted)" : "")};
  }
  const std::string line = request + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    ::close(fd);
    throw Failure{fmt::format("process {}: cannot send the request", pid)};
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw Failure{fmt::format("process {} did not answer within {} s", pid, timeout_s)};
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (out.rfind("error ", 0) == 0) {
    std::string msg = out.substr(6);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    throw Failure{fmt::format("process {}: {}", pid, msg)};
  }
  return out;
}

// parse_duration accepts Go's duration syntax for one unit ("500ms",
// "1s", "1.5s", "2m") and a bare number of seconds.
std::optional<std::chrono::nanoseconds> parse_duration(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v > 0) || !std::isfinite(v)) return std::nullopt;
  const std::string unit = end;
  double scale;
  if (unit.empty() || unit == "s") {
    scale = 1e9;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "us" || unit == "µs") {
    scale = 1e3;
  } else if (unit == "ns") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else {
    return std::nullopt;
  }
  const double ns = v * scale;
  if (ns < 1 || ns > 1e15) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

struct Options {
  int pid = 0;
  std::chrono::nanoseconds interval = std::chrono::seconds(1);
  long long count = -1;  // -1: until interrupted
  bool json = false;
  bool group = false;
};

// parse_options reads "<pid> [-i D] [-n N] [--json] [--group]"; `allowed`
// lists the flags the command takes.
Options parse_options(const std::string& cmd, const std::vector<std::string>& args, const std::string& allowed) {
  Options o;
  bool have_pid = false;
  auto usage = [&](const std::string& why) {
    return Failure{why + "\nusage: goro " + cmd + " <pid>" +
                   (allowed.find('i') != std::string::npos ? " [-i interval]" : "") +
                   (allowed.find('n') != std::string::npos ? " [-n count]" : "") +
                   (allowed.find('j') != std::string::npos ? " [--json]" : "") +
                   (allowed.find('g') != std::string::npos ? " [--group]" : "")};
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "-i" || a == "--interval") && allowed.find('i') != std::string::npos) {
      if (i + 1 >= args.size()) throw usage(a + " needs a duration");
      const auto d = parse_duration(args[++i]);
      if (!d) throw usage("bad interval '" + args[i] + "' (want e.g. 1s, 500ms)");
      o.interval = *d;
    } else if ((a == "-n" || a == "--count") && allowed.find('n') != std::string::npos) {
      if (i + 1 >= args.size()) throw usage(a + " needs a count");
      char* end = nullptr;
      o.count = std::strtoll(args[++i].c_str(), &end, 10);
      if (end == args[i].c_str() || *end != '\0' || o.count < 1) throw usage("bad count '" + args[i] + "'");
    } else if (a == "--json" && allowed.find('j') != std::string::npos) {
      o.json = true;
    } else if (a == "--group" && allowed.find('g') != std::string::npos) {
      o.group = true;
    } else if (!a.empty() && a[0] != '-' && !have_pid) {
      char* end = nullptr;
      const long pid = std::strtol(a.c_str(), &end, 10);
      if (end == a.c_str() || *end != '\0' || pid <= 0) throw usage("bad pid '" + a + "'");
      o.pid = static_cast<int>(pid);
      have_pid = true;
    } else {
      throw usage("unexpected argument '" + a + "'");
    }
  }
  if (!have_pid) throw usage("which process? (goro ps lists them)");
  return o;
}

// Sample is one stats answer with rates against the previous one.
struct Sample {
  Fields f;
  double steals_per_sec = 0;
  double switches_per_sec = 0;
};

Sample sample(const std::string& path, int pid, const Fields* prev) {
  Sample s;
  s.f = parse_fields(ask(path, "stats", pid));
  if (prev != nullptr) {
    const double dt = static_cast<double>(num(s.f, "monotonic_ns") - num(*prev, "monotonic_ns")) / 1e9;
    // A new run() restarts the counters: no rate across it.
    if (dt > 0 && num(s.f, "uptime_ms") >= num(*prev, "uptime_ms")) {
      s.steals_per_sec = std::max(0.0, static_cast<double>(num(s.f, "steals") - num(*prev, "steals")) / dt);
      s.switches_per_sec =
          std::max(0.0, static_cast<double>(num(s.f, "context_switches") - num(*prev, "context_switches")) / dt);
    }
  }
  return s;
}

const char* const kCounterFields[] = {"gomaxprocs",     "idle_procs",  "threads",          "spinning_threads",
                                      "idle_threads",   "global_runq", "spare_procs",      "spare_runq",
                                      "goroutines",     "created",
                                      "steals",         "context_switches", "parks",       "handoffs",
                                      "preempt_requests", "hogs",      "thread_blocks",    "blocking_calls",   "timers",
                                      "stacks_in_use",  "stack_bytes_reserved", "guarded_stacks", "uptime_ms"};

// one_decimal rounds a rate as the JSON has always shown it, to one
// decimal ("%.1f"): the nearest double to that decimal, which the JSON
// writer prints back as exactly that decimal.
double one_decimal(double v) {
  const std::string text = fmt::format("{:.1f}", v);
  double rounded = v;
  std::from_chars(text.data(), text.data() + text.size(), rounded);
  return rounded;
}

std::string stats_json(const Sample& s, long long time_ms) {
  nlohmann::ordered_json out = {{"pid", num(s.f, "pid")}, {"time_ms", time_ms}, {"running", num(s.f, "running") != 0}};
  for (const char* k : kCounterFields) out[k] = num(s.f, k);
  out["local_runq"] = nums(s.f, "local_runq");
  out["steals_per_sec"] = one_decimal(s.steals_per_sec);
  out["switches_per_sec"] = one_decimal(s.switches_per_sec);
  return json_text(out);
}

long long runnable(const Fields& f) {
  long long n = num(f, "global_runq") + num(f, "spare_runq");
  for (const long long x : nums(f, "local_runq")) n += x;
  return n;
}

std::string queues(const Fields& f) { return fmt::format("[{}]", fmt::join(nums(f, "local_runq"), " ")); }

void stat_header() {
  print_to(stdout, "{:>8} {:>11} {:>9} {:>7} {:<12} {:>7} {:>8} {:>6} {:>10} {:>11}\n", "TIME", "GOROUTINES",
           "RUNNABLE", "GLOBAL", "LOCAL", "THREADS", "SPINNING", "IDLE", "STEALS/S", "SWITCHES/S");
}

void stat_row(const Sample& s, double secs) {
  print_to(stdout, "{:7.1f}s {:11} {:9} {:7} {:<12} {:7} {:8} {:6} {:10.0f} {:11.0f}\n", secs, num(s.f, "goroutines"),
           runnable(s.f), num(s.f, "global_runq"), queues(s.f), num(s.f, "threads"), num(s.f, "spinning_threads"),
           num(s.f, "idle_threads"), s.steals_per_sec, s.switches_per_sec);
}

volatile sig_atomic_t g_interrupted = 0;

void on_interrupt(int) { g_interrupted = 1; }

// sleep_interval sleeps in small steps so Ctrl-C ends the wait promptly.
bool sleep_interval(std::chrono::nanoseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!g_interrupted) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(until - now, std::chrono::milliseconds(50)));
  }
  return false;
}

// process_exited: the process is gone, or has exited and waits to be
// reaped (a zombie still answers kill(pid, 0)).
bool process_exited(int pid) {
  const std::string stat = read_file(fmt::format("/proc/{}/stat", pid));
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  const char state = stat[paren + 2];
  return state == 'Z' || state == 'X';
}

// sample_unless_exited is the next sample, or nullopt once the process
// has exited: a watched process that ends is the normal end of stat and
// top, not an error. A failure while the process is still alive (after a
// moment for one that is exiting) is one.
template <class F>
auto unless_exited(int pid, F&& ask_it) -> std::optional<decltype(ask_it())> {
  try {
    return ask_it();
  } catch (const Failure&) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!process_exited(pid)) {
      if (std::chrono::steady_clock::now() > until) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }
}

std::optional<Sample> sample_unless_exited(const std::string& path, int pid, const Fields* prev) {
  return unless_exited(pid, [&] { return sample(path, pid, prev); });
}

// say_exited ends stat or top: status 0.
int say_exited(const char* cmd, int pid, bool to_stderr) {
  print_to(to_stderr ? stderr : stdout, "goro {}: process {} exited\n", cmd, pid);
  return 0;
}

int stat_main(const std::vector<std::string>& args) {
  const Options o = parse_options("stat", args, "inj");
  const std::string path = socket_of(o.pid);
  std::signal(SIGINT, on_interrupt);
  const auto start = std::chrono::steady_clock::now();
  const auto first = sample_unless_exited(path, o.pid, nullptr);
  if (!first) return say_exited("stat", o.pid, o.json);
  Fields prev = first->f;
  for (long long i = 0; o.count < 0 || i < o.count; ++i) {
    if (!sleep_interval(o.interval)) break;
    const auto next = sample_unless_exited(path, o.pid, &prev);
    if (!next) return say_exited("stat", o.pid, o.json);
    const Sample& s = *next;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.json) {
      print_to(stdout, "{}\n", stats_json(s, static_cast<long long>(secs * 1000)));
    } else {
      if (i % 20 == 0) stat_header();
      stat_row(s, secs);
    }
    std::fflush(stdout);
    prev = s.f;
  }
  return 0;
}

// kDumpTimeout: a dump walks every goroutine's stack first (a million
// goroutines take some seconds).
constexpr int kDumpTimeout = 120;

int dump_main(const std::vector<std::string>& args) {
  const Options o = parse_options("dump", args, "jg");
  const std::string path = socket_of(o.pid);
  if (!o.json) {
    std::fputs(ask(path, o.group ? "dump group" : "dump", o.pid, kDumpTimeout).c_str(), stdout);
    return 0;
  }
  nlohmann::ordered_json out = {{"pid", o.pid}};
  if (o.group) {
    long long total = 0;
    out["groups"] = groups_json(ask(path, "stack groups", o.pid, kDumpTimeout), &total);
    out["total"] = total;
  } else {
    out["goroutines"] = stacks_json(ask(path, "stacks", o.pid, kDumpTimeout));
  }
  print_to(stdout, "{}\n", json_text(out));
  return 0;
}

// pprof_main: goro pprof <pid> [-o FILE] writes the goroutine profile
// (pprof's format, gzipped) of a live process.
int pprof_main(const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  std::string file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-o" || args[i] == "--output") {
      if (i + 1 >= args.size()) throw Failure{"-o needs a file name\nusage: goro pprof <pid> [-o file]"};
      file = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  const Options o = parse_options("pprof", rest, "");
  const std::string profile = ask(socket_of(o.pid), "pprof", o.pid, kDumpTimeout);
  if (file.empty() || file == "-") {
    if (::isatty(STDOUT_FILENO)) {
      throw Failure{"the profile is binary: write it to a file with -o, or pipe it (go tool pprof reads it)"};
    }
    std::fwrite(profile.data(), 1, profile.size(), stdout);
    return 0;
  }
  std::ofstream out(file, std::ios::binary);
  out.write(profile.data(), static_cast<std::streamsize>(profile.size()));
  out.close();
  if (!out) throw Failure{"cannot write " + file + ": " + std::strerror(errno)};
  print_to(stderr, "goroutine profile of process {} written to {} (go tool pprof -top {})\n", o.pid, file, file);
  return 0;
}

// Keyboard reads top's keys. With a terminal on stdin (top in the
// foreground), the terminal leaves canonical mode and echo while top runs,
// so a key acts at once; from a pipe, keys arrive as written. The end of
// the input only stops the listening.
class Keyboard {
 public:
  Keyboard() {
    if (::isatty(0) && ::tcgetpgrp(0) == ::getpgrp() && ::tcgetattr(0, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      restore_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
    }
    listening_ = !::isatty(0) || restore_;  // not a background job's terminal
  }
  ~Keyboard() {
    if (restore_) ::tcsetattr(0, TCSANOW, &saved_);
  }
  Keyboard(const Keyboard&) = delete;
  Keyboard& operator=(const Keyboard&) = delete;

  // wait waits d, watching the keys: false when q or Ctrl-C asks to quit.
  bool wait(std::chrono::nanoseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!g_interrupted) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) return true;
      const auto slice = std::min<std::chrono::nanoseconds>(until - now, std::chrono::milliseconds(50));
      if (!listening_) {
        std::this_thread::sleep_for(slice);
        continue;
      }
      pollfd p{0, POLLIN, 0};
      const int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(slice).count()) + 1;
      if (::poll(&p, 1, ms) <= 0) continue;
      char c = 0;
      if (::read(0, &c, 1) != 1) {
        listening_ = false;  // end of input (or an error): keys are over
      } else if (c == 'q' || c == 'Q') {
        return false;
      }
    }
    return false;
  }

 private:
  termios saved_{};
  bool restore_ = false;
  bool listening_ = false;
};

std::string duration_text(std::chrono::nanoseconds d) {
  const long long ns = d.count();
  if (ns % 1'000'000'000 == 0) return fmt::format("{}s", ns / 1'000'000'000);
  if (ns % 1'000'000 == 0) return fmt::format("{}ms", ns / 1'000'000);
  return fmt::format("{:.3g}s", static_cast<double>(ns) / 1e9);
}

// TopGroups counts goroutines by what they wait for (their state when not
// waiting), and by that and their creation site.
struct TopGroups {
  std::map<std::string, long long> by_reason;
  std::map<std::pair<std::string, std::string>, long long> by_site;
  std::chrono::steady_clock::time_point at;
};

TopGroups top_groups(const std::vector<GoroutineRow>& rows) {
  TopGroups g;
  g.at = std::chrono::steady_clock::now();
  for (const GoroutineRow& r : rows) {
    const std::string what = r.wait_reason.empty() ? r.state : r.wait_reason;
    ++g.by_reason[what];
    ++g.by_site[{what, r.created_at.empty() || r.created_at == "goro::run" ? "goro::run(main)" : r.created_at}];
  }
  return g;
}

// growth_text: goroutines a second added to (or gone from) a group since
// the previous frame; a leak shows as a group that keeps growing.
template <class Key>
std::string growth_text(const std::map<Key, long long>& now, const std::map<Key, long long>& before, const Key& k,
                        double secs) {
  const auto it = before.find(k);
  const long long was = it == before.end() ? 0 : it->second;
  const double rate = secs > 0 ? static_cast<double>(now.at(k) - was) / secs : 0;
  if (std::fabs(rate) < 0.05) return "0";
  return fmt::format("{:+.1f}", rate);
}

int top_main(const std::vector<std::string>& args) {
  const Options o = parse_options("top", args, "in");
  const std::string path = socket_of(o.pid);
  const std::string name = process_name(o.pid);
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  Keyboard keys;
  const auto first = sample_unless_exited(path, o.pid, nullptr);
  const auto first_rows = unless_exited(o.pid, [&] { return parse_goroutines(ask(path, "goroutines", o.pid)); });
  if (!first || !first_rows) return say_exited("top", o.pid, false);
  Fields prev = first->f;
  TopGroups prev_groups = top_groups(*first_rows);
  for (long long i = 0; o.count < 0 || i < o.count; ++i) {
    if (!keys.wait(o.interval)) break;
    const auto next = sample_unless_exited(path, o.pid, &prev);
    const auto rows = unless_exited(o.pid, [&] { return parse_goroutines(ask(path, "goroutines", o.pid)); });
    if (!next || !rows) return say_exited("top", o.pid, false);
    const Sample& s = *next;
    const TopGroups groups = top_groups(*rows);
    const double secs = std::chrono::duration<double>(groups.at - prev_groups.at).count();
    std::vector<std::pair<long long, std::string>> reasons;
    for (const auto& [k, v] : groups.by_reason) reasons.emplace_back(v, k);
    std::sort(reasons.rbegin(), reasons.rend());
    std::vector<std::pair<long long, std::pair<std::string, std::string>>> sites;
    for (const auto& [k, v] : groups.by_site) sites.emplace_back(v, k);
    std::sort(sites.rbegin(), sites.rend());

    fmt::memory_buffer out;  // the frame, written in one piece
    const auto to = std::back_inserter(out);
    fmt::format_to(to, "\033[H\033[2J");  // home, clear screen
    fmt::format_to(to, "goro top - pid {} ({})  up {}s  {}\n\n", o.pid, name, num(s.f, "uptime_ms") / 1000,
                   num(s.f, "running") ? "" : "[no run() active]");
    fmt::format_to(to,
                   "goroutines {}  runnable {}  gomaxprocs {}  idle procs {}  threads {}  spinning {}  "
                   "idle threads {}\n",
                   num(s.f, "goroutines"), runnable(s.f), num(s.f, "gomaxprocs"), num(s.f, "idle_procs"),
                   num(s.f, "threads"), num(s.f, "spinning_threads"), num(s.f, "idle_threads"));
    fmt::format_to(to,
                   "switches/s {:.0f}  steals/s {:.0f}  created {}  handoffs {}  preempt requests {}  hogs {}  "
                   "thread blocks {}  timers {}\n",
                   s.switches_per_sec, s.steals_per_sec, num(s.f, "created"), num(s.f, "handoffs"),
                   num(s.f, "preempt_requests"), num(s.f, "hogs"), num(s.f, "thread_blocks"), num(s.f, "timers"));
    fmt::format_to(to, "run queues: global {}  per P {}", num(s.f, "global_runq"), queues(s.f));
    if (num(s.f, "spare_procs") > 0) {
      fmt::format_to(to, "  spare Ps {} (queued {})", num(s.f, "spare_procs"), num(s.f, "spare_runq"));
    }
    fmt::format_to(to, "\n\n");
    fmt::format_to(to, "  COUNT  GROWTH/S  STATE / WAIT REASON\n");
    for (std::size_t k = 0; k < reasons.size() && k < 10; ++k) {
      fmt::format_to(to, "{:7}  {:>8}  {}\n", reasons[k].first,
                     growth_text(groups.by_reason, prev_groups.by_reason, reasons[k].second, secs), reasons[k].second);
    }
    fmt::format_to(to, "\n  COUNT  GROWTH/S  STATE / WAIT REASON @ CREATED AT\n");
    for (std::size_t k = 0; k < sites.size() && k < 15; ++k) {
      fmt::format_to(to, "{:7}  {:>8}  {} @ {}\n", sites[k].first,
                     growth_text(groups.by_site, prev_groups.by_site, sites[k].second, secs), sites[k].second.first,
                     sites[k].second.second);
    }
    fmt::format_to(to, "\nq quits (or Ctrl-C); a frame every {}; GROWTH/S: goroutines a second since the last frame\n",
                   duration_text(o.interval));
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
    prev = s.f;
    prev_groups = groups;
  }
  return 0;
}

// ps_dirs lists the directories to scan: the caller's own, and as root
// every user's.
std::vector<std::string> ps_dirs() {
  std::vector<std::string> dirs = goro::detail::introspect_candidate_dirs(::geteuid(), std::getenv("XDG_RUNTIME_DIR"));
  if (::geteuid() != 0) return dirs;
  auto scan = [&](const std::string& parent, const std::string& prefix, const std::string& suffix) {
    DIR* d = ::opendir(parent.c_str());
    if (d == nullptr) return;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind(prefix, 0) != 0 || n == "." || n == "..") continue;
      const std::string dir = parent + "/" + n + suffix;
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
    }
    ::closedir(d);
  };
  scan("/tmp", "goro-", "");
  scan("/run/user", "", "/goro");
  return dirs;
}

int ps_main(const std::vector<std::string>& args) {
  const bool json = args.size() == 1 && args[0] == "--json";
  if (!args.empty() && !json) throw Failure{"usage: goro ps [--json]"};
  struct Row {
    int pid;
    Fields f;
  };
  std::vector<Row> rows;
  for (const std::string& dir : ps_dirs()) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      char* end = nullptr;
      const long pid = std::strtol(n.c_str(), &end, 10);
      if (pid <= 0 || std::strcmp(end, ".sock") != 0) continue;
      const std::string path = dir + "/" + n;
      if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        ::unlink(path.c_str());  // stale: its process died without cleaning up
        continue;
      }
      try {
        rows.push_back({static_cast<int>(pid), parse_fields(ask(path, "info", static_cast<int>(pid)))});
      } catch (const Failure&) {
        // Alive but not answering (or a recycled pid): not a goro process now.
      }
    }
    ::closedir(d);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.pid < b.pid; });
  auto command = [](const Row& r) { return r.f.count("command") ? r.f.at("command") : std::string("?"); };
  if (json) {
    for (const Row& r : rows) {
      const nlohmann::ordered_json line = {{"pid", r.pid},
                                           {"command", command(r)},
                                           {"running", num(r.f, "running") != 0},
                                           {"goroutines", num(r.f, "goroutines")},
                                           {"gomaxprocs", num(r.f, "gomaxprocs")}};
      print_to(stdout, "{}\n", json_text(line));
    }
    return 0;
  }
  print_to(stdout, "{:>8} {:>11} {:>5}  {}\n", "PID", "GOROUTINES", "PROCS", "COMMAND");
  for (const Row& r : rows) {
    print_to(stdout, "{:8} {:11} {:5}  {}{}\n", r.pid, num(r.f, "goroutines"), num(r.f, "gomaxprocs"), command(r),
             num(r.f, "running") ? "" : "  (between runs)");
  }
  return 0;
}

template <class F>
int guarded(const char* cmd, F&& f) {
  try {
    return f();
  } catch (const Failure& e) {
    print_to(stderr, "goro {}: {}\n", cmd, e.message);
    return e.message.find("usage:") != std::string::npos ? 2 : 1;
  }
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_go_duration(const std::string& s) { return parse_duration(s); }

int ps_command(const std::vector<std::string>& args) { return guarded("ps", [&] { return ps_main(args); }); }
int stat_command(const std::vector<std::string>& args) { return guarded("stat", [&] { return stat_main(args); }); }
int top_command(const std::vector<std::string>& args) { return guarded("top", [&] { return top_main(args); }); }
int dump_command(const std::vector<std::string>& args) { return guarded("dump", [&] { return dump_main(args); }); }
int pprof_command(const std::vector<std::string>& args) { return guarded("pprof", [&] { return pprof_main(args); }); }

}  // namespace goro_cli
