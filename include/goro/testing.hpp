// <goro/testing.hpp>: goroutine leak checks for GoogleTest, goro's goleak.
//
// A leaked goroutine is one a test started and never saw finish: blocked on
// a channel nobody will use again, waiting for a cancel that never comes.
// Two tools find them, with the same rules and the same report:
//
//   LeakCheck            goleak.VerifyNone as a scope. Declare one at the top
//                        of a test (or of run()'s main); its destructor fails
//                        the test if goroutines started during its lifetime
//                        are still alive.
//
//     TEST(Server, StopsItsWorkers) {
//       goro::run([] {
//         goro::testing::LeakCheck leaks;   // waits up to 1 s at scope exit
//         Server s;
//         s.start();
//         s.stop();
//       });
//     }
//
//   install_leak_check() goleak.VerifyTestMain, but per test: every test of
//                        the binary gets a check from its start to its end,
//                        and a test that leaks fails (so the binary exits
//                        non-zero). Call it from main, or use the ready-made
//                        GORO_TEST_MAIN_WITH_LEAK_CHECK().
//
//     int main(int argc, char** argv) {
//       ::testing::InitGoogleTest(&argc, argv);
//       goro::testing::install_leak_check();
//       return RUN_ALL_TESTS();
//     }
//
// The rules. At construction (test start) the check takes a snapshot: the
// ids of the live goroutines, if a run() is active, and runs_mark(). At
// destruction (test end) it looks for
//   1. goroutines alive now that were not in the snapshot: started during
//      the check and not finished yet. The goroutine running the check does
//      not count. Like goleak, it retries with back-off (1 µs doubling up to
//      100 ms between looks) until none is left or `grace` has passed, since
//      a goroutine that has signalled its completion may not have returned
//      yet. Between looks it sleeps with goro::sleep_for: on a goroutine that
//      parks only the goroutine, so the ones being waited for can run even
//      on one P; on a plain thread it sleeps the thread.
//   2. goroutines left alive by every run() that ended during the check
//      (leftovers_since(mark)): when run()'s main returns, the goroutines
//      still alive are recorded and unwound. This is how a check made
//      outside run() (a test body, or the listener, around goro::run(...))
//      sees the leaks of the runs inside it. These are final, so they need
//      no waiting. Goroutines that were in the snapshot are not leaks, even
//      if their run left them.
// Each leaked goroutine is reported as goro::dump_goroutines writes it,
// with its stack: where it is blocked, then where it was created:
//
//   goroutine 7 [chan receive]:
//   Server::drain(goro::Chan<Job>&)
//           /src/server.cpp:57 +0x4c
//   worker_loop()
//           /src/server.cpp:31 +0x1d
//   created by main in goroutine 1
//           /src/server.cpp:42
//
// A LeakCheck's failure is reported at the line that declared it.
// (Go's wait reason, or the state if it is not waiting; ", N minutes" after
// it once it has waited a minute or more.) The first kListed are listed one
// by one; any more are counted per wait reason and creation site.
//
// A check destroyed by stack unwinding (an exception leaving the scope, or
// run() unwinding a leaked goroutine that holds one) does nothing: the
// scope did not finish, and teardown must not be made to wait.
//
// Memory ordering: none promised beyond the runtime's. Goroutine states are
// read racily, as goroutines() reads them, which is why the check retries.
//
// Header-only, so goro's libraries need no GoogleTest: include this from a
// test target that links goro::goro and GTest::gtest.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "goro/runtime.hpp"

