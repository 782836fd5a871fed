// where_they_wait: a server-shaped program with 100,000 goroutines parked
// in a few places, and the goroutine profile that shows where. It writes
// the profile (pprof's format) to the file named by its first argument, or
// only checks it when there is none. docs/debugging.md's flame graph was
// made from its profile:
//
//   example_where_they_wait goroutines.pb.gz
//   go tool pprof -http=:8080 goroutines.pb.gz     # View > Flame Graph
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

struct Request {
  int id = 0;
};

// Each function below is where some of them wait; noinline keeps each one
// a frame of its own in builds without debug information.

// A connection's reader waits for the next request from its client.
__attribute__((noinline)) void read_request(goro::Chan<Request>& from_client) {
  while (auto r = from_client.recv()) {
    if (r->id < 0) std::puts("bad request");
  }
}

__attribute__((noinline)) void serve_connection(goro::Chan<Request> from_client) {
  read_request(from_client);
  from_client = {};  // the connection is closed
}

// A worker waits for jobs from the dispatcher.
__attribute__((noinline)) void wait_for_job(goro::Chan<int>& jobs) {
  while (auto j = jobs.recv()) {
    if (*j < 0) std::puts("bad job");
  }
}

__attribute__((noinline)) void worker(goro::Chan<int> jobs) {
  wait_for_job(jobs);
  jobs = {};
}

// A cache entry refreshes itself now and then.
__attribute__((noinline)) void refresh_later(goro::Chan<goro::Unit>& stop) {
  goro::select(goro::on_recv(stop, [](auto) {}), goro::on_recv(goro::after(1h), [](auto) {}));
}

__attribute__((noinline)) void cache_entry(goro::Chan<goro::Unit> stop) {
  refresh_later(stop);
  stop = {};
}

// A few requests wait for the one lock on the session table.
__attribute__((noinline)) void update_session(goro::Mutex& table) {
  std::lock_guard<goro::Mutex> l(table);
  asm volatile("" ::: "memory");  // the update
}

// Under ThreadSanitizer every goroutine costs a mapping of its own (its
// shadow stack), and 100,000 of them would pass the kernel's limit on
// mappings (vm.max_map_count, 65530): a tenth is enough to show the places.
#if defined(__SANITIZE_THREAD__)
constexpr int kScale = 10;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif
#else
constexpr int kScale = 1;
#endif

int main(int argc, char** argv) {
  return goro::run([&]() -> int {
    goro::Chan<Request> clients(0);
    goro::Chan<int> jobs(0);
    goro::Chan<goro::Unit> stop(0);
    goro::Mutex table;
    table.lock();
    goro::WaitGroup done;
    auto spawn = [&](int n, auto f) {
      for (int i = 0; i < n; ++i) {
        done.add(1);
        goro::go([&done, f] {
          f();
          done.done();
        });
      }
    };
    spawn(60000 / kScale, [clients] { serve_connection(clients); });
    spawn(30000 / kScale, [jobs] { worker(jobs); });
    spawn(9000 / kScale, [stop] { cache_entry(stop); });
    spawn(1000 / kScale, [&table] { update_session(table); });
    // Wait until all 100,000 have parked.
    while (goro::sched_stats().parks < 100000 / kScale) goro::sleep_for(1ms);

    std::ostringstream profile;
    goro::write_goroutine_profile(profile);
    const std::string data = profile.str();
    int failures = 0;
    // gzip, and naming the places they wait.
    if (data.size() < 2 || static_cast<unsigned char>(data[0]) != 0x1f || static_cast<unsigned char>(data[1]) != 0x8b) {
      std::puts("the profile is not gzipped");
      ++failures;
    }
    std::ostringstream grouped;
    goro::dump_goroutines(grouped, true);
    for (const char* place : {"read_request", "wait_for_job", "refresh_later", "update_session"}) {
      if (grouped.str().find(place) == std::string::npos) {
        std::printf("the grouped dump does not show %s\n", place);
        ++failures;
      }
    }
    if (argc > 1) {
      std::ofstream(argv[1], std::ios::binary) << data;
      std::printf("goroutine profile written to %s\n", argv[1]);
    }
    clients.close();
    jobs.close();
    stop.close();
    table.unlock();
    done.wait();
    return failures;
  });
}
