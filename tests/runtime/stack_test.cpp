// Tests of goroutine stacks: sizes, reuse, memory going back to the OS, and
// the record a goroutine moves into at the top of its stack when it first
// runs.
#include <array>
#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "goro_test.hpp"

namespace {

using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class StackTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(StackTest);

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// use_stack touches about `bytes` of stack through recursion.
__attribute__((noinline)) int use_stack(int bytes) {
  volatile char frame[512];
  frame[0] = static_cast<char>(bytes);
  if (bytes <= 512) return frame[0];
  return use_stack(bytes - 512) + frame[0] - frame[0];
}

// Parked spawns n goroutines that park on a gate, and waits until all have;
// release() lets them exit and waits for that.
class Parked {
 public:
  explicit Parked(std::int64_t n) {
    started_.add(n);
    exited_.add(n);
    for (std::int64_t i = 0; i < n; ++i) {
      goro::go([this, gate = gate_]() mutable {
        started_.done();
        gate.recv();
        exited_.done();
      });
    }
    started_.wait();
  }
  void release() {
    gate_.close();
    exited_.wait();
  }

 private:
  goro::Chan<goro::Unit> gate_{0};
  goro::WaitGroup started_, exited_;
};

TEST_P(StackTest, DefaultStackHoldsFortyEightKilobytesOfFrames) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "sanitizers enlarge frames";
  run([] {
    goro::WaitGroup wg;
    wg.add(1);
    goro::go([&] {
      use_stack(48 * 1024);
      wg.done();
    });
    wg.wait();
  });
}

TEST_P(StackTest, LargerStacksCanBeConfigured) {
  run(
      [] {
        goro::WaitGroup wg;
        wg.add(1);
        goro::go([&] {
          use_stack(400 * 1024);
          wg.done();
        });
        wg.wait();
      },
      1 << 20);
}

TEST_P(StackTest, ExitedGoroutinesStacksAreReused) {
  run([] {
    for (int round = 0; round < 20; ++round) {
      goro::WaitGroup wg;
      wg.add(1000);
      for (int i = 0; i < 1000; ++i) goro::go([&] { wg.done(); });
      wg.wait();
    }
    // 20,000 goroutines ran, at most ~1,000 at a time: the records (stack
    // slots) in existence stay near the peak, not the total.
    EXPECT_LT(goro::sched_stats().stacks_in_use, 5000);
  });
}

TEST_P(StackTest, MemoryGoesBackToTheOsAfterABurst) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "sanitizers keep their own shadow memory";
  const std::int64_t n = scaled(100'000);
  run([n] {
    const long before = rss_kb();
    Parked first(n);
    const long peak = rss_kb();
    ASSERT_GT(peak - before, n * 3 / 1024) << "each parked goroutine should hold at least a few KiB";
    first.release();
    // The scavenger returns long-unused stacks; RSS falls back near where it was.
    EXPECT_TRUE(wait_until([&] { return rss_kb() < before + (peak - before) / 5; }, std::chrono::seconds(20)))
        << "RSS before " << before << " KiB, parked " << peak << " KiB, now " << rss_kb() << " KiB";
    // A listing does not read the records of the slots whose memory went
    // back (on some kernels a read commits the page again).
    const long low = rss_kb();
    (void)goro::goroutines();
    EXPECT_LT(rss_kb() - low, (peak - before) / 5) << "a listing brought the returned stacks back";
    // The returned slots come back with their records rebuilt (the memory
    // read all zero): goroutines on them run, park and are listed.
    Parked second(n);
    std::int64_t parked = 0;
    for (const goro::GoroutineInfo& g : goro::goroutines(false)) {
      parked += g.wait_reason == "chan receive" && g.created_at.find("stack_test.cpp") != std::string::npos;
    }
    EXPECT_EQ(parked, n);
    second.release();
  });
}

// Counted tracks constructions and destructions of captured state: a
// goroutine's function object moves from its spawn record into its stack's
// record on its first run, and must be destroyed exactly once. tag is a
// short string (libstdc++ keeps it inside the std::string object).
std::string tag(int i) {
  std::string s = std::to_string(i);
  s.push_back('s');
  return s;
}

struct Counted {
  static inline std::atomic<long> live{0};
  int v;
  explicit Counted(int x) : v(x) { live.fetch_add(1); }
  Counted(const Counted& o) : v(o.v) { live.fetch_add(1); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1); }
  ~Counted() { live.fetch_sub(1); }
};

