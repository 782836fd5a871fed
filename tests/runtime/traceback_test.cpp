// Where each goroutine stands: its stack in goroutines(), dumps, the
// deadlock report, a panic and the pprof profile. This binary is built
// -O2 -g without frame pointers, as user code usually is: the stacks come
// from the unwind tables and the debug information, not frame pointers.
//
// The functions the goroutines park in are outside any anonymous
// namespace (tb::...) so their names are predictable, and each records
// the line of its blocking call; a store after each call keeps the
// compiler from making it a tail call (which would remove the frame).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "goro/detail/introspect_wire.hpp"
#include "goro_test.hpp"

namespace tb {

std::atomic<int> g_sink{0};  // atomic: goroutines on several Ps write it

constexpr int kParkLine = __LINE__ + 3;
__attribute__((noinline)) void park_in_named_function(goro::Chan<int>& ch) {
  asm volatile("");
  g_sink = ch.recv().value_or(0);
  g_sink = g_sink + 1;
}

constexpr int kInlinedLine = __LINE__ + 2;
[[gnu::always_inline]] inline void inlined_receive(goro::Chan<int>& ch) {
  g_sink = ch.recv().value_or(0);
}

constexpr int kInlinedCallLine = __LINE__ + 3;
__attribute__((noinline)) void calls_inlined_receive(goro::Chan<int>& ch) {
  asm volatile("");
  inlined_receive(ch);
  g_sink = g_sink + 1;
}

constexpr int kBlockingLine = __LINE__ + 3;
__attribute__((noinline)) void reads_in_blocking(int fd) {
  char c = 0;
  const ssize_t n = goro::blocking([&] { return ::read(fd, &c, 1); });
  g_sink = static_cast<int>(n) + c;
}

constexpr int kYieldLine = __LINE__ + 4;
__attribute__((noinline)) void yields_until(std::atomic<bool>& stop, std::atomic<int>& rounds) {
  asm volatile("");
  while (!stop.load()) {
    goro::yield();
    rounds.fetch_add(1);
  }
}

__attribute__((noinline)) void spins_until(std::atomic<bool>& stop, std::atomic<bool>& spinning) {
  spinning.store(true);
  while (!stop.load(std::memory_order_relaxed)) {
  }
}

constexpr int kThrowLine = __LINE__ + 3;
__attribute__((noinline)) void throws_here(int x) {
  asm volatile("");
  if (x > 0) throw std::runtime_error("boom from throws_here");
  g_sink = x;
}

__attribute__((noinline)) void spawns_parker(goro::Chan<int> ch, std::atomic<std::uint64_t>& id) {
  goro::go([ch, &id]() mutable {
    id.store(goro::goroutine_id());
    park_in_named_function(ch);
    g_sink = g_sink + 1;  // not a tail call: the lambda keeps its frame
  });
  g_sink = g_sink + 1;
}

constexpr int kJobLine = __LINE__ + 3;
__attribute__((noinline)) int job_waits(goro::Chan<int> ch) {
  asm volatile("");
  const int v = ch.recv().value_or(0);
  return v + g_sink;
}

}  // namespace tb

