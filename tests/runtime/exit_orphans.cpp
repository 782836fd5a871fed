// exit_orphans: programs whose main returns while a goroutine is parked on
// a primitive that main has already destroyed (the goroutine captured
// `this` of the object that held it). run() must unwind the goroutine
// without touching the dead primitive, print "run() returned" and exit 0 at
// once; CTest runs each shape (argv[1]), and under the asan preset ASan
// aborts the process on any use of freed memory.
//
// "chan" is the program of the issue, verbatim apart from the shape switch
// and a wait until the worker is parked: main returns with every worker
// parked (a worker that had not started yet would run, and touch the dead
// object, in its own code, on another P, which is the user's bug).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "goro/goro.hpp"
#include "goro/net.hpp"

namespace {

using namespace std::chrono_literals;

// wait_parked waits until n goroutines besides the caller are parked (the
// sleeps of the shapes give them time; this makes sure, on a loaded
// machine and under the sanitizers).
void wait_parked(int n) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  for (;;) {
    int parked = 0;
    for (const goro::GoroutineInfo& g : goro::goroutines()) {
      if (g.id != goro::goroutine_id() && g.state == goro::GoroutineState::waiting) ++parked;
    }
    if (parked >= n) return;
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "exit_orphans: %d of %d goroutines parked after 60 s\n", parked, n);
      std::abort();
    }
    goro::sleep_for(1ms);
  }
}

// The program: the worker is parked in acks.send when Server's
// destructor frees both channels.
struct Server {
  goro::Chan<int> requests{8}, acks{0};
  void start() { goro::go([this] { for (int r : requests) acks.send(r); }); }
  void stop() { /* forgot requests.close() */ }
};

void chan_shape() {
  goro::run([] {
    Server s;
    s.start();
    s.requests.send(1);
    s.stop();
    goro::sleep_for(std::chrono::milliseconds(5));
    wait_parked(1);
  });
}

// The same shape with a Mutex: the worker waits for a lock main holds.
struct MutexServer {
  goro::Mutex mu;
  int hits = 0;
  void start() {
    goro::go([this] {
      std::lock_guard<goro::Mutex> l(mu);
      ++hits;
    });
  }
};

void mutex_shape() {
  goro::run([] {
    auto s = std::make_unique<MutexServer>();  // on the heap: ASan sees it die
    s->mu.lock();
    s->start();
    goro::sleep_for(5ms);
    wait_parked(1);
    // Destroyed locked, with the worker parked in lock().
  });
}

// With a WaitGroup: the worker waits for jobs that never finish.
struct WaitGroupServer {
  goro::WaitGroup pending;
  void start() {
    pending.add(1);
    goro::go([this] { pending.wait(); });
  }
};

void waitgroup_shape() {
  goro::run([] {
    auto s = std::make_unique<WaitGroupServer>();
    s->start();
    goro::sleep_for(5ms);
    wait_parked(1);
  });
}

// With a select: the worker waits on two members, neither of which fires.
struct SelectServer {
  goro::Chan<int> requests{0}, quit{0};
  void start() {
    goro::go([this] {
      for (;;) {
        bool done = false;
        goro::select(goro::on_recv(requests, [](std::optional<int>) {}),
                     goro::on_recv(quit, [&](std::optional<int>) { done = true; }));
        if (done) return;
      }
    });
  }
};

void select_shape() {
  goro::run([] {
    auto s = std::make_unique<SelectServer>();
    s->start();
    goro::sleep_for(5ms);
    wait_parked(1);
  });
}

// A select parked on a dead member and a channel that outlives the object:
// it wakes normally after the member died, and must not touch it.
void select_wakes_after_death_shape() {
  goro::Chan<int> outside(0);
  goro::run([&] {
    goro::Chan<int> got(1);
    {
      SelectServer s;
      goro::go([&s, outside, got] {
        goro::select(goro::on_recv(s.requests), goro::on_recv(outside));
        got.send(1);
      });
      goro::sleep_for(5ms);
      wait_parked(1);
    }
    outside.send(1);
    got.recv();
  });
}

// The other primitives, each destroyed with a goroutine parked on it. The
// Cond's Mutex outlives them: the Cond's waiter relocks it while unwinding,
// and its unique_lock unlocks it (docs/guide.md).
goro::Mutex g_cond_mu;
struct Others {
  goro::Cond cond{g_cond_mu};
  goro::RWMutex rw;
  goro::Semaphore sem{1};
  goro::Once once;
};

