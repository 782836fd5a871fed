// The `goro` CLI against real processes: a goro child (introspect_child)
// inspected with ps, stat, top and dump, in text and JSON; and the errors a
// user meets: a dead pid, a process without goro, introspection turned off,
// another user's process, a stale socket.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "goro/detail/introspect_wire.hpp"

extern char** environ;

namespace {

const std::string kGoro = GORO_CLI_PATH;
const std::string kChild = GORO_CHILD_PATH;
const std::string kChildSource = GORO_CHILD_SOURCE;

// marked_line is the line of the child's source that carries `mark`.
int marked_line(const std::string& mark) {
  std::ifstream in(kChildSource);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find(mark) != std::string::npos) return n;
  }
  return -1;
}

// parked_line is the line of the go() call marked PARKED_LINE in the child.
int parked_line() { return marked_line("// PARKED_LINE"); }

// blocked_line is where those goroutines wait (park_forever's receive).
int blocked_line() { return marked_line("// BLOCKED_LINE"); }

struct Result {
  int status = -1;  // exit status
  std::string out;  // stdout and stderr
};

Result sh(const std::string& cmd) {
  Result r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// Child runs a program with a pipe on its stdin (closing it ends the child)
// and one on its stdout.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {}) {
    int in[2], out[2];
    // Close-on-exec: another Child must not inherit these ends (holding a
    // child's stdin open would keep it from ever seeing the end of input).
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "GORODEBUG=", 10) != 0) env_store.emplace_back(*e);
    }
    for (const auto& e : extra_env) env_store.push_back(e);
    std::vector<char*> env;
    for (auto& e : env_store) env.push_back(e.data());
    env.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), env.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = ::fdopen(out[0], "r");
  }
  ~Child() { stop(); }

  // wait_ready reads the child's "ready <pid>" line.
  bool wait_ready() {
    char line[128];
    return stdout_ != nullptr && std::fgets(line, sizeof line, stdout_) != nullptr &&
           std::strncmp(line, "ready ", 6) == 0;
  }
  int pid() const { return pid_; }
  // write_stdin sends text to the child's stdin, leaving it open.
  bool write_stdin(const std::string& text) {
    return stdin_ >= 0 && ::write(stdin_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  }
  // read_until reads the child's stdout until a line contains `needle`
  // (true) or the output ends (false); what it read goes to *seen.
  bool read_until(const std::string& needle, std::string* seen) {
    char line[4096];
    while (stdout_ != nullptr && std::fgets(line, sizeof line, stdout_) != nullptr) {
      *seen += line;
      if (std::strstr(line, needle.c_str()) != nullptr) return true;
    }
    return false;
  }
  // exited_within waits up to `timeout` for the child to exit by itself
  // (its stdin left open); its wait status, or -1 if it is still running.
  int exited_within(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return st;
      }
      if (std::chrono::steady_clock::now() > until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  void kill() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  int stop() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
    if (stdout_ != nullptr) std::fclose(stdout_);
    stdout_ = nullptr;
    int st = 0;
    if (pid_ > 0) {
      ::waitpid(pid_, &st, 0);
      pid_ = -1;
    }
    return st;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::FILE* stdout_ = nullptr;
};

std::string pid_str(int pid) { return std::to_string(pid); }

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    child_ = std::make_unique<Child>(std::vector<std::string>{kChild});
    ASSERT_GT(child_->pid(), 0);
    ASSERT_TRUE(child_->wait_ready());
  }
  std::unique_ptr<Child> child_;
};

TEST_F(CliTest, PsListsTheProcessWithItsGoroutinesAndProcs) {
  const Result r = sh(kGoro + " ps");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("GOROUTINES"), std::string::npos) << r.out;
  // 100 parked + 3 sleepers + reader + selector + main = 106.
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n +" + pid_str(child_->pid()) + " +106 +[0-9]+  .*introspect_child")))
      << r.out;
  const Result j = sh(kGoro + " ps --json");
  ASSERT_EQ(j.status, 0) << j.out;
  EXPECT_NE(j.out.find("{\"pid\":" + pid_str(child_->pid()) + ",\"command\":"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"goroutines\":106"), std::string::npos) << j.out;
}