namespace {

using goro_test::RuntimeTest;
using namespace std::chrono_literals;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// info_of polls goroutines() until goroutine `id` satisfies `pred`.
template <class Pred>
goro::GoroutineInfo wait_for_goroutine(std::uint64_t id, Pred pred) {
  goro::GoroutineInfo found;
  const bool ok = goro_test::wait_until([&] {
    for (const goro::GoroutineInfo& g : goro::goroutines()) {
      if (g.id == id && pred(g)) {
        found = g;
        return true;
      }
    }
    return false;
  });
  EXPECT_TRUE(ok) << "goroutine " << id << " never reached the expected state";
  return found;
}

bool parked(const goro::GoroutineInfo& g) { return g.state == goro::GoroutineState::waiting; }

// ask_socket sends one request to the introspection server and returns
// the whole answer.
std::string ask_socket(const std::string& path, const char* request) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  std::string out;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request, std::strlen(request), MSG_NOSIGNAL) > 0) {
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string describe(const goro::GoroutineInfo& g) {
  std::ostringstream out;
  goro::dump_goroutine(out, g);
  return out.str();
}

class TracebackTest : public RuntimeTest {};

TEST_P(TracebackTest, AParkedGoroutineShowsTheNamedFunctionAndTheLineOfTheCall) {
  run([] {
    goro::Chan<int> ch(0);
    std::atomic<std::uint64_t> id{0};
    goro::go([ch, &id]() mutable {
      id.store(goro::goroutine_id());
      tb::park_in_named_function(ch);
      tb::g_sink = tb::g_sink + 1;  // not a tail call: the lambda keeps its frame
    });
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    const goro::GoroutineInfo g = wait_for_goroutine(id.load(), parked);
    ASSERT_FALSE(g.stack.empty()) << describe(g);
    EXPECT_EQ(g.wait_reason, "chan receive");
    const goro::Frame& top = g.stack[0];
    EXPECT_EQ(top.function, "tb::park_in_named_function(goro::Chan<int>&)") << describe(g);
    EXPECT_TRUE(ends_with(top.file, "traceback_test.cpp")) << top.file;
    EXPECT_EQ(top.line, tb::kParkLine) << describe(g);
    EXPECT_NE(top.pc, 0u);
    // The goroutine's own function (a lambda of this test) is next, and no
    // frame of goro's own shows.
    ASSERT_GE(g.stack.size(), 2u) << describe(g);
    EXPECT_NE(g.stack[1].function.find("{lambda#1}"), std::string::npos) << describe(g);
    for (const goro::Frame& f : g.stack) {
      EXPECT_NE(f.function.rfind("goro::", 0), 0u) << "an internal frame is shown:\n" << describe(g);
    }
    ch.send(1);
  });
}

TEST_P(TracebackTest, AnInlinedCallIsAFrameOfItsOwnFollowedByItsCaller) {
  run([] {
    goro::Chan<int> ch(0);
    std::atomic<std::uint64_t> id{0};
    goro::go([ch, &id]() mutable {
      id.store(goro::goroutine_id());
      tb::calls_inlined_receive(ch);
    });
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    const goro::GoroutineInfo g = wait_for_goroutine(id.load(), parked);
    ASSERT_GE(g.stack.size(), 2u) << describe(g);
    EXPECT_EQ(g.stack[0].function, "tb::inlined_receive(goro::Chan<int>&)") << describe(g);
    EXPECT_EQ(g.stack[0].line, tb::kInlinedLine) << describe(g);
    EXPECT_EQ(g.stack[1].function, "tb::calls_inlined_receive(goro::Chan<int>&)") << describe(g);
    EXPECT_EQ(g.stack[1].line, tb::kInlinedCallLine) << describe(g);
    EXPECT_EQ(g.stack[0].pc, g.stack[1].pc) << "an inlined frame shares its caller's address";
    ch.send(1);
  });
}

TEST_P(TracebackTest, AGoroutineInsideBlockingShowsTheBlockingCall) {
  run([] {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::atomic<std::uint64_t> id{0};
    goro::Chan<goro::Unit> done(1);
    goro::go([&, done]() mutable {
      id.store(goro::goroutine_id());
      tb::reads_in_blocking(fds[0]);
      done.send({});
    });
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    const goro::GoroutineInfo g = wait_for_goroutine(
        id.load(), [](const goro::GoroutineInfo& x) { return x.state == goro::GoroutineState::blocking; });
    ASSERT_FALSE(g.stack.empty()) << describe(g);
    EXPECT_EQ(g.stack[0].function, "tb::reads_in_blocking(int)") << describe(g);
    EXPECT_EQ(g.stack[0].line, tb::kBlockingLine) << describe(g);
    ASSERT_EQ(::write(fds[1], "x", 1), 1);
    done.recv();
    ::close(fds[0]);
    ::close(fds[1]);
  });
}

TEST_P(TracebackTest, TheCallerSeesItsOwnStack) {
  run([] {
    for (const goro::GoroutineInfo& g : goro::goroutines()) {
      if (g.id != goro::goroutine_id()) continue;
      EXPECT_EQ(g.state, goro::GoroutineState::running);
      ASSERT_FALSE(g.stack.empty());
      EXPECT_TRUE(std::any_of(g.stack.begin(), g.stack.end(),
                              [](const goro::Frame& f) { return ends_with(f.file, "traceback_test.cpp"); }))
          << describe(g);
    }
  });
}

TEST_P(TracebackTest, CreatedByNamesTheFunctionThatCalledGo) {
  run([] {
    goro::Chan<int> ch(0);
    std::atomic<std::uint64_t> id{0};
    tb::spawns_parker(ch, id);
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    const goro::GoroutineInfo g = wait_for_goroutine(id.load(), parked);
    EXPECT_EQ(g.created_by, "tb::spawns_parker(goro::Chan<int>, std::atomic<unsigned long>&)") << describe(g);
    EXPECT_EQ(g.parent_id, 1u);
    // A closure is named as Go names closures: the enclosing function and
    // the closure's number, no call operator, no parameter lists.
    ASSERT_GE(g.stack.size(), 2u) << describe(g);
    EXPECT_EQ(g.stack[1].function, "tb::spawns_parker::{lambda#1}")
        << describe(g);
    ch.send(1);
  });
}

// The dump's layout is Go's: the function, then a tab, file:line and the
// offset from the function's entry; "created by" last.
TEST_P(TracebackTest, TheDumpPrintsEachFrameAsGoDoes) {
  run([] {
    goro::Chan<int> ch(0);
    std::atomic<std::uint64_t> id{0};
    tb::spawns_parker(ch, id);
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    wait_for_goroutine(id.load(), parked);
    std::ostringstream out;
    goro::dump_goroutines(out);
    const std::string dump = out.str();
    const std::string header = "goroutine " + std::to_string(id.load()) + " [chan receive]:\n";
    const std::size_t at = dump.find(header);
    ASSERT_NE(at, std::string::npos) << dump;
    const std::string entry = dump.substr(at, dump.find("\n\n", at) - at);
    const std::string frame = "tb::park_in_named_function(goro::Chan<int>&)\n\t";
    ASSERT_EQ(entry.find(frame), header.size()) << entry;
    const std::string rest = entry.substr(header.size() + frame.size());
    const std::string line = rest.substr(0, rest.find('\n'));
    EXPECT_TRUE(line.find("traceback_test.cpp:" + std::to_string(tb::kParkLine) + " +0x") != std::string::npos)
        << entry;
    EXPECT_NE(entry.find("\ncreated by tb::spawns_parker(goro::Chan<int>, std::atomic<unsigned long>&) in goroutine 1\n\t"),
              std::string::npos)
        << entry;
    ch.send(1);
  });
}

// Taking a dump hands the caller's P to another thread meanwhile (as
// blocking() does), so the yielding goroutine may be caught running; each
// time it is caught waiting for its turn, its stack shows the yield.
TEST_P(TracebackTest, AYieldedGoroutineWaitingForItsTurnShowsWhereItYielded) {
  if (procs() != 1) GTEST_SKIP() << "needs the one P busy with main";
  run([] {
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0};
    std::atomic<std::uint64_t> id{0};
    goro::WaitGroup done;  // the goroutine uses this frame's atomics
    done.add(1);
    goro::go([&] {
      id.store(goro::goroutine_id());
      tb::yields_until(stop, rounds);
      done.done();
    });
    ASSERT_TRUE(goro_test::wait_until([&] { return rounds.load() > 0; }));
    int seen_runnable = 0;
    for (int attempt = 0; attempt < 50 && seen_runnable == 0; ++attempt) {
      for (const goro::GoroutineInfo& g : goro::goroutines()) {
        if (g.id != id.load() || g.state != goro::GoroutineState::runnable) continue;
        ++seen_runnable;
        ASSERT_FALSE(g.stack.empty()) << describe(g);
        EXPECT_EQ(g.stack[0].function, "tb::yields_until(std::atomic<bool>&, std::atomic<int>&)") << describe(g);
        EXPECT_EQ(g.stack[0].line, tb::kYieldLine) << describe(g);
      }
    }
    EXPECT_GT(seen_runnable, 0);
    stop.store(true);
    done.wait();
  });
}

