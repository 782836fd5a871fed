// Tests of goro::testing::LeakCheck and LeakListener (<goro/testing.hpp>).
//
// Each leak test leaks on purpose, catches the failure the check adds (with
// gtest-spi's interceptors, which keep it from failing this test), and then
// compares it with what goro::dump_goroutines says about the leaked
// goroutine: id, Go wait reason and the file:line of its go() call. The
// no-leak tests simply let the check run: a wrong report fails them.
#include <gtest/gtest-spi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "goro/testing.hpp"
#include "goro_test.hpp"

namespace {

using goro::Chan;
using goro::testing::LeakCheck;
using goro_test::RuntimeTest;
using goro_test::wait_until;
using namespace std::chrono_literals;

// kLeakGrace is the grace of checks that are meant to fail: short, so a
// leak test costs milliseconds, not the default second.
constexpr std::chrono::milliseconds kLeakGrace = 20ms;

// status_of is what a dump says inside the brackets for goroutine id
// ("chan receive", "runnable", ...), or "gone".
std::string status_of(std::uint64_t id) {
  for (const goro::GoroutineInfo& g : goro::goroutines()) {
    if (g.id != id) continue;
    return g.state == goro::GoroutineState::waiting ? g.wait_reason : goro::to_string(g.state);
  }
  return "gone";
}

// dump_of is goroutine id's entry in goro::dump_goroutines(), newline included.
std::string dump_of(std::uint64_t id) {
  std::ostringstream out;
  goro::dump_goroutines(out);
  const std::string all = out.str();
  const std::size_t begin = all.find("goroutine " + std::to_string(id) + " [");
  if (begin == std::string::npos) return "";
  const std::size_t end = all.find("\n\n", begin);
  return all.substr(begin, end == std::string::npos ? std::string::npos : end - begin + 1);
}

// Leaked is a goroutine leaked on purpose: blocked receiving from a channel
// nobody sends on, until release().
struct Leaked {
  std::uint64_t id = 0;
  int line = 0;       // of its go() call
  std::string entry;  // its dump_goroutines() entry once parked
};

// leaked_receiver waits until goroutine id, started by the go() call at
// `line` (callers write __LINE__ + 1 and the call on the next line), is
// parked receiving, and describes it.
Leaked leaked_receiver(int line, std::uint64_t id) {
  Leaked l;
  l.id = id;
  l.line = line;
  EXPECT_TRUE(wait_until([&] { return status_of(id) == "chan receive"; })) << "goroutine " << id << " never parked";
  l.entry = dump_of(id);
  return l;
}

// expect_describes checks that a dump entry names the wait reason and this
// file's line: the failure below must then contain it verbatim.
void expect_describes(const Leaked& l) {
  EXPECT_NE(l.entry.find("goroutine " + std::to_string(l.id) + " [chan receive]:\n"), std::string::npos) << l.entry;
  EXPECT_NE(l.entry.find("leak_check_test.cpp:" + std::to_string(l.line) + "\n"), std::string::npos) << l.entry;
}

// failures_of runs f and returns the failures it added on any thread,
// without failing the calling test.
template <class F>
std::vector<std::string> failures_of(F&& f) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &results);
    f();
  }
  std::vector<std::string> out;
  for (int i = 0; i < results.size(); ++i) out.emplace_back(results.GetTestPartResult(i).message());
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class LeakCheckTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(LeakCheckTest);

TEST_P(LeakCheckTest, ReportsAGoroutineBlockedOnAChannel) {
  run([] {
    Chan<int> never(0);
    Chan<std::uint64_t> ids(1);
    auto check = std::make_unique<LeakCheck>(kLeakGrace);
    const int line = __LINE__ + 1;
    goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
    const Leaked l = leaked_receiver(line, *ids.recv());
    expect_describes(l);
    // Exactly one failure, holding the dump entry: id, wait reason, file:line.
    EXPECT_NONFATAL_FAILURE_ON_ALL_THREADS(check.reset(), l.entry);
    never.close();  // release it: the fixture checks that nothing is left
  });
}