TEST_F(CliTest, StatPrintsOneRowPerIntervalWithTheGoroutineCount) {
  const Result r = sh(kGoro + " stat " + pid_str(child_->pid()) + " -i 50ms -n 3");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(count_lines(r.out), 4) << r.out;  // header + 3 rows
  EXPECT_NE(r.out.find("GOROUTINES"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SWITCHES/S"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("s +106 +[0-9]+ +[0-9]+ +\\[[0-9 ]+\\]"))) << r.out;
}

TEST_F(CliTest, StatJsonIsOneObjectPerSampleWithSchedStatsFieldNames) {
  const Result r = sh(kGoro + " stat " + pid_str(child_->pid()) + " -i 20ms -n 2 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  ASSERT_EQ(count_lines(r.out), 2) << r.out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    EXPECT_EQ(line.front(), '{') << line;
    EXPECT_EQ(line.back(), '}') << line;
    for (const char* field : {"\"pid\":", "\"gomaxprocs\":", "\"idle_procs\":", "\"threads\":",
                              "\"spinning_threads\":", "\"idle_threads\":", "\"global_runq\":", "\"local_runq\":[",
                              "\"goroutines\":106", "\"created\":", "\"steals\":", "\"context_switches\":",
                              "\"steals_per_sec\":", "\"switches_per_sec\":"}) {
      EXPECT_NE(line.find(field), std::string::npos) << field << " missing in " << line;
    }
  }
}

TEST_F(CliTest, DumpPrintsEveryGoroutineAsGoDoes) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("goroutine 1 [", 0), 0u) << r.out.substr(0, 200);
  const std::regex header("(^|\\n)goroutine [0-9]+ \\[");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), header), std::sregex_iterator()), 106);
  EXPECT_NE(r.out.find("[chan receive]"), std::string::npos);
  EXPECT_NE(r.out.find("[sleep]:\nname: sleeper"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("introspect_child.cpp:" + std::to_string(parked_line())), std::string::npos);
}

TEST_F(CliTest, DumpGroupCountsIdenticalGoroutines) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()) + " --group");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("goroutine profile: total 106"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("100 @ chan receive, created at " + kChildSource + ":" + std::to_string(parked_line())),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("3 @ sleep, created at "), std::string::npos) << r.out;
}

TEST_F(CliTest, DumpJsonUsesGoroutineInfoFieldNames) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("{\"pid\":" + pid_str(child_->pid()) + ",\"goroutines\":[{\"id\":1,", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"wait_reason\":\"chan receive\""), std::string::npos);
  EXPECT_NE(r.out.find("\"name\":\"sleeper\""), std::string::npos);
  EXPECT_NE(r.out.find("\"created_at\":\"" + kChildSource + ":" + std::to_string(parked_line()) + "\""),
            std::string::npos);
  for (const char* f : {"\"state\":", "\"waiting_for_ns\":", "\"created_by\":", "\"parent_id\":"}) {
    EXPECT_NE(r.out.find(f), std::string::npos) << f;
  }
}

TEST_F(CliTest, DumpShowsWhereEachGoroutineWaits) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()));
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string frame = "[chan receive]:\npark_forever(goro::Chan<int>)\n\t" + kChildSource + ":" +
                            std::to_string(blocked_line()) + " +0x";
  EXPECT_NE(r.out.find(frame), std::string::npos) << r.out.substr(0, 2000);
}

TEST_F(CliTest, DumpJsonCarriesEachFrameAsAnObject) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()) + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json doc = nlohmann::json::parse(r.out);
  int parked = 0;
  for (const auto& g : doc.at("goroutines")) {
    if (g.at("created_at") != kChildSource + ":" + std::to_string(parked_line()) || g.at("stack").empty()) continue;
    const auto& top = g.at("stack").at(0);
    EXPECT_EQ(top.at("function"), "park_forever(goro::Chan<int>)") << g.dump();
    EXPECT_EQ(top.at("file"), kChildSource);
    EXPECT_EQ(top.at("line"), blocked_line());
    EXPECT_GT(top.at("pc").get<unsigned long long>(), 0u);
    ++parked;
  }
  EXPECT_GT(parked, 0) << r.out.substr(0, 2000);
}