// Spawned goroutines wait in the run queue until the one P is free; a
// dump taken meanwhile finds them runnable with no stack yet. (Taking the
// dump hands the P to another thread, as blocking() does, so some may run
// during the walk: each is reported either way, consistently.)
TEST_P(TracebackTest, AGoroutineThatNeverRanHasNoStack) {
  if (procs() != 1) GTEST_SKIP() << "needs the one P busy with main";
  run([] {
    goro::Chan<int> ch(0);
    int never_ran = 0;
    for (int attempt = 0; attempt < 20 && never_ran == 0; ++attempt) {
      for (int i = 0; i < 1000; ++i) goro::go([ch]() mutable { tb::park_in_named_function(ch); });
      for (const goro::GoroutineInfo& g : goro::goroutines()) {
        if (g.id == goro::goroutine_id()) continue;
        if (g.state == goro::GoroutineState::runnable && g.stack.empty()) {
          ++never_ran;
        } else if (g.state == goro::GoroutineState::runnable) {
          // It ran and was preempted (sysmon, a loaded machine) on its way
          // to the receive: runnable with the stack it stopped at.
          EXPECT_FALSE(g.stack.empty()) << describe(g);
        } else if (g.state == goro::GoroutineState::running) {
          EXPECT_TRUE(g.stack.empty()) << describe(g);
        } else {
          EXPECT_EQ(g.state, goro::GoroutineState::waiting) << describe(g);
          EXPECT_FALSE(g.stack.empty()) << describe(g);
        }
      }
    }
    EXPECT_GT(never_ran, 0);
    ch.close();
  });
}