// The failure points at the check's declaration, not at testing.hpp, and
// the report says where the leaked goroutine is blocked: its stack.
TEST_P(LeakCheckTest, TheFailureIsReportedWhereTheCheckWasDeclaredWithTheStack) {
  run([] {
    Chan<int> never(0);
    Chan<std::uint64_t> ids(1);
    // Not make_unique: the location is captured where the constructor's
    // default argument is evaluated, which would be inside make_unique.
    const int check_line = __LINE__ + 1;
    std::unique_ptr<LeakCheck> check(new LeakCheck(kLeakGrace));
    goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
    const std::uint64_t id = *ids.recv();
    ASSERT_TRUE(wait_until([&] { return status_of(id) == "chan receive"; }));
    ::testing::TestPartResultArray results;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(
          ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &results);
      check.reset();
    }
    ASSERT_EQ(results.size(), 1);
    const ::testing::TestPartResult& r = results.GetTestPartResult(0);
    ASSERT_NE(r.file_name(), nullptr);
    EXPECT_TRUE(contains(r.file_name(), "leak_check_test.cpp")) << r.file_name();
    EXPECT_EQ(r.line_number(), check_line);
    // The goroutine's entry carries frames between its header and "created by".
    const std::string message = r.message();
    const std::size_t header = message.find("goroutine " + std::to_string(id) + " [chan receive]:\n");
    ASSERT_NE(header, std::string::npos) << message;
    const std::size_t created = message.find("created by ", header);
    ASSERT_NE(created, std::string::npos) << message;
    const std::string frames = message.substr(header, created - header);
    EXPECT_NE(frames.find("\n\t"), std::string::npos) << "no stack in the report:\n" << message;
    never.close();
  });
}

TEST_P(LeakCheckTest, ReportsEveryLeakedGoroutineAndNotTheOthers) {
  run([] {
    Chan<int> never(0);
    Chan<std::uint64_t> ids(3);
    goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });  // before: not a leak
    const std::uint64_t old_id = *ids.recv();
    std::vector<std::string> failures;
    std::vector<Leaked> leaked;
    {
      auto check = std::make_unique<LeakCheck>(kLeakGrace);
      goro::go([] {});  // finishes: not a leak
      for (int i = 0; i < 2; ++i) {
        const int line = __LINE__ + 1;
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        leaked.push_back(leaked_receiver(line, *ids.recv()));
      }
      failures = failures_of([&] { check.reset(); });
    }
    ASSERT_EQ(failures.size(), 1u);
    EXPECT_TRUE(contains(failures[0], "2 leaked goroutines")) << failures[0];
    for (const Leaked& l : leaked) EXPECT_TRUE(contains(failures[0], l.entry)) << failures[0];
    EXPECT_FALSE(contains(failures[0], "goroutine " + std::to_string(old_id) + " [")) << failures[0];
    EXPECT_FALSE(contains(failures[0], "goroutine 1 [")) << "the checking goroutine counted:\n" << failures[0];
    never.close();
  });
}

TEST_P(LeakCheckTest, WaitsForGoroutinesThatFinishWithinTheGracePeriod) {
  run([] {
    const auto start = std::chrono::steady_clock::now();
    {
      LeakCheck check(1s);
      goro::go([] { goro::sleep_for(50ms); });
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 50ms) << "the check did not wait for the sleeping goroutine";
    EXPECT_LT(waited, 900ms) << "the check kept waiting after the goroutine ended";
    EXPECT_EQ(goro::num_goroutine(), 1);
  });
}

TEST_P(LeakCheckTest, GoroutinesAliveAtConstructionAreNotLeaks) {
  run([] {
    Chan<int> never(0);
    goro::WaitGroup started;
    started.add(2);
    goro::go([never, &started] { started.done(); (void)never.recv(); });
    goro::go([&started] { started.done(); goro::sleep_for(10ms); });
    started.wait();
    {
      LeakCheck check(kLeakGrace);
      goro::WaitGroup wg;
      wg.add(1);
      goro::go([&wg] { wg.done(); });
      wg.wait();
    }
    never.close();
  });
}

TEST_P(LeakCheckTest, TheGoroutineRunningTheCheckDoesNotCount) {
  run([] {
    auto check = std::make_unique<LeakCheck>(kLeakGrace);
    Chan<int> done(0);
    // Started after the snapshot, yet it runs the check: not a leak.
    goro::go([&check, done] {
      check.reset();
      done.close();
    });
    (void)done.recv();
  });
}