void others_shape() {
  goro::run([] {
    auto owner = std::make_unique<Others>();
    Others& o = *owner;
    o.rw.lock();
    o.sem.acquire(1);
    goro::Chan<goro::Unit> in_once(0);
    goro::go([&o] {
      std::unique_lock<goro::Mutex> l(g_cond_mu);
      o.cond.wait();
    });
    goro::go([&o] { std::shared_lock<goro::RWMutex> l(o.rw); });
    goro::go([&o] { std::lock_guard<goro::RWMutex> l(o.rw); });
    goro::go([&o] { o.sem.acquire(1); });
    goro::go([&o, in_once] {
      o.once.call([&] {
        in_once.send({});
        goro::sleep_for(std::chrono::hours(1));
      });
    });
    in_once.recv();
    goro::go([&o] { o.once.call([] {}); });
    goro::sleep_for(5ms);
    wait_parked(6);
  });
}

// Main hands over and returns at once: the woken goroutine has not run yet
// when main's objects die, and teardown unwinds it out of the primitive
// it was woken from (nothing of which may be touched any more).
void woken_shape() {
  goro::run([] {
    struct Objects {
      goro::Mutex mu;
      goro::WaitGroup wg;
      goro::Semaphore sem{1};
      goro::Chan<int> ch{0};
    };
    auto objects = std::make_unique<Objects>();  // on the heap: ASan sees them die
    goro::Mutex& mu = objects->mu;
    goro::WaitGroup& wg = objects->wg;
    goro::Semaphore& sem = objects->sem;
    goro::Chan<int>& ch = objects->ch;
    mu.lock();
    wg.add(1);
    sem.acquire(1);
    goro::go([&] { std::lock_guard<goro::Mutex> l(mu); });
    goro::go([&] { wg.wait(); });
    goro::go([&] { sem.acquire(1); });
    goro::go([&] { (void)ch.recv(); });
    goro::sleep_for(5ms);
    wait_parked(4);
    mu.unlock();
    wg.done();
    sem.release(1);
    ch.send(1);
  }, goro::Options{.procs = 1});
}

// With sockets: one worker parked in accept(), one in read(), on members
// of an object main destroys. Destroying a Conn or Listener closes it,
// which wakes them: each call must come back to its own reference to the
// descriptor, not to the dead object (each worker then gets Go's "use of
// closed network connection", or is unwound by the teardown first).
struct NetServer {
  goro::net::Listener ln = goro::net::listen("tcp", "127.0.0.1:0");
  goro::net::Conn client = goro::net::dial("tcp", ln.addr());
  goro::net::Conn server = ln.accept();
  void start() {
    goro::go([this] {
      try {
        (void)ln.accept();
      } catch (const goro::net::Error&) {
      }
    });
    goro::go([this] {
      char buf[16];
      try {
        (void)server.read(buf, sizeof buf);
      } catch (const goro::net::Error&) {
      }
    });
  }
};

void net_shape() {
  for (int i = 0; i < 10; ++i) {  // the wake-up races main's return: try it often
    goro::run([] {
      auto s = std::make_unique<NetServer>();  // on the heap: ASan sees it die
      s->start();
      goro::sleep_for(5ms);
      wait_parked(2);
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  struct Shape {
    std::function<void()> run;
    std::int64_t unwound;  // goroutines each run leaves for the teardown (-1: any)
  };
  const std::map<std::string, Shape> shapes = {
      {"chan", {chan_shape, 1}},
      {"mutex", {mutex_shape, 1}},
      {"waitgroup", {waitgroup_shape, 1}},
      {"select", {select_shape, 1}},
      {"select_wakes", {select_wakes_after_death_shape, 0}},
      {"others", {others_shape, 6}},
      // Usually all 4 are unwound; but a preemption of main at one of its
      // wake-ups (sysmon, under the sanitizers) lets some finish first.
      {"woken", {woken_shape, -1}},
      // Closing wakes the workers, which may finish before the teardown.
      {"net", {net_shape, -1}},
  };
  const auto it = argc == 2 ? shapes.find(argv[1]) : shapes.end();
  if (it == shapes.end()) {
    std::fprintf(stderr, "usage: exit_orphans chan|mutex|waitgroup|select|select_wakes|others|woken|net\n");
    return 2;
  }
  for (int round = 0; round < 3; ++round) {  // run() may be called again
    it->second.run();
    if (it->second.unwound >= 0 && goro::last_run_unwound() != it->second.unwound) {
      std::fprintf(stderr, "expected %lld goroutines left to unwind, got %lld\n",
                   static_cast<long long>(it->second.unwound), static_cast<long long>(goro::last_run_unwound()));
      return 1;
    }
  }
  std::puts("run() returned");
  return 0;
}