TEST_P(TracebackTest, AGoroutineRunningOnAnotherThreadHasNoStackAndTheDumpSaysSo) {
  if (procs() < 2) GTEST_SKIP() << "needs a second P";
  run([] {
    std::atomic<bool> stop{false};
    std::atomic<bool> spinning{false};
    std::atomic<std::uint64_t> id{0};
    goro::WaitGroup done;  // the goroutine uses this frame's atomics
    done.add(1);
    goro::go([&] {
      id.store(goro::goroutine_id());
      tb::spins_until(stop, spinning);
      done.done();
    });
    ASSERT_TRUE(goro_test::wait_until([&] { return spinning.load(); }));
    goro::GoroutineInfo g;
    for (const goro::GoroutineInfo& x : goro::goroutines()) {
      if (x.id == id.load()) g = x;
    }
    EXPECT_EQ(g.state, goro::GoroutineState::running);
    EXPECT_TRUE(g.stack.empty());
    EXPECT_NE(describe(g).find("\n\tgoroutine running on other thread; stack unavailable\n"), std::string::npos)
        << describe(g);
    stop.store(true);
    done.wait();
  });
}

TEST_P(TracebackTest, GroupedDumpCountsGoroutinesStandingAtTheSameStack) {
  run([] {
    goro::Chan<int> ch(0);
    constexpr int kParked = 100;
    for (int i = 0; i < kParked; ++i) goro::go([ch]() mutable { tb::park_in_named_function(ch); });
    ASSERT_TRUE(goro_test::wait_for_waiters("chan receive", kParked));
    std::ostringstream out;
    goro::dump_goroutines(out, true);
    const std::string dump = out.str();
    const std::size_t at = dump.find("\n100 @ chan receive, created at ");
    ASSERT_NE(at, std::string::npos) << dump;
    const std::size_t stack_at = dump.find('\n', at + 1) + 1;
    EXPECT_EQ(dump.compare(stack_at, 46, "tb::park_in_named_function(goro::Chan<int>&)\n\t"), 0) << dump;
    EXPECT_NE(dump.find("traceback_test.cpp:" + std::to_string(tb::kParkLine) + "\n", stack_at), std::string::npos)
        << dump;
    ch.close();
  });
}

// GOROTRACEBACK=system keeps goro's own frames, as GOTRACEBACK=system does
// with the runtime's.
TEST(TracebackSystemTest, GorotracebackSystemKeepsTheRuntimesFrames) {
  ASSERT_EQ(::setenv("GOROTRACEBACK", "system", 1), 0);
  goro::run([] {
    goro::Chan<int> ch(0);
    std::atomic<std::uint64_t> id{0};
    tb::spawns_parker(ch, id);
    ASSERT_TRUE(goro_test::wait_until([&] { return id.load() != 0; }));
    const goro::GoroutineInfo g = wait_for_goroutine(id.load(), parked);
    EXPECT_TRUE(std::any_of(g.stack.begin(), g.stack.end(),
                            [](const goro::Frame& f) { return f.function.rfind("goro::", 0) == 0; }))
        << describe(g);
    ch.send(1);
  });
  ::unsetenv("GOROTRACEBACK");
}