// ThrowingMove may throw from its move constructor: such function objects
// go on the heap and are never relocated.
struct ThrowingMove {
  int v;
  explicit ThrowingMove(int x) : v(x) {}
  ThrowingMove(const ThrowingMove&) = default;
  ThrowingMove(ThrowingMove&& o) noexcept(false) : v(o.v) {}
};

// SelfPointer points into itself: a byte copy would leave the copy
// pointing into the spawn record, which the next go() overwrites. Its move
// constructor fixes the pointer.
struct SelfPointer {
  int v;
  int* self;
  explicit SelfPointer(int x) : v(x), self(&v) {}
  SelfPointer(const SelfPointer& o) : v(o.v), self(&v) {}
  SelfPointer(SelfPointer&& o) noexcept : v(o.v), self(&v) { o.self = nullptr; }
  bool intact(int x) const { return self == &v && *self == x; }
};

TEST_P(StackTest, FunctionObjectsMoveIntoTheStackRecordIntact) {
  const int n = static_cast<int>(scaled(2000));
  Counted::live = 0;
  run([n] {
    struct Shared {
      goro::Chan<goro::Unit> gate{0};
      goro::WaitGroup started, exited;
      std::atomic<int> bad{0};
      void park() {
        started.done();
        gate.recv();
      }
    } sh;
    Shared* const p = &sh;
    const auto spawn_all = [p](int i) {
      std::string small = tag(i);
      std::string big(100, static_cast<char>('a' + i % 26));
      auto owned = std::make_unique<int>(i);
      Counted counted(i);
      ThrowingMove throwing(i);
      SelfPointer selfp(i);
      std::array<std::int64_t, 16> wide{};  // larger than a record's inline room
      wide.fill(i);
      goro::go([p, i, small] {
        p->park();
        if (small != tag(i)) p->bad.fetch_add(1);
        p->exited.done();
      });
      goro::go([p, i, big] {
        p->park();
        if (big != std::string(100, static_cast<char>('a' + i % 26))) p->bad.fetch_add(1);
        p->exited.done();
      });
      goro::go([p, i, counted, owned = std::move(owned)] {
        p->park();
        if (counted.v != i || *owned != i) p->bad.fetch_add(1);
        p->exited.done();
      });
      goro::go([p, i, throwing, wide] {
        p->park();
        if (throwing.v != i || wide[15] != i) p->bad.fetch_add(1);
        p->exited.done();
      });
      goro::go([p, i, selfp] {
        p->park();
        if (!selfp.intact(i)) p->bad.fetch_add(1);
        p->exited.done();
      });
    };
    sh.started.add(5 * n);
    sh.exited.add(5 * n);
    for (int i = 0; i < n; ++i) spawn_all(i);
    sh.started.wait();
    sh.gate.close();
    sh.exited.wait();
    EXPECT_EQ(sh.bad.load(), 0);
  });
  EXPECT_EQ(Counted::live.load(), 0) << "a function object was destroyed twice or never";
}

TEST_P(StackTest, FunctionObjectsOfGoroutinesThatNeverRanAreDestroyedOnce) {
  // Goroutines still queued when main returns never move: teardown runs
  // them to destroy their function objects (and moves them on the way).
  Counted::live = 0;
  const int n = static_cast<int>(scaled(1000));
  run([n] {
    Counted c(1);
    for (int i = 0; i < n; ++i) {
      goro::go([c] { (void)c; });
    }
  });
  EXPECT_EQ(Counted::live.load(), 0);
}

// MovedAsTheGoroutine's move constructor is user code that runs when the
// goroutine first runs (the function object leaves its spawn record): it
// must run as that goroutine, which may ask for its id or park on a lock.
struct MovedAsTheGoroutine {
  goro::Mutex* mu;              // locked by the move when not null
  std::atomic<bool>* locking;   // set just before that lock
  std::atomic<int>* bad;
  goro::WaitGroup* done;
  std::uint64_t moved_in = 0;   // goroutine_id() as the last move saw it
  MovedAsTheGoroutine(goro::Mutex* m, std::atomic<bool>* l, std::atomic<int>* b, goro::WaitGroup* d)
      : mu(m), locking(l), bad(b), done(d) {}
  MovedAsTheGoroutine(const MovedAsTheGoroutine& o) = default;
  MovedAsTheGoroutine(MovedAsTheGoroutine&& o) noexcept
      : mu(o.mu), locking(o.locking), bad(o.bad), done(o.done), moved_in(goro::goroutine_id()) {
    if (mu != nullptr) {
      locking->store(true);
      mu->lock();
      mu->unlock();
    }
  }
  void operator()() const {
    if (moved_in == 0 || moved_in != goro::goroutine_id()) bad->fetch_add(1);
    done->done();
  }
};