namespace goro::testing {

namespace detail {

// kListed bounds a report: a test that leaks 100,000 goroutines gets a
// readable failure, the first 100 in full and the rest counted by group.
inline constexpr std::size_t kListed = 100;

// Snapshot is what a check remembers from its start.
struct Snapshot {
  RunsMark mark;                   // runs ended before the start
  bool in_run = false;             // a run was active at the start (run number mark.runs + 1)
  std::vector<std::uint64_t> ids;  // goroutines alive at the start, sorted
};

inline Snapshot take_snapshot() {
  Snapshot s;
  // Read the mark on both sides of goroutines(): if a run ended in
  // between, the ids might belong to it rather than to the run after the
  // mark; take them again.
  for (;;) {
    s.mark = runs_mark();
    const std::vector<GoroutineInfo> live = goroutines(/*with_stacks=*/false);
    if (runs_mark().runs != s.mark.runs) continue;
    s.in_run = !live.empty();
    s.ids.clear();
    for (const GoroutineInfo& g : live) s.ids.push_back(g.id);
    std::sort(s.ids.begin(), s.ids.end());
    return s;
  }
}

// Leaks is what one look found.
struct Leaks {
  std::vector<GoroutineInfo> live;      // alive now, started after the snapshot
  std::vector<GoroutineInfo> leftover;  // left alive by runs that ended since
  std::uint64_t leftover_dropped = 0;   // leftovers the runtime no longer remembers
  bool empty() const { return live.empty() && leftover.empty() && leftover_dropped == 0; }
};

inline bool in_snapshot(const Snapshot& s, std::uint64_t id) {
  return std::binary_search(s.ids.begin(), s.ids.end(), id);
}

inline Leaks look(const Snapshot& before) {
  Leaks out;
  const std::uint64_t self = goroutine_id();
  for (;;) {
    const RunsMark now = runs_mark();
    std::vector<GoroutineInfo> live = goroutines(/*with_stacks=*/false);
    Leftovers left = leftovers_since(before.mark);
    // A run that ended between the two reads would show its goroutines in
    // both lists, or in neither: look again.
    if (runs_mark().runs != now.runs) continue;

    // The active run, if any, is number now.runs + 1; the snapshot's ids
    // mean something only if that is the snapshot's run.
    const bool same_run = before.in_run && now.runs == before.mark.runs;
    for (GoroutineInfo& g : live) {
      if (g.id == self || (same_run && in_snapshot(before, g.id))) continue;
      out.live.push_back(std::move(g));
    }
    const std::uint64_t snapshot_run = before.mark.runs + 1;
    for (Leftover& l : left.goroutines) {
      if (before.in_run && l.run == snapshot_run && in_snapshot(before, l.goroutine.id)) continue;
      out.leftover.push_back(std::move(l.goroutine));
    }
    out.leftover_dropped = left.dropped;
    return out;
  }
}

// write_list writes up to `budget` goroutines in full, then counts the rest
// per (wait reason or state, creation site).
inline void write_list(std::ostream& out, const std::vector<GoroutineInfo>& list, std::size_t& budget) {
  std::map<std::tuple<std::string, std::string>, std::size_t> rest;
  for (const GoroutineInfo& g : list) {
    if (budget > 0) {
      --budget;
      out << "\n";
      goro::dump_goroutine(out, g);
      continue;
    }
    const bool waiting = g.state == GoroutineState::waiting && !g.wait_reason.empty();
    ++rest[{waiting ? g.wait_reason : std::string(to_string(g.state)), g.created_at}];
  }
  for (const auto& group : rest) {
    out << "\n" << group.second << " more @ " << std::get<0>(group.first) << ", created at "
        << std::get<1>(group.first) << "\n";
  }
}

// with_stacks describes the goroutines of `list` again, with their stacks
// (looks are made without: walking stacks is the expensive part). One
// that ended in between keeps the description it had.
inline std::vector<GoroutineInfo> with_stacks(std::vector<GoroutineInfo> list) {
  if (list.empty()) return list;
  const std::vector<GoroutineInfo> now = goroutines();
  for (GoroutineInfo& g : list) {
    for (const GoroutineInfo& n : now) {
      if (n.id == g.id) {
        g = n;
        break;
      }
    }
  }
  return list;
}

// report returns the failure message for `leaks` (which must not be empty).
inline std::string report(Leaks leaks, std::chrono::milliseconds grace) {
  leaks.live = with_stacks(std::move(leaks.live));
  std::ostringstream out;
  const std::uint64_t total = leaks.live.size() + leaks.leftover.size() + leaks.leftover_dropped;
  out << "goro::testing: " << total << " leaked goroutine" << (total == 1 ? "" : "s") << "\n";
  std::size_t budget = kListed;
  if (!leaks.live.empty()) {
    out << "\nstill alive after a grace period of " << grace.count() << " ms:\n";
    write_list(out, leaks.live, budget);
  }
  if (!leaks.leftover.empty() || leaks.leftover_dropped != 0) {
    out << "\nleft alive when run()'s main returned (run() unwound them):\n";
    write_list(out, leaks.leftover, budget);
    if (leaks.leftover_dropped != 0) {
      out << "\n" << leaks.leftover_dropped << " more, no longer remembered by the runtime\n";
    }
  }
  return out.str();
}

// find_leaks looks until nothing beyond `before` is alive or `grace` has
// passed (goleak's back-off), and returns the report, or "" if none leaked.
inline std::string find_leaks(const Snapshot& before, std::chrono::milliseconds grace) {
  using Clock = std::chrono::steady_clock;
  // goleak's numbers: the first retry after 1 µs, so a goroutine that is
  // merely returning costs next to nothing; at most 100 ms between looks,
  // so a leak-free check never waits much longer than the goroutine did.
  constexpr std::chrono::nanoseconds kFirstDelay = std::chrono::microseconds(1);
  constexpr std::chrono::nanoseconds kMaxDelay = std::chrono::milliseconds(100);
  const Clock::time_point deadline = Clock::now() + grace;
  std::chrono::nanoseconds delay = kFirstDelay;
  for (;;) {
    Leaks leaks = look(before);
    if (leaks.empty()) return {};
    // Leftovers are final (their run is over): only live ones may still end.
    const Clock::time_point now = Clock::now();
    if (leaks.live.empty() || now >= deadline) return report(std::move(leaks), grace);
    goro::sleep_for(std::min<std::chrono::nanoseconds>(delay, deadline - now));
    delay = std::min(delay * 2, kMaxDelay);
  }
}

}  // namespace detail

// LeakCheck fails the current test (ADD_FAILURE) if goroutines started during
// its lifetime are still alive at its destruction, `grace` after at most; see
// the rules above. Any goroutine or thread, inside or outside run(); it is
// usually destroyed where it was made, but need not be (the goroutine that
// destroys it never counts as a leak). Not copyable.
class LeakCheck {
 public:
  // `where` is the declaration, captured by the defaulted argument: the
  // failure is reported there (the file and line GoogleTest prints).
  explicit LeakCheck(std::chrono::milliseconds grace = std::chrono::seconds(1),
                     SourceLocation where = SourceLocation::current())
      : grace_(grace),
        file_(where.file_name()),
        line_(static_cast<int>(where.line())),
        uncaught_(std::uncaught_exceptions()),
        before_(detail::take_snapshot()) {}

