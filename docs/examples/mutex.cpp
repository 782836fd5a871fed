// mutex.cpp: the examples of docs/sync.md.
//   1. A critical section: goroutines updating shared state under a Mutex.
//   2. RWMutex for a read-mostly cache.
//   3. A lock-ordering deadlock, detected safely with try_lock, and how a
//      consistent lock order (or std::scoped_lock) avoids it.
//   4. "Mutex or channel?": the same counter service written both ways.
// Built and run by the tests (exits 0 when every check holds).
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "goro/goro.hpp"

namespace {

bool check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
  return ok;
}

// 1. A critical section. Go:
//      mu.Lock(); balance += amount; mu.Unlock()
// goro: the same Mutex, with std::lock_guard as the `defer mu.Unlock()`.
bool critical_section() {
  std::printf("1. a critical section\n");
  goro::Mutex mu;
  std::int64_t balance = 0;  // guarded by mu
  constexpr int kGoroutines = 100, kDeposits = 1000;
  goro::WaitGroup wg;
  wg.add(kGoroutines);
  for (int i = 0; i < kGoroutines; ++i) {
    goro::go([&] {
      for (int d = 0; d < kDeposits; ++d) {
        std::lock_guard<goro::Mutex> l(mu);  // parks the goroutine, not the thread, while another holds it
        balance += 1;
      }
      wg.done();
    });
  }
  wg.wait();
  std::printf("  %d goroutines x %d deposits: balance %lld\n", kGoroutines, kDeposits,
              static_cast<long long>(balance));
  return check(balance == kGoroutines * kDeposits, "no deposit lost");
}

// 2. A read-mostly cache: lookups share the lock; a miss takes the write
// lock, checks again (another goroutine may have filled it meanwhile), and
// fills it. A waiting writer holds back new readers, so fills never starve.
class Cache {
 public:
  std::string get(int key) {
    {
      std::shared_lock<goro::RWMutex> l(mu_);
      if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    }
    std::lock_guard<goro::RWMutex> l(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    ++fills_;
    return entries_[key] = "value-" + std::to_string(key);  // the expensive computation
  }
  int fills() {
    std::shared_lock<goro::RWMutex> l(mu_);
    return fills_;
  }

 private:
  goro::RWMutex mu_;
  std::unordered_map<int, std::string> entries_;  // guarded by mu_
  int fills_ = 0;                                 // guarded by mu_
};

bool read_mostly_cache() {
  std::printf("2. RWMutex for a read-mostly cache\n");
  Cache cache;
  constexpr int kReaders = 50, kLookups = 2000, kKeys = 10;
  goro::WaitGroup wg;
  std::atomic<int> wrong{0};
  wg.add(kReaders);
  for (int r = 0; r < kReaders; ++r) {
    goro::go([&, r] {
      for (int i = 0; i < kLookups; ++i) {
        const int key = (r + i) % kKeys;
        if (cache.get(key) != "value-" + std::to_string(key)) wrong.fetch_add(1);
      }
      wg.done();
    });
  }
  wg.wait();
  std::printf("  %d lookups, %d fills\n", kReaders * kLookups, cache.fills());
  return check(wrong.load() == 0, "every lookup saw its value") &&
         check(cache.fills() == kKeys, "each key was computed once");
}

// 3. Lock ordering. transfer(a, b) locks a then b; two transfers in opposite
// directions can each hold one lock and wait for the other forever. Here
// the losing interleaving is forced with channels, and try_lock stands in
// for the lock() that would deadlock, so the program can report it:
//   1. T1 locks A; T2 locks B;
//   2. T1 wants B (held by T2), T2 wants A (held by T1): with lock() both
//      would park forever ("all goroutines are asleep").
// The fix: every goroutine takes the locks in one global order (here: by
// account id), so no cycle of waiting can form. std::scoped_lock does the
// same job with its deadlock-avoidance algorithm (lock, then try_lock the
// rest, backing off on failure).
struct Account {
  explicit Account(int account_id) : id(account_id) {}
  const int id;
  goro::Mutex mu;
  std::int64_t balance = 100;  // guarded by mu
};

bool lock_ordering() {
  std::printf("3. a lock-ordering deadlock and how to avoid it\n");
  Account a{1}, b{2};
  goro::Chan<goro::Unit> t1_holds(1), t2_holds(1), t1_tried(1), t2_tried(1);
  goro::Chan<bool> t1_would_block(1), t2_would_block(1);
  // Opposite orders, with the interleaving forced:
  goro::go([&, t1_holds, t2_holds, t1_tried, t2_tried, t1_would_block]() mutable {
    a.mu.lock();
    t1_holds.send(goro::Unit{});
    t2_holds.recv();                   // T2 holds B now
    const bool got = b.mu.try_lock();  // lock() here would park forever
    t1_tried.send(goro::Unit{});
    t2_tried.recv();  // keep A until T2 has tried it too
    if (got) b.mu.unlock();
    a.mu.unlock();
    t1_would_block.send(!got);
  });
  goro::go([&, t1_holds, t2_holds, t1_tried, t2_tried, t2_would_block]() mutable {
    b.mu.lock();
    t2_holds.send(goro::Unit{});
    t1_holds.recv();  // T1 holds A now
    const bool got = a.mu.try_lock();
    t2_tried.send(goro::Unit{});
    t1_tried.recv();
    if (got) a.mu.unlock();
    b.mu.unlock();
    t2_would_block.send(!got);
  });
  const bool deadlock = *t1_would_block.recv() && *t2_would_block.recv();
  std::printf("  opposite lock orders: each holds one lock and wants the other: %s\n",
              deadlock ? "a deadlock" : "no deadlock");

  // Consistent order: lock the lower id first, whatever the direction.
  auto transfer = [](Account& from, Account& to, std::int64_t amount) {
    Account& first = from.id < to.id ? from : to;
    Account& second = from.id < to.id ? to : from;
    std::lock_guard<goro::Mutex> l1(first.mu);
    std::lock_guard<goro::Mutex> l2(second.mu);
    from.balance -= amount;
    to.balance += amount;
  };
  // Or let the standard library pick a safe order.
  auto transfer_scoped = [](Account& from, Account& to, std::int64_t amount) {
    std::scoped_lock l(from.mu, to.mu);
    from.balance -= amount;
    to.balance += amount;
  };
  goro::WaitGroup wg;
  wg.add(4);
  goro::go([&] {
    for (int i = 0; i < 1000; ++i) transfer(a, b, 1);
    wg.done();
  });
  goro::go([&] {
    for (int i = 0; i < 1000; ++i) transfer(b, a, 1);
    wg.done();
  });
  goro::go([&] {
    for (int i = 0; i < 1000; ++i) transfer_scoped(a, b, 2);
    wg.done();
  });
  goro::go([&] {
    for (int i = 0; i < 1000; ++i) transfer_scoped(b, a, 2);
    wg.done();
  });
  wg.wait();  // would never return if the transfers could deadlock
  std::int64_t total;
  {
    std::scoped_lock l(a.mu, b.mu);
    total = a.balance + b.balance;
  }
  std::printf("  4000 transfers both ways with one lock order: total %lld\n", static_cast<long long>(total));
  return check(deadlock, "opposite orders deadlock (detected with try_lock)") &&
         check(total == 200, "one lock order: every transfer finished, money conserved");
}

// 4. Mutex or channel? Go's advice: "share memory by communicating", but
// use a Mutex when it is simply state that several goroutines update.
// The same hit counter, both ways:
//   - Mutex: the map is shared, every update takes the lock. Simple, fast,
//     and the right tool for "guard this state".
//   - Channel: one goroutine owns the map; others send it requests. Better
//     when the owner has work of its own to do (batching, persistence,
//     ordering), or when the requests are events that something else
//     should also see; it costs a goroutine and a message per update.
class MutexCounter {
 public:
  void hit(const std::string& page) {
    std::lock_guard<goro::Mutex> l(mu_);
    ++hits_[page];
  }
  std::map<std::string, int> snapshot() {
    std::lock_guard<goro::Mutex> l(mu_);
    return hits_;
  }