TEST_F(CliTest, DumpGroupJsonGroupsByStack) {
  const Result r = sh(kGoro + " dump " + pid_str(child_->pid()) + " --group --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc.at("total"), 106) << r.out;
  bool found = false;
  for (const auto& group : doc.at("groups")) {
    if (group.at("wait_reason_or_state") != "chan receive" || group.at("stack").empty() ||
        group.at("stack").at(0).at("function") != "park_forever(goro::Chan<int>)") {
      continue;
    }
    found = true;
    EXPECT_EQ(group.at("ids").size(), group.at("count").get<std::size_t>());
  }
  EXPECT_TRUE(found) << r.out.substr(0, 2000);
}

TEST_F(CliTest, PprofWritesAProfileGoToolPprofReads) {
  char path[] = "/tmp/goro-cli-pprof-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  const Result r = sh(kGoro + " pprof " + pid_str(child_->pid()) + " -o " + path);
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream in(path, std::ios::binary);
  const std::string head((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(head.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(head[0]), 0x1f) << "not gzip";
  EXPECT_EQ(static_cast<unsigned char>(head[1]), 0x8b) << "not gzip";
  // An independent reader: protoc decodes the raw protobuf.
  if (sh("command -v protoc").status == 0) {
    const Result raw = sh(std::string("gzip -dc ") + path + " | protoc --decode_raw");
    EXPECT_EQ(raw.status, 0) << raw.out;
    EXPECT_NE(raw.out.find("park_forever(goro::Chan<int>)"), std::string::npos) << raw.out.substr(0, 2000);
  }
  if (sh("go version").status == 0) {
    const Result top = sh(std::string("go tool pprof -top ") + path);
    EXPECT_EQ(top.status, 0) << top.out;
    EXPECT_NE(top.out.find("park_forever"), std::string::npos) << top.out;
  }
  ::unlink(path);
}

TEST_F(CliTest, TopShowsTheSummaryByWaitReason) {
  const Result r = sh(kGoro + " top " + pid_str(child_->pid()) + " -n 1 -i 20ms");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\033[H\033[2J"), std::string::npos);
  EXPECT_NE(r.out.find("goroutines 106"), std::string::npos) << r.out;
  // main waits on a channel too: 101 in all, 100 of them from one site;
  // none of the groups grows (GROWTH/S 0).
  EXPECT_NE(r.out.find("  COUNT  GROWTH/S  STATE / WAIT REASON\n"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n +101 +0  chan receive\\n"))) << r.out;
  EXPECT_NE(r.out.find("    100         0  chan receive @ " + kChildSource + ":" + std::to_string(parked_line()) + "\n"),
            std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n +3 +0  sleep\\n"))) << r.out;
  EXPECT_NE(r.out.find("\nq quits (or Ctrl-C)"), std::string::npos) << r.out;
}

TEST_F(CliTest, TopQuitsOnQ) {
  Child top({kGoro, "top", pid_str(child_->pid()), "-i", "50ms"});
  ASSERT_GT(top.pid(), 0);
  std::string seen;
  ASSERT_TRUE(top.read_until("q quits", &seen)) << seen;  // a first frame
  ASSERT_TRUE(top.write_stdin("x"));                       // other keys do nothing
  ASSERT_TRUE(top.write_stdin("q"));
  const int st = top.exited_within(std::chrono::seconds(30));
  if (st == -1) top.kill();
  EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << "top did not quit on q: " << st;
}

TEST(CliTop, AGrowingGroupShowsItsGrowth) {
  // The child, with "leak", keeps adding goroutines parked at LEAK_LINE.
  Child leaky({kChild, "leak"});
  ASSERT_TRUE(leaky.wait_ready());
  const Result r = sh(kGoro + " top " + pid_str(leaky.pid()) + " -n 3 -i 200ms");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n +[0-9]+ +\\+[0-9.]+  chan receive @ [^\\n]*introspect_child.cpp:" +
                                                  std::to_string(marked_line("// LEAK_LINE")) + "\\n")))
      << r.out;
}

TEST_F(CliTest, StatOfAProcessThatExitsSaysSoAndExitsZero) {
  const int pid = child_->pid();
  Child stat({kGoro, "stat", pid_str(pid), "-i", "50ms"});
  ASSERT_GT(stat.pid(), 0);
  std::string seen;
  ASSERT_TRUE(stat.read_until("SWITCHES/S", &seen)) << seen;
  const int child_status = child_->stop();  // the inspected process exits normally
  EXPECT_TRUE(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0) << child_status;
  EXPECT_TRUE(stat.read_until("goro stat: process ", &seen)) << seen;
  EXPECT_NE(seen.find("goro stat: process " + pid_str(pid) + " exited\n"), std::string::npos) << seen;
  const int st = stat.exited_within(std::chrono::seconds(30));
  if (st == -1) stat.kill();
  EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << ": " << seen;
}

TEST_F(CliTest, TheChildExitsNormallyAfterBeingInspected) {
  ASSERT_EQ(sh(kGoro + " dump " + pid_str(child_->pid())).status, 0);
  const int st = child_->stop();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
}

// --- The server serves clients concurrently --------------------------------

// connect_raw opens a connection to pid's introspection socket and says
// nothing (-1 on failure).
int connect_raw(int pid) {
  const std::string path = goro::detail::introspect_dir(::geteuid(), std::getenv("XDG_RUNTIME_DIR")) + "/" +
                           pid_str(pid) + ".sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// still_open: the server has not closed fd (nothing to read, no hang-up).
bool still_open(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// read_all reads until the server closes (or 30 s pass).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 30'000) <= 0) return out + "<timeout>";
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// timed_dump runs `goro dump` and reports how long it took. The limit the
// tests use is generous (a loaded, sanitized CI machine): a server that
// serves one client at a time takes 2 s per silent client before it.
Result timed_dump(int pid, double* seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  Result r = sh(kGoro + " dump " + pid_str(pid));
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}
constexpr double kAnswerLimitS = 10;

TEST_F(CliTest, DumpAnswersWhileFiftySilentClientsHoldConnections) {
  std::vector<int> silent;
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_raw(child_->pid());
    ASSERT_GE(fd, 0) << std::strerror(errno);
    silent.push_back(fd);
  }
  double took = 0;
  const Result r = timed_dump(child_->pid(), &took);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("goroutine 1 [", 0), 0u) << r.out.substr(0, 200);
  EXPECT_LT(took, kAnswerLimitS) << "goro dump waited behind the silent clients";
  // They were served alongside, not thrown out to make room.
  int open = 0;
  for (const int fd : silent) open += still_open(fd) ? 1 : 0;
  EXPECT_EQ(open, 50);
  for (const int fd : silent) ::close(fd);
}

TEST_F(CliTest, AClientSendingGarbageWithoutANewlineHoldsNobody) {
  const int garbage = connect_raw(child_->pid());
  ASSERT_GE(garbage, 0);
  ASSERT_EQ(::send(garbage, "dum", 3, MSG_NOSIGNAL), 3);
  double took = 0;
  const Result r = timed_dump(child_->pid(), &took);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_LT(took, kAnswerLimitS);
  // The half-sent request is still pending; finishing it gets an answer.
  EXPECT_TRUE(still_open(garbage));
  ASSERT_EQ(::send(garbage, "p\n", 2, MSG_NOSIGNAL), 2);
  EXPECT_EQ(read_all(garbage).rfind("goroutine 1 [", 0), 0u);
  ::close(garbage);
}

TEST_F(CliTest, ARequestLineTooLongIsAnErrorNotAWait) {
  const int fd = connect_raw(child_->pid());
  ASSERT_GE(fd, 0);
  const std::string junk(goro::detail::kIntrospectMaxRequest + 1, 'x');  // no newline
  ASSERT_EQ(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(junk.size()));
  EXPECT_EQ(read_all(fd).rfind("error request too long", 0), 0u);
  ::close(fd);
  const int fd2 = connect_raw(child_->pid());
  ASSERT_GE(fd2, 0);
  ASSERT_EQ(::send(fd2, "nonsense\n", 9, MSG_NOSIGNAL), 9);
  EXPECT_EQ(read_all(fd2), "error unknown request 'nonsense'\n");
  ::close(fd2);
}

TEST_F(CliTest, MoreSilentClientsThanTheCapStillLetADumpThrough) {
  std::vector<int> silent;
  for (int i = 0; i < 200; ++i) {  // the server keeps at most 128
    const int fd = connect_raw(child_->pid());
    if (fd < 0) break;  // the backlog is full: the server is evicting
    silent.push_back(fd);
  }
  EXPECT_GT(silent.size(), 128u);
  double took = 0;
  const Result r = timed_dump(child_->pid(), &took);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_LT(took, kAnswerLimitS);
  for (const int fd : silent) ::close(fd);
}

TEST(CliErrors, ADeadPidIsAClearError) {
  Child gone({"/bin/true"});
  const int pid = gone.pid();
  gone.stop();
  const Result r = sh(kGoro + " stat " + pid_str(pid) + " -n 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("goro stat: no process with pid " + pid_str(pid)), std::string::npos) << r.out;
}

TEST(CliErrors, AProcessWithoutGoroIsAClearError) {
  Child plain({"/bin/cat"});
  ASSERT_GT(plain.pid(), 0);
  const Result r = sh(kGoro + " dump " + pid_str(plain.pid()));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("is not serving goro introspection"), std::string::npos) << r.out;
}

TEST(CliErrors, GorodebugIntrospectZeroTurnsTheServerOff) {
  Child child({kChild}, {"GORODEBUG=introspect=0"});
  ASSERT_TRUE(child.wait_ready());
  const Result r = sh(kGoro + " stat " + pid_str(child.pid()) + " -n 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("GORODEBUG=introspect=0"), std::string::npos) << r.out;
  const std::string listed = sh(kGoro + " ps").out;
  std::string needle = " ";
  needle += pid_str(child.pid());
  needle += " ";
  EXPECT_EQ(listed.find(needle), std::string::npos) << listed;
}

TEST(CliHelp, EverySubcommandAnswersHelp) {
  for (const std::string cmd : {"demo", "bench", "ps", "stat", "top", "dump"}) {
    for (const std::string flag : {"--help", "-h"}) {
      const Result r = sh(kGoro + " " + cmd + " " + flag);
      EXPECT_EQ(r.status, 0) << cmd << " " << flag << ": " << r.out;
      EXPECT_EQ(r.out.rfind("usage: goro " + cmd, 0), 0u) << cmd << " " << flag << ": " << r.out;
    }
    const Result h = sh(kGoro + " help " + cmd);
    EXPECT_EQ(h.status, 0) << h.out;
    EXPECT_EQ(h.out.rfind("usage: goro " + cmd, 0), 0u) << h.out;
  }
  const Result all = sh(kGoro + " --help");
  EXPECT_EQ(all.status, 0) << all.out;
  EXPECT_NE(all.out.find("--hold"), std::string::npos) << all.out;
  EXPECT_NE(sh(kGoro + " bench --help").out.find("workloads: spawn_join"), std::string::npos);
}

TEST(CliHelp, NoTextPointsOutsideTheRepository) {
  for (const std::string cmd : {"--help", "demo --help", "bench --help", "ps --help", "stat --help", "top --help",
                                "dump --help", "bench"}) {
    const Result r = sh(kGoro + " " + cmd);
    EXPECT_EQ(r.out.find("../"), std::string::npos) << cmd << ": " << r.out;
  }
}

TEST(CliDemo, HoldKeepsTheGoroutinesParkedUntilEnter) {
  Child demo({kGoro, "demo", "-n", "1000", "--hold"});
  ASSERT_GT(demo.pid(), 0);
  std::string seen;
  ASSERT_TRUE(demo.read_until("until you press Enter (--hold)", &seen)) << seen;
  EXPECT_NE(seen.find("stat " + pid_str(demo.pid())), std::string::npos) << "the hint names the pid: " << seen;
  // Held: the thousand goroutines, main and the watcher are all there.
  const Result r = sh(kGoro + " stat " + pid_str(demo.pid()) + " -n 1 -i 10ms --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"goroutines\":1002,"), std::string::npos) << r.out;
  ASSERT_TRUE(demo.write_stdin("\n"));
  EXPECT_TRUE(demo.read_until("goro demo: OK: all 1000 goroutines exited", &seen)) << seen;
  const int st = demo.exited_within(std::chrono::seconds(60));
  if (st == -1) demo.kill();
  EXPECT_TRUE(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) << st << ": " << seen;
}

TEST(CliDemo, WithoutHoldTheHintSaysHowToHold) {
  Child demo({kGoro, "demo", "-n", "100"});
  std::string seen;
  EXPECT_TRUE(demo.read_until("add --hold 60s", &seen)) << seen;
  demo.kill();
  const Result timed = sh(kGoro + " demo -n 100 --hold 10ms");
  ASSERT_EQ(timed.status, 0) << timed.out;
  EXPECT_NE(timed.out.find("holding them parked for 10ms (--hold)"), std::string::npos) << timed.out;
  EXPECT_EQ(sh(kGoro + " demo --hold soon").status, 2);
}

TEST(CliErrors, BadArgumentsPrintUsage) {
  for (const std::string args : {"stat", "stat abc", "stat 1 -i 0s", "stat 1 -n 0", "dump 1 --bogus", "top 1 -i x"}) {
    const Result r = sh(kGoro + " " + args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find("usage: goro "), std::string::npos) << args << ": " << r.out;
  }
}

TEST(CliErrors, AnotherUsersProcessIsRefused) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs root and setpriv";
  // The goro binary must be reachable by nobody (the build tree may sit
  // under a private home directory).
  const Result probe = sh("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " + kGoro + " help");
  if (probe.status != 0) GTEST_SKIP() << "nobody cannot run " << kGoro << ": " << probe.out;
  Child child({kChild});
  ASSERT_TRUE(child.wait_ready());
  const Result r = sh("/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups " + kGoro + " stat " +
                      pid_str(child.pid()) + " -n 1");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("belongs to root"), std::string::npos) << r.out;
}

TEST(CliErrors, StaleSocketsOfDeadProcessesAreRemoved) {
  Child gone({"/bin/true"});
  const int pid = gone.pid();
  gone.stop();
  const std::string dir = goro::detail::introspect_dir(::geteuid(), std::getenv("XDG_RUNTIME_DIR"));
  ::mkdir(dir.c_str(), 0700);
  const std::string path = dir + "/" + pid_str(pid) + ".sock";
  // A socket left behind by a process that died without cleaning up.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ::close(fd);
  ASSERT_EQ(::access(path.c_str(), F_OK), 0);
  const Result r = sh(kGoro + " ps");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << " still there";
}

TEST(CliErrors, TheSocketDirectoryAndSocketArePrivate) {
  Child child({kChild});
  ASSERT_TRUE(child.wait_ready());
  const std::string dir = goro::detail::introspect_dir(::geteuid(), std::getenv("XDG_RUNTIME_DIR"));
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir + "/" + pid_str(child.pid()) + ".sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  child.stop();
  EXPECT_NE(::access((dir + "/" + pid_str(child.pid()) + ".sock").c_str(), F_OK), 0)
      << "the socket outlived its process";
}

}  // namespace
