// worker_pool.cpp: the examples of docs/pool.md.
//   1. Job distribution: a WorkerPool spreads jobs over its workers.
//   2. Bounded concurrency: never more than `workers` jobs run, never more
//      than `queue_capacity` wait; a fast submitter is held back.
//   3. Graceful vs immediate shutdown.
//   4. Fan-out/fan-in with plain channels: N workers read one channel,
//      merge() joins their outputs.
//   5. An ErrGroup whose first error stops the siblings.
// Built and run by the tests (exits 0 when every check holds).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

bool check(bool ok, const char* what) {
  std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
  return ok;
}

// 1. Four workers, a queue of 16, 100 jobs. Each job parks for a moment
// (as a job waiting on I/O would), so the free workers take the next ones.
bool job_distribution() {
  std::printf("1. job distribution\n");
  goro::WorkerPool pool(4, 16);
  std::vector<goro::Future<std::uint64_t>> futures;
  for (int i = 0; i < 100; ++i) {
    futures.push_back(pool.submit([] {
      goro::sleep_for(1ms);
      return goro::goroutine_id();  // which worker ran it
    }));
  }
  std::map<std::uint64_t, int> per_worker;
  for (auto& f : futures) ++per_worker[f.get()];
  for (const auto& [worker, jobs] : per_worker) {
    std::printf("  worker goroutine %llu ran %d jobs\n", static_cast<unsigned long long>(worker), jobs);
  }
  const goro::PoolStats s = pool.stats();
  return check(per_worker.size() == 4, "every worker took jobs") &&
         check(s.submitted == 100 && s.completed == 100, "100 submitted, 100 completed");
}

// 2. Two workers, a queue of 4. The submitter is much faster than the jobs,
// so submit() parks whenever the queue is full: memory stays flat.
bool bounded_concurrency() {
  std::printf("2. bounded concurrency and back-pressure\n");
  goro::WorkerPool pool(2, 4);
  std::atomic<int> running{0}, max_running{0};
  std::uint64_t max_queued = 0;
  std::vector<goro::Future<void>> futures;
  for (int i = 0; i < 50; ++i) {
    futures.push_back(pool.submit([&] {
      const int now = running.fetch_add(1) + 1;
      int seen = max_running.load();
      while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
      }
      goro::sleep_for(200us);
      running.fetch_sub(1);
    }));
    max_queued = std::max(max_queued, pool.stats().queued);
  }
  for (auto& f : futures) f.get();
  std::printf("  at most %d jobs ran at once, at most %llu waited in the queue\n", max_running.load(),
              static_cast<unsigned long long>(max_queued));
  return check(max_running.load() <= 2, "never more jobs running than workers") &&
         check(max_queued <= 4, "never more jobs queued than the queue holds");
}

// 3. shutdown() finishes the queue; shutdown_now() cancels it. Either way
// nothing is accepted afterwards.
bool graceful_vs_immediate() {
  std::printf("3. graceful vs immediate shutdown\n");
  std::atomic<int> ran{0};
  auto job = [&ran] {
    goro::sleep_for(1ms);
    ran.fetch_add(1);
  };

  goro::WorkerPool graceful(1, 10);
  for (int i = 0; i < 10; ++i) graceful.submit(job);
  graceful.shutdown();  // returns when all 10 have run
  const int graceful_ran = ran.exchange(0);

  // The first job holds its worker until the queued ones are cancelled:
  // were it to finish first, the worker would take the next job, however
  // briefly, and on a slow machine (ASan) it does.
  goro::WorkerPool immediate(1, 10);
  goro::Chan<goro::Unit> started(1);
  goro::Chan<goro::Unit> release(0);
  goro::Future<void> first = immediate.submit([&, started, release] {
    started.send(goro::Unit{});
    release.recv();
    job();
  });
  std::vector<goro::Future<void>> rest;
  for (int i = 0; i < 9; ++i) rest.push_back(immediate.submit(job));
  started.recv();  // the first job is running
  goro::Chan<goro::Unit> joined(0);
  goro::go([&immediate, joined] {
    immediate.shutdown_now();  // cancels the 9 queued ones, then waits for the first
    joined.close();
  });
  int cancelled = 0;
  for (auto& f : rest) {
    try {
      f.get();
    } catch (const goro::Cancelled&) {
      ++cancelled;
    }
  }
  release.close();  // now the running job may finish
  joined.recv();
  bool closed = false;
  try {
    immediate.submit(job);
  } catch (const goro::PoolClosed&) {
    closed = true;
  }
  std::printf("  shutdown(): %d of 10 ran; shutdown_now(): %d ran, %d cancelled\n", graceful_ran, ran.load(),
              cancelled);
  return check(graceful_ran == 10, "shutdown() runs every queued job") &&
         check(ran.load() == 1 && cancelled == 9,
               "shutdown_now() lets the running job finish, cancels the rest") &&
         check(first.ready(), "the running job's Future has its value") &&
         check(closed, "submit after shutdown throws PoolClosed");
}

