// Randomized stress of the sync primitives: many goroutines on 1, 2, 4 and
// 8 Ps mixed with plain threads, and random teardowns. Sizes scale with
// GORO_STRESS_SCALE; each test prints its seed (GORO_SEED=<n> replays it).
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "goro_test.hpp"
#include "sync_test_util.hpp"

namespace {

using goro::Chan;
using goro::Cond;
using goro::Mutex;
using goro::Once;
using goro::RWMutex;
using goro::Semaphore;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;

class SyncStressTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(SyncStressTest);

std::uint64_t seed() {
  if (const char* s = std::getenv("GORO_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

// A mutex storm: goroutines and threads take one Mutex with lock() or
// try_lock(), hold it across random yields, and sometimes hand the locked
// Mutex to another goroutine to unlock. A plain counter must add up.
TEST_P(SyncStressTest, MutexStorm) {
  const std::uint64_t s = seed();
  SCOPED_TRACE("GORO_SEED=" + std::to_string(s));
  const std::int64_t goroutines = scaled(200), iters = scaled(300);
  run([&] {
    Mutex mu;
    std::int64_t counter = 0;  // guarded by mu
    std::atomic<int> inside{0}, overlaps{0};
    Chan<Unit> handoff(0);  // carries "the mutex is locked; unlock it"
    goro::WaitGroup wg, unlocker;
    unlocker.add(1);
    goro::go([&, handoff]() mutable {
      for (Unit u : handoff) {
        (void)u;
        inside.fetch_sub(1);
        mu.unlock();
      }
      unlocker.done();
    });
    auto worker = [&](std::uint64_t wseed, bool thread) {
      std::mt19937_64 rng(wseed);
      for (std::int64_t i = 0; i < iters; ++i) {
        const auto r = rng() % 16;
        if (r == 0) {
          // A bounded try_lock spin, then lock(). (An unbounded spin of
          // goro::yield() relies on the scheduler to run, now and then, a
          // goroutine from the global queue: the handoff target of a
          // starving mutex, when a plain thread unlocked it.)
          int tries = 0;
          while (!mu.try_lock()) {
            if (++tries == 64) {
              mu.lock();
              break;
            }
            if (thread) {
              std::this_thread::yield();
            } else {
              goro::yield();
            }
          }
        } else {
          mu.lock();
        }
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++counter;
        if (!thread && r < 3) goro::yield();
        if (!thread && r == 5) {
          handoff.send(Unit{});  // another goroutine unlocks for us
        } else {
          inside.fetch_sub(1);
          mu.unlock();
        }
      }
      wg.done();
    };
    wg.add(goroutines + 2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) threads.emplace_back(worker, s + 1000 + t, true);
    for (std::int64_t g = 0; g < goroutines; ++g) {
      goro::go([&worker, g, s] { worker(s + static_cast<std::uint64_t>(g), false); });
    }
    wg.wait();
    handoff.close();
    unlocker.wait();
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_EQ(overlaps.load(), 0);
    EXPECT_EQ(counter, (goroutines + 2) * iters);
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// Readers and writers, goroutines and threads, random try_ variants; a
// writer must be alone, a reader must see no writer.
TEST_P(SyncStressTest, RWMutexStorm) {
  const std::uint64_t s = seed();
  SCOPED_TRACE("GORO_SEED=" + std::to_string(s));
  const std::int64_t goroutines = scaled(100), iters = scaled(500);
  run([&] {
    RWMutex mu;
    std::atomic<std::int64_t> state{0};  // readers inside, + 1'000'000 per writer
    std::atomic<int> bad{0};
    std::int64_t writes = 0;  // guarded by mu (write)
    std::atomic<std::int64_t> expected_writes{0};
    goro::WaitGroup wg;
    auto worker = [&](std::uint64_t wseed, bool thread) {
      std::mt19937_64 rng(wseed);
      for (std::int64_t i = 0; i < iters; ++i) {
        const auto r = rng() % 20;
        if (r < 3) {
          if (r != 0 || !mu.try_lock()) mu.lock();
          if (state.fetch_add(1'000'000) != 0) bad.fetch_add(1);
          ++writes;
          expected_writes.fetch_add(1);
          if (!thread && r == 1) goro::yield();
          state.fetch_sub(1'000'000);
          mu.unlock();
        } else {
          if (r != 3 || !mu.try_lock_shared()) mu.lock_shared();
          if (state.fetch_add(1) >= 1'000'000) bad.fetch_add(1);
          if (!thread && r < 8) goro::yield();
          state.fetch_sub(1);
          mu.unlock_shared();
        }
      }
      wg.done();
    };
    wg.add(goroutines + 2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) threads.emplace_back(worker, s + 1000 + t, true);
    for (std::int64_t g = 0; g < goroutines; ++g) {
      goro::go([&worker, g, s] { worker(s + static_cast<std::uint64_t>(g), false); });
    }
    wg.wait();
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(writes, expected_writes.load());
    EXPECT_TRUE(mu.try_lock());
    mu.unlock();
  });
}

// A token passed around a ring of goroutines through one Cond: each waits
// for its turn, takes it, and passes it on with broadcast (the next owner
// is one of many waiters, so signal could wake the wrong one).
TEST_P(SyncStressTest, CondTokenRing) {
  const std::int64_t laps = scaled(100);
  run([&] {
    constexpr int kRing = 16;
    Mutex m;
    Cond turn_changed(m);
    int turn = 0;             // guarded by m
    std::int64_t passes = 0;  // guarded by m
    goro::WaitGroup wg;
    wg.add(kRing);
    for (int i = 0; i < kRing; ++i) {
      goro::go([&, i] {
        for (std::int64_t lap = 0; lap < laps; ++lap) {
          std::unique_lock<Mutex> l(m);
          while (turn != i) turn_changed.wait();
          turn = (turn + 1) % kRing;
          ++passes;
          turn_changed.broadcast();
        }
        wg.done();
      });
    }
    wg.wait();
    std::lock_guard<Mutex> l(m);
    EXPECT_EQ(passes, kRing * laps);
    EXPECT_EQ(turn, 0);
  });
}

// Random weights from goroutines and threads; the weight held never
// exceeds the size and every unit comes back.
TEST_P(SyncStressTest, SemaphoreStorm) {
  const std::uint64_t s = seed();
  SCOPED_TRACE("GORO_SEED=" + std::to_string(s));
  const std::int64_t goroutines = scaled(200), iters = scaled(200);
  run([&] {
    constexpr std::int64_t kSize = 7;
    Semaphore sem(kSize);
    std::atomic<std::int64_t> held{0};
    std::atomic<int> over{0};
    goro::WaitGroup wg;
    auto worker = [&](std::uint64_t wseed, bool thread) {
      std::mt19937_64 rng(wseed);
      for (std::int64_t i = 0; i < iters; ++i) {
        const auto n = static_cast<std::int64_t>(1 + rng() % kSize);
        if (rng() % 4 != 0 || !sem.try_acquire(n)) sem.acquire(n);
        if (held.fetch_add(n) + n > kSize) over.fetch_add(1);
        if (!thread && rng() % 4 == 0) goro::yield();
        held.fetch_sub(n);
        sem.release(n);
      }
      wg.done();
    };
    wg.add(goroutines + 2);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) threads.emplace_back(worker, s + 1000 + t, true);
    for (std::int64_t g = 0; g < goroutines; ++g) {
      goro::go([&worker, g, s] { worker(s + static_cast<std::uint64_t>(g), false); });
    }
    wg.wait();
    goro::blocking([&] {
      for (auto& t : threads) t.join();
    });
    EXPECT_EQ(over.load(), 0);
    EXPECT_TRUE(sem.try_acquire(kSize));
    sem.release(kSize);
  });
}

// Many Once objects, each called by several goroutines at once.
TEST_P(SyncStressTest, OnceStorm) {
  const std::int64_t onces = scaled(2'000);
  run([&] {
    std::vector<Once> once(static_cast<std::size_t>(onces));
    std::vector<std::atomic<int>> runs(static_cast<std::size_t>(onces));
    std::atomic<int> early{0};
    constexpr int kCallers = 4;
    goro::WaitGroup wg;
    wg.add(kCallers * onces);
    for (std::int64_t i = 0; i < onces; ++i) {
      for (int c = 0; c < kCallers; ++c) {
        goro::go([&, i] {
          auto k = static_cast<std::size_t>(i);
          once[k].call([&] {
            if (i % 3 == 0) goro::yield();
            runs[k].fetch_add(1);
          });
          if (runs[k].load() != 1) early.fetch_add(1);
          wg.done();
        });
      }
    }
    wg.wait();
    EXPECT_EQ(early.load(), 0);
    for (auto& r : runs) ASSERT_EQ(r.load(), 1);
  });
}

// park_holding parks a goroutine on `never` that owns `release`: release()
// runs when the goroutine's function object is destroyed, whether teardown
// unwinds the goroutine or destroys it before it ever ran.
template <class F>
void park_holding(Chan<Unit> never, F release) {
  struct Holder {
    F f;
    explicit Holder(F fn) : f(std::move(fn)) {}
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    ~Holder() { f(); }
  };
  goro::go([never, holder = std::make_shared<Holder>(std::move(release))]() mutable { never.recv(); });
}

int parked_goroutines() {
  int n = 0;
  for (const auto& g : goro::goroutines()) n += g.state == goro::GoroutineState::waiting ? 1 : 0;
  return n;
}

// Random teardowns: goroutines left parked on random primitives (some of
// them already picked by a wake-up that has not run yet) when main returns.
// After the teardown every primitive must be free and usable again.
TEST_P(SyncStressTest, RandomTeardownsLeaveEveryPrimitiveConsistent) {
  const std::uint64_t s = seed();
  SCOPED_TRACE("GORO_SEED=" + std::to_string(s));
  std::mt19937_64 rng(s);
  const std::int64_t rounds = scaled(20);
  for (std::int64_t round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Mutex mu;
    RWMutex rw;
    Semaphore sem(3);
    Mutex cond_mu;
    Cond cond(cond_mu);
    goro::WaitGroup wg;
    Chan<Unit> never(0);
    const int waiters = 2 + static_cast<int>(rng() % 6);
    const std::uint64_t round_seed = rng();
    sync_test::run_and_unwind(procs(), [&] {
      std::mt19937_64 r(round_seed);
      // The RWMutex starts read-held (writers wait for the reader) or
      // write-held (a writer waits to be handed it, readers and writers
      // queue behind).
      const bool rw_write_held = r() % 2 == 0;
      mu.lock();
      if (rw_write_held) {
        rw.lock();
      } else {
        rw.lock_shared();
      }
      sem.acquire(3);
      wg.add(1);
      for (int i = 0; i < waiters; ++i) {
        switch (r() % 6) {
          case 0:
            goro::go([&] {
              std::lock_guard<Mutex> l(mu);
              never.recv();
            });
            break;
          case 1:
            goro::go([&] {
              std::lock_guard<RWMutex> l(rw);
              never.recv();
            });
            break;
          case 2:
            goro::go([&] {
              std::shared_lock<RWMutex> l(rw);
              never.recv();
            });
            break;
          case 3:
            goro::go([&, n = static_cast<std::int64_t>(1 + r() % 3)] {
              sem.acquire(n);
              struct GiveBack {
                Semaphore& sem;
                std::int64_t n;
                ~GiveBack() { sem.release(n); }
              } give_back{sem, n};
              never.recv();
            });
            break;
          case 4:
            goro::go([&] {
              std::unique_lock<Mutex> l(cond_mu);
              cond.wait();
              l.unlock();
              never.recv();
            });
            break;
          default:
            goro::go([&] { wg.wait(); });
            break;
        }
      }
      ASSERT_TRUE(goro_test::wait_until([&] { return parked_goroutines() == waiters; }));
      // Release each primitive now (waking a waiter that will not have run
      // when main returns, with 1 P), or leave it to a goroutine that
      // releases it when teardown unwinds it.
      if (r() % 2 == 0) {
        mu.unlock();
      } else {
        park_holding(never, [&] { mu.unlock(); });
      }
      const auto rw_unlock = [&rw, rw_write_held] {
        if (rw_write_held) {
          rw.unlock();
        } else {
          rw.unlock_shared();
        }
      };
      if (r() % 2 == 0) {
        rw_unlock();
      } else {
        park_holding(never, rw_unlock);
      }
      if (r() % 2 == 0) {
        sem.release(3);
      } else {
        park_holding(never, [&] { sem.release(3); });
      }
      if (r() % 2 == 0) cond.signal();
      if (r() % 3 == 0) cond.broadcast();
      if (r() % 2 == 0) {
        wg.done();
      } else {
        park_holding(never, [&] { wg.done(); });
      }
    });
    goro::run(
        [&] {
          EXPECT_TRUE(mu.try_lock());
          mu.unlock();
          EXPECT_TRUE(rw.try_lock());
          rw.unlock();
          EXPECT_TRUE(sem.try_acquire(3));
          sem.release(3);
          EXPECT_TRUE(cond_mu.try_lock());
          cond_mu.unlock();
          wg.wait();  // the counter is back to zero
          // Nothing stale is left in any queue: each primitive still hands
          // over to a new waiter.
          Chan<int> woke(6);
          mu.lock();
          rw.lock();
          sem.acquire(3);
          wg.add(1);
          goro::go([&, woke]() mutable {
            std::lock_guard<Mutex> l(mu);
            woke.send(0);
          });
          goro::go([&, woke]() mutable {
            std::shared_lock<RWMutex> l(rw);
            woke.send(1);
          });
          goro::go([&, woke]() mutable {
            std::lock_guard<RWMutex> l(rw);  // parks waiting to be handed the lock
            woke.send(5);
          });
          goro::go([&, woke]() mutable {
            sem.acquire(1);
            sem.release(1);
            woke.send(2);
          });
          goro::go([&, woke]() mutable {
            std::unique_lock<Mutex> l(cond_mu);
            cond.wait();
            woke.send(3);
          });
          goro::go([&, woke]() mutable {
            wg.wait();
            woke.send(4);
          });
          ASSERT_TRUE(goro_test::wait_until([] { return parked_goroutines() == 6; }));
          mu.unlock();
          rw.unlock();
          sem.release(3);
          wg.done();
          cond.signal();
          int seen = 0;
          for (int i = 0; i < 6; ++i) seen |= 1 << *woke.recv();
          EXPECT_EQ(seen, 63);
        },
        goro::Options{.procs = procs()});
  }
}

}  // namespace