TEST_P(LeakCheckTest, WorksFromAPlainThread) {
  run([] {
    Chan<int> never(0);
    std::vector<std::string> clean;
    std::vector<std::string> leaky;
    Leaked l;
    goro::blocking([&] {
      std::thread([&] {
        clean = failures_of([] {
          LeakCheck check(1s);
          goro::go([] { goro::sleep_for(20ms); });  // go() from a plain thread during run()
        });
        auto check = std::make_unique<LeakCheck>(kLeakGrace);
        Chan<std::uint64_t> ids(1);
        const int line = __LINE__ + 1;
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        l = leaked_receiver(line, *ids.recv());
        leaky = failures_of([&] { check.reset(); });
      }).join();
    });
    EXPECT_TRUE(clean.empty()) << clean.front();
    expect_describes(l);
    ASSERT_EQ(leaky.size(), 1u);
    EXPECT_TRUE(contains(leaky[0], l.entry)) << leaky[0];
    never.close();
  });
}

TEST_P(LeakCheckTest, IsSilentWhenItsScopeUnwinds) {
  run([] {
    Chan<int> never(0);
    const std::vector<std::string> failures = failures_of([&] {
      try {
        LeakCheck check(kLeakGrace);
        goro::go([never] { (void)never.recv(); });
        throw std::runtime_error("the scope fails");
      } catch (const std::runtime_error&) {
      }
    });
    EXPECT_TRUE(failures.empty()) << failures.front();
    never.close();
  });
}

// Outside run(): the check sees what the runs inside its scope left alive.

TEST_P(LeakCheckTest, ReportsWhatARunLeftAliveWhenMadeOutsideRun) {
  auto check = std::make_unique<LeakCheck>(kLeakGrace);
  Leaked l;
  goro::run(
      [&] {
        Chan<int> never(0);
        Chan<std::uint64_t> ids(1);
        const int line = __LINE__ + 1;
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        l = leaked_receiver(line, *ids.recv());
      },
      goro::Options{.procs = procs()});
  ASSERT_EQ(goro::last_run_unwound(), 1);
  expect_describes(l);
  // The run is over, so the report is the one recorded when main returned,
  // wait reason included; the check runs on this thread.
  EXPECT_NONFATAL_FAILURE(check.reset(), l.entry);
}

TEST_P(LeakCheckTest, IsSilentAboutACleanRun) {
  LeakCheck check(kLeakGrace);
  goro::run(
      [] {
        goro::WaitGroup wg;
        for (int i = 0; i < 10; ++i) {
          wg.add(1);
          goro::go([&wg] { wg.done(); });
        }
        wg.wait();
        wait_until([] { return goro::num_goroutine() == 1; });
      },
      goro::Options{.procs = procs()});
  ASSERT_EQ(goro::last_run_unwound(), 0);
}

