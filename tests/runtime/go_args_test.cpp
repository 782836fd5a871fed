// go(f, args...): the arguments travel as std::thread's do (decayed copies
// made by the caller, moved into f on the new goroutine), and the creation
// site is the go() call whatever the number of arguments.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "goro/park.hpp"  // park/ready: goro's internal seam
#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;

class GoArgsTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(GoArgsTest);

// Counted counts its copies and moves.
struct Counted {
  int* copies;
  int* moves;
  int value;
  Counted(int* c, int* m, int v) : copies(c), moves(m), value(v) {}
  Counted(const Counted& o) : copies(o.copies), moves(o.moves), value(o.value) { ++*copies; }
  Counted(Counted&& o) noexcept : copies(o.copies), moves(o.moves), value(o.value) {
    ++*moves;
    o.value = -1;
  }
  Counted& operator=(const Counted&) = delete;
  Counted& operator=(Counted&&) = delete;
};

void add_to(goro::Chan<int> out, int a, int b) { out.send(a + b); }

// Two goroutines deposit at once (on several Ps): the balance has a lock.
struct Account {
  goro::Mutex mu;
  int balance = 0;
  void deposit(int n, goro::WaitGroup* wg) {
    {
      std::lock_guard<goro::Mutex> l(mu);
      balance += n;
    }
    wg->done();
  }
};

TEST_P(GoArgsTest, ArgumentsArePassedAsStdThreadPassesThem) {
  run([] {
    goro::Chan<int> out(16);
    // A lambda with arguments; the caller's variable changes afterwards.
    int x = 40;
    goro::go([](goro::Chan<int> c, int a, int b) { c.send(a + b); }, out, x, 2);
    x = 0;
    EXPECT_EQ(out.recv(), 42);
    // A function, by name and by pointer.
    goro::go(add_to, out, 1, 2);
    EXPECT_EQ(out.recv(), 3);
    goro::go(&add_to, out, 3, 4);
    EXPECT_EQ(out.recv(), 7);
    // A move-only argument.
    auto p = std::make_unique<int>(9);
    goro::go([out](std::unique_ptr<int> q) { out.send(*q); }, std::move(p));
    EXPECT_EQ(p, nullptr);
    EXPECT_EQ(out.recv(), 9);
    // A reference, with std::ref; a member function with its object.
    Account acct;
    goro::WaitGroup wg;
    wg.add(2);
    goro::go([](Account& a, goro::WaitGroup& w) { a.deposit(5, &w); }, std::ref(acct), std::ref(wg));
    goro::go(&Account::deposit, &acct, 10, &wg);
    wg.wait();
    EXPECT_EQ(acct.balance, 15);
    // A generic lambda; a string literal decays to a pointer.
    goro::go([out](auto s, auto n) { out.send(static_cast<int>(std::string(s).size()) * n); }, "four", 2);
    EXPECT_EQ(out.recv(), 8);
  });
}

TEST_P(GoArgsTest, TheCallerCopiesLvaluesAndMovesRvaluesBeforeGoReturns) {
  run([] {
    int copies = 0, moves = 0;
    goro::Chan<int> out(2);
    goro::Chan<goro::Unit> gate(0);
    {
      Counted lvalue(&copies, &moves, 1);
      goro::go([out, gate](Counted a, Counted b) {
        (void)gate.recv();
        out.send(a.value + b.value);
      }, lvalue, Counted(&copies, &moves, 2));
      // The goroutine holds its own copy: the caller's object is intact,
      // and may die before the goroutine runs.
      EXPECT_EQ(lvalue.value, 1);
      EXPECT_EQ(copies, 1) << "one copy of the lvalue";
    }
    gate.close();
    EXPECT_EQ(out.recv(), 3);
    EXPECT_EQ(copies, 1) << "the rvalue and the stored copies are moved, never copied";
    EXPECT_GE(moves, 3);
  });
}

// created_at of the goroutines parked on `gate`, by name.
std::string site_of(const std::string& name) {
  for (const goro::GoroutineInfo& g : goro::goroutines()) {
    if (g.name == name) return g.created_at;
  }
  return "(not found)";
}

TEST_P(GoArgsTest, TheCreationSiteIsTheCallSiteWhateverTheArguments) {
  run([] {
    goro::Chan<goro::Unit> gate(0);
    auto park = [gate](const char* name) {
      goro::set_goroutine_name(name);
      (void)gate.recv();
    };
    auto park2 = [gate](const char* name, int) {
      goro::set_goroutine_name(name);
      (void)gate.recv();
    };
    const std::string here = __FILE__;
    const int line0 = __LINE__ + 1;
    goro::go([park] { park("zero"); });
    const int line1 = __LINE__ + 1;
    goro::go(park, "one");
    const int line2 = __LINE__ + 1;
    goro::go(park2, "two", 2);
    // An explicit location (what a wrapper such as ErrGroup::go passes).
    const goro::SourceLocation elsewhere = goro::SourceLocation::current();
    goro::go([park] { park("explicit"); }, elsewhere);
    ASSERT_TRUE(goro_test::wait_for_waiters("chan receive", 4));
    EXPECT_EQ(site_of("zero"), here + ":" + std::to_string(line0));
    EXPECT_EQ(site_of("one"), here + ":" + std::to_string(line1));
    EXPECT_EQ(site_of("two"), here + ":" + std::to_string(line2));
    EXPECT_EQ(site_of("explicit"), here + ":" + std::to_string(elsewhere.line()));
    gate.close();
  });
}

TEST_P(GoArgsTest, GoWithArgumentsFromAPlainThread) {
  run([] {
    goro::Chan<int> out(1);
    std::thread t([out] { goro::go([](goro::Chan<int> c, int v) { c.send(v); }, out, 11); });
    goro::blocking([&] { t.join(); });
    EXPECT_EQ(out.recv(), 11);
  });
}

}  // namespace