 private:
  goro::Mutex mu_;
  std::map<std::string, int> hits_;  // guarded by mu_
};

class ChannelCounter {
 public:
  ChannelCounter() {
    goro::go([hits = hits_, snapshots = snapshots_, done = done_]() mutable {
      std::map<std::string, int> counts;  // owned by this goroutine: no lock
      for (;;) {
        bool closed = false;
        goro::select(
            goro::on_recv(hits,
                          [&](std::optional<std::string> page) {
                            if (page) {
                              ++counts[*page];
                            } else {
                              closed = true;
                            }
                          }),
            goro::on_recv(snapshots, [&](std::optional<goro::Chan<std::map<std::string, int>>> reply) {
              if (reply) reply->send(counts);
            }));
        if (closed) break;
      }
      done.close();
    });
  }
  void hit(const std::string& page) { hits_.send(page); }
  std::map<std::string, int> snapshot() {
    goro::Chan<std::map<std::string, int>> reply(1);
    snapshots_.send(reply);
    return *reply.recv();
  }
  void stop() {
    hits_.close();
    done_.recv();  // the owner has exited
  }

 private:
  // Unbuffered: a hit() returns once the owner has taken it, so a snapshot
  // asked for afterwards sees it (a buffered channel could still hold hits
  // when select picks the snapshot request).
  goro::Chan<std::string> hits_{0};
  goro::Chan<goro::Chan<std::map<std::string, int>>> snapshots_{0};
  goro::Chan<goro::Unit> done_{0};
};

template <class Counter>
std::map<std::string, int> count_hits(Counter& counter) {
  const std::vector<std::string> pages = {"/", "/about", "/blog"};
  goro::WaitGroup wg;
  wg.add(30);
  for (int i = 0; i < 30; ++i) {
    goro::go([&, i] {
      for (int j = 0; j < 100; ++j) counter.hit(pages[static_cast<std::size_t>((i + j) % 3)]);
      wg.done();
    });
  }
  wg.wait();
  return counter.snapshot();
}

bool mutex_or_channel() {
  std::printf("4. Mutex or channel?\n");
  MutexCounter with_mutex;
  const auto a = count_hits(with_mutex);
  ChannelCounter with_channel;
  const auto b = count_hits(with_channel);
  with_channel.stop();
  for (const auto& [page, n] : a) std::printf("  %-7s mutex %d, channel %d\n", page.c_str(), n, b.at(page));
  return check(a == b && a.at("/") == 1000, "both count 3000 hits the same way");
}

}  // namespace

int main() {
  return goro::run([] {
    bool ok = critical_section();
    ok = read_mostly_cache() && ok;
    ok = lock_ordering() && ok;
    ok = mutex_or_channel() && ok;
    std::printf(ok ? "all examples passed\n" : "SOME EXAMPLES FAILED\n");
    return ok ? 0 : 1;
  });
}
