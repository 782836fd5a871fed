// Primitives destroyed while goroutines wait on them ("orphans", the
// runtime's orphans.cpp): the waiters stay parked and are described as
// before, the teardown unwinds them without touching the dead primitive
// (the asan preset checks that), a primitive built later at the same
// address is not disturbed by them, and plain threads that destroy
// primitives while run() is ending cannot pull memory out from under the
// teardown.
#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "goro_test.hpp"

namespace {

using goro_test::scaled;
using goro_test::wait_for_waiters;
using goro_test::wait_until;
using goro_test::waiting_on;

class OrphansTest : public ::testing::TestWithParam<int> {
 protected:
  int procs() const { return GetParam(); }
  template <class F>
  void run(F&& body) {
    goro::run(std::forward<F>(body), goro::Options{.procs = procs()});
  }
};
GORO_INSTANTIATE_PROCS(OrphansTest);

int count_reason(const std::vector<goro::GoroutineInfo>& all, const std::string& reason) {
  int n = 0;
  for (const auto& g : all) n += g.wait_reason == reason ? 1 : 0;
  return n;
}

// The goroutines parked on the dead primitives are leftovers like any
// other: still waiting, with their wait reasons, when main returns.
TEST_P(OrphansTest, OrphansStayParkedAndAreReportedAsLeftovers) {
  run([] {
    struct Owner {
      goro::Chan<int> ch{0};
      goro::Mutex mu;
      goro::WaitGroup wg;
    };
    auto owner = std::make_unique<Owner>();
    owner->mu.lock();
    owner->wg.add(1);
    Owner* o = owner.get();
    goro::go([o] { o->ch.send(1); });
    goro::go([o] { std::lock_guard<goro::Mutex> l(o->mu); });
    goro::go([o] { o->wg.wait(); });
    ASSERT_TRUE(wait_until([] {
      return waiting_on("chan send") == 1 && waiting_on("sync.Mutex.Lock") == 1 &&
             waiting_on("sync.WaitGroup.Wait") == 1;
    }));
    owner.reset();  // every primitive dies with a goroutine parked on it
    // Nothing wakes them: they are still there, still parked.
    EXPECT_EQ(goro::num_goroutine(), 4);
    EXPECT_EQ(waiting_on("chan send"), 1);
    EXPECT_EQ(waiting_on("sync.Mutex.Lock"), 1);
    EXPECT_EQ(waiting_on("sync.WaitGroup.Wait"), 1);
  });
  EXPECT_EQ(goro::last_run_unwound(), 3);
  const auto left = goro::last_run_leftovers();
  EXPECT_EQ(count_reason(left, "chan send"), 1);
  EXPECT_EQ(count_reason(left, "sync.Mutex.Lock"), 1);
  EXPECT_EQ(count_reason(left, "sync.WaitGroup.Wait"), 1);
}

// A Mutex (and a WaitGroup) built where a dead one with orphans was: the
// orphans are out of the semaphore table, so the new one's unlock wakes its
// own waiter and never an orphan, and the orphans stay parked.
TEST_P(OrphansTest, APrimitiveBuiltWhereADeadOneWasIgnoresItsOrphans) {
  run([] {
    alignas(goro::Mutex) unsigned char mu_mem[sizeof(goro::Mutex)];
    alignas(goro::WaitGroup) unsigned char wg_mem[sizeof(goro::WaitGroup)];
    auto* mu = ::new (mu_mem) goro::Mutex;
    auto* wg = ::new (wg_mem) goro::WaitGroup;
    mu->lock();
    wg->add(1);
    for (int i = 0; i < 2; ++i) {
      goro::go([mu] { mu->lock(); });
      goro::go([wg] { wg->wait(); });
    }
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", 2));
    ASSERT_TRUE(wait_for_waiters("sync.WaitGroup.Wait", 2));
    mu->~Mutex();
    wg->~WaitGroup();

    auto* mu2 = ::new (mu_mem) goro::Mutex;
    auto* wg2 = ::new (wg_mem) goro::WaitGroup;
    goro::Chan<int> done(2);
    mu2->lock();
    wg2->add(1);
    goro::go([mu2, done] {
      mu2->lock();
      mu2->unlock();
      done.send(1);
    });
    goro::go([wg2, done] {
      wg2->wait();
      done.send(2);
    });
    ASSERT_TRUE(wait_for_waiters("sync.Mutex.Lock", 3));
    ASSERT_TRUE(wait_for_waiters("sync.WaitGroup.Wait", 3));
    mu2->unlock();
    wg2->done();
    int got = done.recv().value() + done.recv().value();
    EXPECT_EQ(got, 3) << "the new primitives' own waiters got through";
    // The orphans did not: the dead primitives' waiters are still parked.
    EXPECT_TRUE(wait_until([] { return waiting_on("sync.Mutex.Lock") == 2; }));
    EXPECT_EQ(waiting_on("sync.WaitGroup.Wait"), 2);
    EXPECT_TRUE(mu2->try_lock());
    mu2->unlock();
    mu2->~Mutex();
    wg2->~WaitGroup();
  });
  EXPECT_EQ(goro::last_run_unwound(), 4);
}

// A select parked on a channel whose last handle goes, and on one that
// lives on: a send on the live one wakes it, and it must not touch the dead
// one (a pin keeps it allocated until the select lets go; LeakSanitizer, in
// the asan preset, checks that it is then freed).
TEST_P(OrphansTest, ASelectWokenAfterOneOfItsChannelsDiedLeavesItAlone) {
  run([] {
    for (int round = 0; round < 20; ++round) {
      goro::Chan<int> live(0);
      goro::Chan<int> got(1);
      auto dying = std::make_unique<goro::Chan<int>>(round % 2);
      if (round % 2 == 1) dying->send(7);  // a buffered value dies with the last handle
      goro::Chan<int>* d = dying.get();
      goro::go([d, live, got] {
        int value = 0;
        goro::select(goro::on_send(*d, 1), goro::on_recv(live, [&](std::optional<int> v) { value = v.value(); }));
        got.send(value);
      });
      ASSERT_TRUE(wait_for_waiters("select", 1));
      dying.reset();
      live.send(round);
      EXPECT_EQ(got.recv(), round);
    }
  });
  EXPECT_EQ(goro::last_run_unwound(), 0);
}

// Main hands a wake-up to a goroutine and returns before it runs, with the
// primitive dying with main's objects: the teardown unwinds the goroutine
// out of the primitive it was woken from, and leaves the dead one alone.
// One P only: with more, the woken goroutine may be running on another
// thread while main destroys the primitive, a race of the program's own
// (as with threads). The primitives are on the heap, so that the asan
// preset sees any touch of them after they are freed; the Cond's Mutex
// outlives the run (a Cond waiter relocks it while unwinding, and its
// unique_lock unlocks it: docs/guide.md).
TEST_P(OrphansTest, AWakeUpInFlightToADeadPrimitiveIsDropped) {
  if (procs() != 1) GTEST_SKIP() << "one P: see above";
  goro::Mutex cond_mu;
  for (int round = 0; round < 10; ++round) {
    run([round, &cond_mu] {
      struct Objects {
        goro::Mutex mu;
        goro::RWMutex rw;
        goro::WaitGroup wg;
        goro::Semaphore sem{1};
        goro::Cond cond;
        goro::Chan<int> ch{0};
        explicit Objects(goro::Mutex& m) : cond(m) {}
      };
      auto objects = std::make_unique<Objects>(cond_mu);
      goro::Mutex& mu = objects->mu;
      goro::RWMutex& rw = objects->rw;
      goro::WaitGroup& wg = objects->wg;
      goro::Semaphore& sem = objects->sem;
      goro::Cond& cond = objects->cond;
      goro::Chan<int>& ch = objects->ch;
      mu.lock();
      rw.lock();
      wg.add(1);
      sem.acquire(1);
      goro::go([&] { std::lock_guard<goro::Mutex> l(mu); });
      goro::go([&] { std::shared_lock<goro::RWMutex> l(rw); });
      goro::go([&] { wg.wait(); });
      goro::go([&] { sem.acquire(1); });
      goro::go([&] {
        std::unique_lock<goro::Mutex> l(cond_mu);
        cond.wait();
      });
      goro::go([&] { (void)ch.recv(); });
      ASSERT_TRUE(wait_until([] {
        int parked = 0;
        for (const auto& g : goro::goroutines(false)) parked += g.state == goro::GoroutineState::waiting;
        return parked == 6;
      }));
      // Wake them all, in an order that varies, and return at once.
      std::vector<std::function<void()>> wakes = {
          [&] { mu.unlock(); }, [&] { rw.unlock(); }, [&] { wg.done(); },
          [&] { sem.release(1); }, [&] { cond.signal(); }, [&] { ch.send(1); }};
      std::mt19937 rng(static_cast<unsigned>(round));
      std::shuffle(wakes.begin(), wakes.end(), rng);
      for (auto& w : wakes) w();
    });
  }
}

// Plain threads destroy primitives with goroutines parked on them while
// run() is returning, at random moments: whatever the interleaving, the
// teardown's cleanups and the destructors never meet on freed memory (the
// asan and tsan presets check it) and run() returns.
TEST_P(OrphansTest, PlainThreadsDestroyingPrimitivesDuringTheTeardown) {
  struct Shared {
    goro::Chan<int> ch{0};
    goro::Mutex mu;
    goro::WaitGroup wg;
    goro::Semaphore sem{1};
  };
  std::mt19937 rng(static_cast<unsigned>(procs()));
  const std::int64_t rounds = scaled(30);
  for (std::int64_t round = 0; round < rounds; ++round) {
    auto shared = std::make_unique<Shared>();
    const int delay_us = static_cast<int>(rng() % 60);
    const bool wake_first = rng() % 2 == 0;
    std::thread destroyer;
    const std::uint64_t runs_before = goro::runs_mark().runs;
    run([&] {
      Shared* s = shared.get();
      s->mu.lock();
      s->wg.add(1);
      s->sem.acquire(1);
      goro::go([s] { (void)s->ch.recv(); });
      goro::go([s] { std::lock_guard<goro::Mutex> l(s->mu); });
      goro::go([s] { s->wg.wait(); });
      goro::go([s] { s->sem.acquire(1); });
      ASSERT_TRUE(wait_until([] {
        int parked = 0;
        for (const auto& g : goro::goroutines(false)) parked += g.state == goro::GoroutineState::waiting;
        return parked == 4;
      }));
      destroyer = std::thread([&shared, delay_us, wake_first, runs_before] {
        // Once main has returned (the run counts as ended before its
        // leftovers are unwound): from then on nothing but the teardown
        // runs the goroutines, so waking one does not let it run on into
        // the object we are about to destroy.
        while (goro::runs_mark().runs == runs_before) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        if (wake_first) {
          // A plain thread takes a waiter out (a hand-off) and then drops
          // the primitive, while the teardown may be unwinding that waiter.
          (void)shared->ch.try_send(1);
          shared->mu.unlock();
          shared->wg.done();
          shared->sem.release(1);
        }
        shared.reset();
      });
    });
    destroyer.join();
    EXPECT_LE(goro::last_run_unwound(), 4);
  }
}

}  // namespace