// What a run left alive is described with its stacks (as leak reports
// show them): where each leftover was parked when main returned.
TEST(TracebackLeftoversTest, LastRunLeftoversCarryTheirStacks) {
  goro::run([] {
    goro::Chan<int> never(0);
    goro::go([never]() mutable {
      tb::park_in_named_function(never);
      tb::g_sink = tb::g_sink + 1;
    });
    goro_test::wait_for_waiters("chan receive", 1);
  });
  const std::vector<goro::GoroutineInfo> left = goro::last_run_leftovers();
  ASSERT_EQ(left.size(), 1u);
  ASSERT_FALSE(left[0].stack.empty()) << describe(left[0]);
  EXPECT_EQ(left[0].stack[0].function, "tb::park_in_named_function(goro::Chan<int>&)") << describe(left[0]);
  EXPECT_EQ(left[0].stack[0].line, tb::kParkLine);
}

// Dumps from a plain thread (as the introspection server and SIGQUIT take
// them) while goroutines keep parking, waking, yielding and entering
// blocking(): a walk must never race a goroutine that runs again.
TEST_P(TracebackTest, DumpsWhileGoroutinesKeepParkingAndWakingNeverCrash) {
  run([this] {
    std::atomic<bool> stop{false};
    goro::WaitGroup wg;
    const int pairs = 4 * procs();
    for (int i = 0; i < pairs; ++i) {
      goro::Chan<int> ping(0), pong(0);
      wg.add(2);
      goro::go([&, ping, pong]() mutable {
        for (int n = 0; !stop.load(std::memory_order_relaxed); ++n) {
          ping.send(n);
          pong.recv();
        }
        ping.close();
        wg.done();
      });
      goro::go([&, ping, pong]() mutable {
        while (auto v = ping.recv()) pong.send(*v);
        wg.done();
      });
    }
    goro::Mutex mu;
    for (int i = 0; i < 4; ++i) {
      wg.add(1);
      goro::go([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          std::lock_guard<goro::Mutex> l(mu);
          goro::yield();
        }
        wg.done();
      });
    }
    wg.add(1);
    goro::go([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        goro::blocking([] { std::this_thread::sleep_for(50us); });
        goro::select(goro::on_recv(goro::after(20us), [](auto) {}));
      }
      wg.done();
    });
    // The walkers: a plain thread, and the introspection server's thread
    // answering requests on its socket (as goro dump and goro pprof ask).
    std::atomic<int> walked{0};
    std::thread asker([&] {
      const std::string path = goro::detail::introspect_socket_path();
      if (path.empty()) return;  // GORODEBUG=introspect=0
      const int rounds = static_cast<int>(goro_test::scaled(30));
      const char* requests[] = {"dump\n", "stacks\n", "stack groups\n", "pprof\n"};
      for (int r = 0; r < rounds; ++r) {
        const std::string answer = ask_socket(path, requests[r % 4]);
        EXPECT_FALSE(answer.empty()) << requests[r % 4];
        EXPECT_NE(answer.rfind("error", 0), 0u) << answer;
        walked.fetch_add(1);
      }
    });
    std::thread walker([&] {
      const int rounds = static_cast<int>(goro_test::scaled(200));
      for (int r = 0; r < rounds; ++r) {
        std::ostringstream out;
        goro::dump_goroutines(out, r % 2 == 1);
        for (const goro::GoroutineInfo& g : goro::goroutines()) {
          if (g.state == goro::GoroutineState::waiting && g.stack.empty()) {
            ADD_FAILURE() << "a parked goroutine without a stack:\n" << describe(g);
          }
        }
        walked.fetch_add(1);
      }
    });
    // And goroutine 1 dumps too, competing with the thread.
    for (int r = 0; r < 20; ++r) {
      std::ostringstream out;
      goro::dump_goroutines(out);
    }
    walker.join();
    asker.join();
    stop.store(true);
    wg.wait();
    EXPECT_GT(walked.load(), 0);
  });
}