TEST_P(LeakCheckTest, ReportsTheLeftoversOfEveryRunNotJustTheLast) {
  auto check = std::make_unique<LeakCheck>(kLeakGrace);
  std::vector<Leaked> leaked;
  for (int i = 0; i < 2; ++i) {
    goro::run(
        [&] {
          Chan<int> never(0);
          Chan<std::uint64_t> ids(1);
          const int line = __LINE__ + 1;
          goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
          leaked.push_back(leaked_receiver(line, *ids.recv()));
        },
        goro::Options{.procs = procs()});
  }
  goro::run([] {}, goro::Options{.procs = procs()});  // the last run is clean
  const std::vector<std::string> failures = failures_of([&] { check.reset(); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(contains(failures[0], "2 leaked goroutines")) << failures[0];
  for (const Leaked& l : leaked) EXPECT_TRUE(contains(failures[0], l.entry)) << failures[0];
}

TEST_P(LeakCheckTest, GoroutinesInTheSnapshotAreNotLeaksEvenIfTheRunLeftThem) {
  std::unique_ptr<LeakCheck> check;
  std::uint64_t old_id = 0;
  Leaked l;
  goro::run(
      [&] {
        Chan<int> never(0);
        Chan<std::uint64_t> ids(1);
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        old_id = *ids.recv();
        check = std::make_unique<LeakCheck>(kLeakGrace);  // made inside the run, destroyed after it
        const int line = __LINE__ + 1;
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        l = leaked_receiver(line, *ids.recv());
      },
      goro::Options{.procs = procs()});
  ASSERT_EQ(goro::last_run_unwound(), 2);
  const std::vector<std::string> failures = failures_of([&] { check.reset(); });
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_TRUE(contains(failures[0], "1 leaked goroutine\n")) << failures[0];
  EXPECT_TRUE(contains(failures[0], l.entry)) << failures[0];
  EXPECT_FALSE(contains(failures[0], "goroutine " + std::to_string(old_id) + " [")) << failures[0];
}

TEST_P(LeakCheckTest, AGoroutineUnwoundWithACheckOnItsStackDoesNotHoldUpTeardown) {
  const auto start = std::chrono::steady_clock::now();
  goro::run(
      [] {
        Chan<int> never(0);
        Chan<int> checking(1);
        goro::go([never, checking] {
          LeakCheck check(10s);  // never finishes normally: run() unwinds it
          goro::go([never] { (void)never.recv(); });
          checking.send(1);
          (void)never.recv();
        });
        (void)checking.recv();
      },
      goro::Options{.procs = procs()});
  EXPECT_EQ(goro::last_run_unwound(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_P(LeakCheckTest, CountsWhatItDoesNotListAndWhatTheRuntimeForgot) {
  // The runtime remembers the newest 1000 leftovers; the report lists 100
  // in full and counts the rest by wait reason and creation site.
  constexpr int kLeaks = 1005;
  auto check = std::make_unique<LeakCheck>(kLeakGrace);
  int line = 0;
  goro::run(
      [&] {
        Chan<int> never(0);
        goro::WaitGroup started;
        started.add(kLeaks);
        for (int i = 0; i < kLeaks; ++i) {
          line = __LINE__ + 1;
          goro::go([never, &started] { started.done(); (void)never.recv(); });
        }
        started.wait();
        wait_until([&] {
          for (const goro::GoroutineInfo& g : goro::goroutines()) {
            if (g.id != 1 && g.wait_reason != "chan receive") return false;
          }
          return true;
        });
      },
      goro::Options{.procs = procs()});
  const std::vector<std::string> failures = failures_of([&] { check.reset(); });
  ASSERT_EQ(failures.size(), 1u);
  const std::string& report = failures[0];
  EXPECT_TRUE(contains(report, "1005 leaked goroutines")) << report.substr(0, 500);
  EXPECT_TRUE(contains(report, "\n900 more @ chan receive, created at ")) << report.substr(report.size() - 500);
  EXPECT_TRUE(contains(report, "leak_check_test.cpp:" + std::to_string(line) + "\n")) << report.substr(0, 500);
  EXPECT_TRUE(contains(report, "\n5 more, no longer remembered by the runtime\n")) << report.substr(report.size() - 500);
}

// The listener, called by hand (leak_listener_test.cpp runs it under
// GoogleTest's own event loop).

TEST_P(LeakCheckTest, ListenerFailsATestThatLeaks) {
  const ::testing::TestInfo& test = *::testing::UnitTest::GetInstance()->current_test_info();
  goro::testing::LeakListener listener(kLeakGrace);
  listener.OnTestStart(test);
  Leaked l;
  goro::run(
      [&] {
        Chan<int> never(0);
        Chan<std::uint64_t> ids(1);
        const int line = __LINE__ + 1;
        goro::go([never, ids] { ids.send(goro::goroutine_id()); (void)never.recv(); });
        l = leaked_receiver(line, *ids.recv());
      },
      goro::Options{.procs = procs()});
  expect_describes(l);
  EXPECT_NONFATAL_FAILURE(listener.OnTestEnd(test), l.entry);
}

TEST_P(LeakCheckTest, ListenerPassesATestThatDoesNotLeak) {
  const ::testing::TestInfo& test = *::testing::UnitTest::GetInstance()->current_test_info();
  goro::testing::LeakListener listener(1s);
  listener.OnTestStart(test);
  run([] { goro::go([] { goro::sleep_for(20ms); }); });  // the fixture waits for it
  listener.OnTestEnd(test);
}

// The format, for what the tests above cannot wait for.
TEST(LeakReport, WritesGoroutinesAsTheDumpDoes) {
  goro::GoroutineInfo g;
  g.id = 7;
  g.state = goro::GoroutineState::waiting;
  g.wait_reason = "chan receive";
  g.waiting_for = 150s;
  g.created_at = "server.cpp:42";
  g.created_by = "worker_loop";
  g.parent_id = 1;
  std::ostringstream out;
  goro::dump_goroutine(out, g);
  EXPECT_EQ(out.str(), "goroutine 7 [chan receive, 2 minutes]:\ncreated by worker_loop in goroutine 1\n\tserver.cpp:42\n");

  g.state = goro::GoroutineState::runnable;
  g.wait_reason.clear();
  g.waiting_for = 59s;  // Go prints the wait only from a minute on
  g.name = "acceptor";
  out.str("");
  goro::dump_goroutine(out, g);
  EXPECT_EQ(out.str(), "goroutine 7 [runnable]:\nname: acceptor\ncreated by worker_loop in goroutine 1\n\tserver.cpp:42\n");
}

}  // namespace
