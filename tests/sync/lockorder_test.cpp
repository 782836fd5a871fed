// GORODEBUG=lockorder=1: locks taken in inconsistent orders are reported
// as a potential deadlock, with where each lock was first taken and the
// stack of each acquisition, although the run did not deadlock.
//
// Each scenario runs in a child process (EXPECT_EXIT), which sets
// GORODEBUG itself, so the report on its stderr can be matched and this
// process's own runs stay unaffected. The goroutines take the locks one
// after the other (a WaitGroup between them): the point is that nothing
// deadlocks, yet the order is reported. Built with -g, so stacks name
// these functions and lines.
#include <cstdlib>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "goro_test.hpp"

namespace lo {

constexpr int kTakeBLine = __LINE__ + 4;
__attribute__((noinline)) void a_then_b(goro::Mutex& a, goro::Mutex& b) {
  asm volatile("");
  std::lock_guard<goro::Mutex> la(a);
  std::lock_guard<goro::Mutex> lb(b);
  asm volatile("");
}

constexpr int kTakeALine = __LINE__ + 4;
__attribute__((noinline)) void b_then_a(goro::Mutex& a, goro::Mutex& b) {
  asm volatile("");
  std::lock_guard<goro::Mutex> lb(b);
  std::lock_guard<goro::Mutex> la(a);
  asm volatile("");
}

template <class First, class Second>
__attribute__((noinline)) void in_order(First& first, Second& second) {
  std::lock_guard<First> l1(first);
  std::lock_guard<Second> l2(second);
  asm volatile("");
}

// run_scenario runs f as goroutine 1 of a run with lockorder checking as
// asked, then exits 0 (in the death-test child).
template <class F>
void run_scenario(bool checking, F f) {
  if (checking) {
    ::setenv("GORODEBUG", "lockorder=1", 1);
  } else {
    ::unsetenv("GORODEBUG");
  }
  goro::run(f, goro::Options{.procs = 2});
  std::fprintf(stderr, "run returned\n");
  std::exit(0);
}

// one_after_another runs each function as its own goroutine, in turn.
template <class... F>
void one_after_another(F... fs) {
  for (auto f : {std::function<void()>(fs)...}) {
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      f();
      wg.done();
    });
    wg.wait();
  }
}

}  // namespace lo

namespace {

class LockOrderTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(LockOrderTest, AnABBAInversionIsReportedWithBothPlacesAndStacks) {
  const std::string line_b = std::to_string(lo::kTakeBLine);
  const std::string line_a = std::to_string(lo::kTakeALine);
  EXPECT_EXIT(lo::run_scenario(true,
                               [] {
                                 goro::Mutex a, b;
                                 lo::one_after_another([&] { lo::a_then_b(a, b); }, [&] { lo::b_then_a(a, b); });
                               }),
              ::testing::ExitedWithCode(0),
              "goro: potential deadlock: 2 locks taken in inconsistent order(.|\n)*"
              "lock #1 \\(sync.Mutex 0x[0-9a-f]+, first taken at lockorder_test.cpp:[0-9]+\\)(.|\n)*"
              "lock #2 \\(sync.Mutex 0x[0-9a-f]+, first taken at lockorder_test.cpp:" +
                  line_b +
                  "\\)(.|\n)*"
                  "goroutine [0-9]+ took lock #2 [^\n]* while holding lock #1 [^\n]*:\n"
                  "lo::a_then_b\\(goro::Mutex&, goro::Mutex&\\)\n\t[^\n]*lockorder_test.cpp:" +
                  line_b +
                  "(.|\n)*"
                  "goroutine [0-9]+ took lock #1 [^\n]* while holding lock #2 [^\n]*:\n"
                  "lo::b_then_a\\(goro::Mutex&, goro::Mutex&\\)\n\t[^\n]*lockorder_test.cpp:" +
                  line_a + "(.|\n)*run returned");
}

TEST_F(LockOrderTest, AThreeLockCycleIsReportedWithEveryEdge) {
  EXPECT_EXIT(lo::run_scenario(true,
                               [] {
                                 goro::Mutex a;
                                 goro::RWMutex b;  // read locks count too
                                 goro::Mutex c;
                                 lo::one_after_another([&] { lo::in_order(a, b); },
                                                       [&] {
                                                         std::shared_lock<goro::RWMutex> rb(b);
                                                         std::lock_guard<goro::Mutex> lc(c);
                                                       },
                                                       [&] { lo::in_order(c, a); });
                               }),
              ::testing::ExitedWithCode(0),
              "goro: potential deadlock: 3 locks taken in inconsistent order(.|\n)*"
              "took lock #2 \\(sync.RWMutex[^\n]* while holding lock #1(.|\n)*"
              "took lock #3 \\(sync.Mutex[^\n]* while holding lock #2(.|\n)*"
              "took lock #1 \\(sync.Mutex[^\n]* while holding lock #3(.|\n)*run returned");
}

// A consistent order, however often, is no report; and each cycle is
// reported once however often it recurs.
TEST_F(LockOrderTest, AConsistentOrderIsNotReportedAndACycleOnlyOnce) {
  EXPECT_EXIT(lo::run_scenario(true,
                               [] {
                                 goro::Mutex a, b, c;
                                 for (int i = 0; i < 3; ++i) {
                                   lo::one_after_another([&] { lo::in_order(a, b); }, [&] { lo::in_order(b, c); },
                                                         [&] { lo::in_order(a, c); });
                                 }
                                 std::fprintf(stderr, "consistent so far\n");
                                 for (int i = 0; i < 3; ++i) {
                                   lo::one_after_another([&] { lo::in_order(c, a); });
                                 }
                               }),
              ::testing::ExitedWithCode(0),
              "^consistent so far\n\ngoro: potential deadlock: 2 locks(.|\n)*Take the locks in one order "
              "everywhere.\n\nrun returned\n$");
}

TEST_F(LockOrderTest, NothingIsReportedWithoutTheFlag) {
  EXPECT_EXIT(lo::run_scenario(false,
                               [] {
                                 goro::Mutex a, b;
                                 lo::one_after_another([&] { lo::a_then_b(a, b); }, [&] { lo::b_then_a(a, b); });
                               }),
              ::testing::ExitedWithCode(0), "^run returned\n$");
}

// try_lock cannot wait, so an inversion through it is not a deadlock.
TEST_F(LockOrderTest, ATryLockAddsNoEdge) {
  EXPECT_EXIT(lo::run_scenario(true,
                               [] {
                                 goro::Mutex a, b;
                                 lo::one_after_another([&] { lo::a_then_b(a, b); },
                                                       [&] {
                                                         std::lock_guard<goro::Mutex> lb(b);
                                                         if (a.try_lock()) a.unlock();
                                                       });
                               }),
              ::testing::ExitedWithCode(0), "^run returned\n$");
}

// A lock destroyed and another made at its address start afresh.
TEST_F(LockOrderTest, ADestroyedLockIsForgotten) {
  EXPECT_EXIT(lo::run_scenario(true,
                               [] {
                                 goro::Mutex a;
                                 alignas(goro::Mutex) unsigned char room[sizeof(goro::Mutex)];
                                 auto* b = ::new (room) goro::Mutex;
                                 lo::one_after_another([&] { lo::a_then_b(a, *b); });
                                 b->~Mutex();
                                 b = ::new (room) goro::Mutex;  // same address, another lock
                                 lo::one_after_another([&] { lo::b_then_a(a, *b); });
                                 b->~Mutex();
                               }),
              ::testing::ExitedWithCode(0), "^run returned\n$");
}

}  // namespace