// 4. Go's fan-out/fan-in with channels alone: one jobs channel read by N
// workers (each value goes to exactly one of them), one output channel per
// worker, merge() to read them all as one.
bool fan_out_fan_in() {
  std::printf("4. fan-out / fan-in\n");
  goro::Chan<int> jobs(8);
  goro::go([jobs] {
    for (int i = 1; i <= 1000; ++i) jobs.send(i);
    jobs.close();
  });
  std::vector<goro::Chan<int>> outputs;
  for (int w = 0; w < 4; ++w) {
    goro::Chan<int> out(0);
    outputs.push_back(out);
    goro::go([jobs, out] {
      for (int j : jobs) out.send(j * 2);  // fan-out: the workers share `jobs`
      out.close();
    });
  }
  long sum = 0;
  int count = 0;
  for (int v : goro::merge(outputs)) {  // fan-in: ends when all 4 outputs are closed
    sum += v;
    ++count;
  }
  std::printf("  %d results, sum %ld\n", count, sum);
  return check(count == 1000 && sum == 2 * 500500, "every job processed exactly once");
}

// 5. Five goroutines search in parallel; one fails. The failure cancels the
// group's context, the others notice ctx.done() and stop early, and wait()
// returns the first error.
bool errgroup_first_error() {
  std::printf("5. errgroup: the first error stops the siblings\n");
  goro::ErrGroup g;
  g.set_limit(5);
  const goro::Context ctx = g.context();
  std::atomic<int> stopped_early{0};
  for (int part = 0; part < 5; ++part) {
    g.go([part, ctx, &stopped_early] {
      if (part == 3) throw std::runtime_error("part 3: corrupt input");
      for (int step = 0; step < 1000; ++step) {  // a long task, polite to cancellation
        bool cancelled = false;
        goro::select(goro::on_recv(ctx.done(), [&] { cancelled = true; }), goro::on_recv(goro::after(1ms)));
        if (cancelled) {
          stopped_early.fetch_add(1);
          return;
        }
      }
    });
  }
  std::string error = "none";
  if (std::exception_ptr e = g.wait()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      error = ex.what();
    }
  }
  std::printf("  wait() returned \"%s\"; %d siblings stopped early\n", error.c_str(), stopped_early.load());
  return check(error == "part 3: corrupt input", "wait() returns the first error") &&
         check(stopped_early.load() == 4, "every sibling saw the context cancelled");
}

}  // namespace

int main() {
  return goro::run([] {
    bool ok = job_distribution();
    ok = bounded_concurrency() && ok;
    ok = graceful_vs_immediate() && ok;
    ok = fan_out_fan_in() && ok;
    ok = errgroup_first_error() && ok;
    std::printf("%s\n", ok ? "all checks passed" : "SOME CHECKS FAILED");
    return ok ? 0 : 1;
  });
}