TEST_P(TracebackTest, TheProfileIsReadByGosPprof) {
  if (std::system("go version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no Go toolchain (Debian's golang-go)";
  run([] {
    goro::Chan<int> ch(0);
    constexpr int kParked = 25;
    for (int i = 0; i < kParked; ++i) goro::go([ch]() mutable { tb::park_in_named_function(ch); });
    ASSERT_TRUE(goro_test::wait_for_waiters("chan receive", kParked));
    char path[] = "/tmp/goro-pprof-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
      std::ofstream out(path, std::ios::binary);
      goro::write_goroutine_profile(out);
    }
    // -raw lists the samples with their values and locations; -top sums
    // them per function. Both must see the 25 goroutines in our function.
    const std::string cmd = std::string("go tool pprof -raw ") + path + " 2>&1";
    std::string raw;
    goro::blocking([&] {
      if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) raw.append(buf, n);
        ::pclose(p);
      }
    });
    EXPECT_NE(raw.find("PeriodType: goroutine count"), std::string::npos) << raw;
    EXPECT_NE(raw.find("tb::park_in_named_function(goro::Chan<int>&)"), std::string::npos) << raw;
    EXPECT_NE(raw.find("traceback_test.cpp:" + std::to_string(tb::kParkLine)), std::string::npos) << raw;
    EXPECT_NE(raw.find("wait_reason:[chan receive]"), std::string::npos) << raw;
    EXPECT_NE(raw.find("\n         25: "), std::string::npos) << raw;
    std::string top;
    const std::string top_cmd = std::string("go tool pprof -top -nodecount=200 ") + path + " 2>&1";
    goro::blocking([&] {
      if (FILE* p = ::popen(top_cmd.c_str(), "r")) {
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) top.append(buf, n);
        ::pclose(p);
      }
    });
    EXPECT_NE(top.find("tb::park_in_named_function"), std::string::npos) << top;
    ::unlink(path);
    ch.close();
  });
}

// A worker-pool goroutine running a job shows the job's frames and where
// the job was submitted, not only the pool's start_worker.
TEST_P(TracebackTest, APoolJobShowsItsFramesAndWhereItWasSubmitted) {
  run([] {
    goro::WorkerPool pool(1);
    goro::Chan<int> ch(0);
    const int submit_line = __LINE__ + 1;
    goro::Future<int> result = pool.submit([ch] { return tb::job_waits(ch) + 1; });
    const std::string site = "traceback_test.cpp:" + std::to_string(submit_line);
    goro::GoroutineInfo worker;
    ASSERT_TRUE(goro_test::wait_until([&] {
      for (const goro::GoroutineInfo& g : goro::goroutines()) {
        if (g.state == goro::GoroutineState::waiting && ends_with(g.submitted_at, site)) {
          worker = g;
          return true;
        }
      }
      return false;
    }));
    ASSERT_FALSE(worker.stack.empty()) << describe(worker);
    EXPECT_EQ(worker.stack[0].function, "tb::job_waits(goro::Chan<int>)") << describe(worker);
    EXPECT_EQ(worker.stack[0].line, tb::kJobLine) << describe(worker);
    EXPECT_NE(worker.submitted_by.find("TestBody"), std::string::npos) << describe(worker);
    const std::string text = describe(worker);
    EXPECT_NE(text.find("\njob submitted by " + worker.submitted_by + "\n\t"), std::string::npos) << text;
    ch.send(41);
    EXPECT_EQ(result.get(), 42);
    pool.shutdown();
  });
}

GORO_INSTANTIATE_PROCS(TracebackTest);

class TracebackDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// A panic is reported with the stack of the throw, not only where the
// goroutine was created: the C++ runtime finds no handler on a goroutine's
// stack and terminates before unwinding anything.
TEST_F(TracebackDeathTest, APanicShowsWhereItWasThrown) {
  EXPECT_DEATH(goro::run([] {
                 goro::go([] { tb::throws_here(1); });
                 goro::Chan<int> never(0);
                 never.recv();
               }),
               "panic: boom from throws_here\n\ngoroutine [0-9]+ \\[running\\]:\ntb::throws_here\\(int\\)\n\t[^\n]*"
               "traceback_test.cpp:" +
                   std::to_string(tb::kThrowLine) + " \\+0x");
}

TEST_F(TracebackDeathTest, TheDeadlockReportCarriesEveryStack) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "the detector stays silent under sanitizers (their threads)";
  EXPECT_DEATH(goro::run([] {
                 goro::Chan<int> ch(0);
                 tb::park_in_named_function(ch);
               }),
               "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 \\[chan receive\\]:\n"
               "tb::park_in_named_function\\(goro::Chan<int>&\\)\n\t[^\n]*traceback_test.cpp:" +
                   std::to_string(tb::kParkLine));
}

}  // namespace