  ~LeakCheck() {
    if (std::uncaught_exceptions() > uncaught_) return;  // unwinding: see the header comment
    const std::string leaks = detail::find_leaks(before_, grace_);
    if (!leaks.empty()) ADD_FAILURE_AT(file_, line_) << leaks;
  }

  LeakCheck(const LeakCheck&) = delete;
  LeakCheck& operator=(const LeakCheck&) = delete;

 private:
  std::chrono::milliseconds grace_;
  const char* file_;  // where the check was declared
  int line_;
  int uncaught_;  // std::uncaught_exceptions() at construction (per goroutine under goro)
  detail::Snapshot before_;
};

// LeakListener checks every test of the binary, as a LeakCheck from
// OnTestStart to OnTestEnd would, and fails the test that leaked: a failure
// added in OnTestEnd still belongs to the test (GoogleTest clears the
// current test after OnTestEnd) and is printed with it, because
// GoogleTest calls OnTestEnd in reverse order of installation and the
// default printer is installed first. A failed test makes RUN_ALL_TESTS()
// return 1. Install it with install_leak_check(); GoogleTest calls it from
// the thread (or goroutine) running RUN_ALL_TESTS().
class LeakListener : public ::testing::EmptyTestEventListener {
 public:
  explicit LeakListener(std::chrono::milliseconds grace = std::chrono::seconds(1)) : grace_(grace) {}

  void OnTestStart(const ::testing::TestInfo&) override { before_ = detail::take_snapshot(); }

  void OnTestEnd(const ::testing::TestInfo& test) override {
    const std::string leaks = detail::find_leaks(before_, grace_);
    if (leaks.empty()) return;
    ++leaky_tests_;
    ADD_FAILURE_AT(test.file(), test.line()) << leaks;
  }

  void OnTestIterationEnd(const ::testing::UnitTest&, int) override {
    if (leaky_tests_ == 0) return;
    std::printf("goro::testing: %d test%s leaked goroutines (see the failures above)\n", leaky_tests_,
                leaky_tests_ == 1 ? "" : "s");
    std::fflush(stdout);
    leaky_tests_ = 0;
  }

 private:
  std::chrono::milliseconds grace_;
  detail::Snapshot before_;  // written by OnTestStart, read by OnTestEnd: one thread
  int leaky_tests_ = 0;
};

// install_leak_check gives every test of the binary a leak check (a
// LeakListener with this grace). Call it once from main, before
// RUN_ALL_TESTS(); GoogleTest owns the listener.
inline void install_leak_check(std::chrono::milliseconds grace = std::chrono::seconds(1)) {
  ::testing::UnitTest::GetInstance()->listeners().Append(new LeakListener(grace));
}

}  // namespace goro::testing

// GORO_TEST_MAIN_WITH_LEAK_CHECK() defines main: GoogleTest with every test
// leak-checked. Link GTest::gtest, not GTest::gtest_main.
#define GORO_TEST_MAIN_WITH_LEAK_CHECK()            \
  int main(int argc, char** argv) {                 \
    ::testing::InitGoogleTest(&argc, argv);         \
    ::goro::testing::install_leak_check();          \
    return RUN_ALL_TESTS();                         \
  }