TEST_P(StackTest, MoveConstructorsRunAsTheNewGoroutine) {
  const int n = static_cast<int>(scaled(2000));
  run([n] {
    std::atomic<int> bad{0};
    std::atomic<bool> locking{false};
    goro::WaitGroup done;
    done.add(n);
    const MovedAsTheGoroutine f(nullptr, &locking, &bad, &done);
    for (int i = 0; i < n; ++i) goro::go(f);  // copied here; moved at the first run
    done.wait();
    EXPECT_EQ(bad.load(), 0) << "a move constructor ran outside the goroutine it moved into";
  });
}

TEST_P(StackTest, AMoveConstructorMayPark) {
  // The goroutine's first run moves its function object, whose move
  // constructor waits for a lock main holds. Run on g0, that wait would put
  // the thread (and its P: with one P, the whole program) to sleep.
  run([] {
    std::atomic<int> bad{0};
    std::atomic<bool> locking{false};
    goro::WaitGroup done;
    goro::Mutex mu;
    done.add(1);
    mu.lock();
    const MovedAsTheGoroutine f(&mu, &locking, &bad, &done);
    goro::go(f);
    while (!locking.load()) goro::yield();
    mu.unlock();
    done.wait();
    EXPECT_EQ(bad.load(), 0);
  });
}

TEST_P(StackTest, AParkedGoroutineCostsAboutOnePage) {
  if (goro_test::kUnderSanitizer) GTEST_SKIP() << "sanitizers keep their own shadow memory";
  const std::int64_t n = scaled(20'000);
  run([n] {
    const long before = rss_kb();
    Parked parked(n);
    const double bytes_per_g = static_cast<double>(rss_kb() - before) * 1024.0 / static_cast<double>(n);
    parked.release();
    // Its stack's top page holds its frames and its record; the spawn
    // record it started from went back to the free list.
    EXPECT_LT(bytes_per_g, 4096 + 256) << "bytes per parked goroutine";
  });
}

// A listing of all goroutines racing with goroutines' first runs (each
// moves from its spawn record into its stack's record) lists each exactly
// once: none missed because it moved past the listing, none twice.
TEST_P(StackTest, ListingsSeeEachGoroutineOnceWhileGoroutinesStart) {
  const int spawners = 4;
  const std::int64_t per_spawner = scaled(3000);
  run([&] {
    goro::Chan<goro::Unit> gate(0);
    goro::WaitGroup exited;
    std::atomic<std::int64_t> spawned{0};
    std::atomic<int> spawning{spawners};
    exited.add(spawners * per_spawner);
    const int line = __LINE__ + 4;  // the go() below
    for (int s = 0; s < spawners; ++s) {
      goro::go([&, gate] {
        for (std::int64_t i = 0; i < per_spawner; ++i) {
          goro::go([&, gate]() mutable {
            gate.recv();
            exited.done();
          });
          spawned.fetch_add(1);
          if (i % 16 == 0) goro::yield();
        }
        spawning.fetch_sub(1);
      });
    }
    const std::string site = "stack_test.cpp:" + std::to_string(line);
    std::atomic<int> failures{0};
    std::atomic<int> listings{0};
    // From a plain thread (it runs beside the Ps even with one P) and from
    // a goroutine, with and without stacks.
    auto list = [&](bool with_stacks) {
      const std::int64_t before = spawned.load();
      const std::vector<goro::GoroutineInfo> all = goro::goroutines(with_stacks);
      const std::int64_t after = spawned.load();
      std::set<std::uint64_t> ids;
      std::int64_t ours = 0;
      for (const goro::GoroutineInfo& g : all) {
        if (!ids.insert(g.id).second) {
          ADD_FAILURE() << "goroutine " << g.id << " listed twice";
          failures.fetch_add(1);
        }
        ours += g.created_at.size() >= site.size() &&
                g.created_at.compare(g.created_at.size() - site.size(), site.size(), site) == 0;
      }
      // Each spawner may have one spawned goroutine it has not counted yet.
      if (ours < before || ours > after + spawners) {
        ADD_FAILURE() << "listed " << ours << " goroutines; " << before << " existed before, " << after << " after";
        failures.fetch_add(1);
      }
      listings.fetch_add(1);
    };
    std::thread t([&] {
      bool with_stacks = false;
      while (spawning.load() > 0) {
        list(with_stacks);
        with_stacks = !with_stacks;
      }
    });
    while (spawning.load() > 0) list(true);
    t.join();
    list(true);
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(listings.load(), 1);
    gate.close();
    exited.wait();
  });
}

}  // namespace
