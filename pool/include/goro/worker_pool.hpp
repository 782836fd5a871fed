// WorkerPool: a fixed set of worker goroutines fed from a bounded queue:
// Go's worker-pool pattern (a buffered jobs channel, N goroutines ranging
// over it, a WaitGroup to join them), with results and a shutdown that
// loses nothing.
//
//   goro::WorkerPool pool(4, 64);                       // 4 workers, 64 queued jobs at most
//   goro::Future<int> f = pool.submit([] { return 42; });
//   f.get();                                            // 42, or the job's exception
//   pool.shutdown();                                    // run what is queued, join the workers
//
// Contract:
//   - submit(f) queues the job and returns its Future. While the queue is
//     full the submitter parks ("chan send") until a worker frees a slot:
//     back-pressure, so memory stays bounded by workers + queue_capacity +
//     the number of parked submitters. queue_capacity 0 means a hand-off:
//     submit() returns once a worker has taken the job.
//   - try_submit(f) never parks: nullopt if the queue is full. The function
//     object is consumed either way.
//   - shutdown(): accept nothing more (submit throws PoolClosed), run every
//     queued job, join the workers. shutdown_now(): accept nothing more,
//     cancel the jobs still queued (their Futures throw Cancelled), let the
//     running ones finish, join. Both may be called any number of times,
//     concurrently, from goroutines or plain threads; each call returns once
//     the workers have exited. shutdown_now() after shutdown() (or during
//     it) cancels what the graceful one had not started yet. Called from one
//     of the pool's own jobs they do not wait (a worker cannot join itself).
//   - A submit() that had passed the door before shutdown began (it may be
//     parked on a full queue) still queues its job: the job runs, or under
//     shutdown_now is cancelled. One that comes later throws PoolClosed and
//     yields no Future. So every job is accounted for exactly once: its
//     Future gets a value, the job's exception, or Cancelled; or its submit
//     threw PoolClosed.
//   - A job's exception reaches its Future; the worker goes on.
//   - The destructor does shutdown(). Destroy the pool inside run().
//   - As with any bounded pool (and Go's pattern), a job that submits to its
//     own pool, or get()s another job of it, can deadlock once every worker
//     does so: give such work its own pool or an ErrGroup.
//   - Every member may be called from goroutines and from plain threads
//     while run() is active. The pool must be created inside run() (it
//     spawns its workers).
// Wait reasons: a submitter parked on a full queue "chan send", an idle
// worker "chan receive", shutdown() "sync.WaitGroup.Wait", get() "goro.Future.Get".
//
// Memory ordering: submit() happens before the job starts; the job's
// completion happens before its Future's get() returns; every job's
// completion happens before shutdown()/shutdown_now() returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "goro/future.hpp"

namespace goro {

// PoolClosed is thrown by submit()/try_submit() once shutdown has begun.
// A std::runtime_error, like Cancelled: an expected outcome, not a bug.
struct PoolClosed : std::runtime_error {
  PoolClosed() : std::runtime_error("goro: submit on a WorkerPool that is shut down") {}
  using std::runtime_error::runtime_error;
};

// PoolStats are the pool's counters. Each is exact; stats() reads them one
// after another, so under concurrent activity they are not one snapshot.
// Once the pool is quiet (every submit returned, every job finished):
// submitted == completed + failed + cancelled, and queued == active == 0.
// In between, submitted - (completed + failed + cancelled + active + queued)
// are jobs being handed over: held by a submitter parked on a full queue,
// or just taken by a worker that has not started them yet.
struct PoolStats {
  std::uint64_t submitted = 0;  // jobs accepted: their submit() passed the door and did not fail
  std::uint64_t completed = 0;  // jobs that ran and returned
  std::uint64_t failed = 0;     // jobs that ran and threw
  std::uint64_t cancelled = 0;  // jobs dropped unrun by shutdown_now
  std::uint64_t queued = 0;     // jobs waiting in the queue now (len of the jobs channel; <= queue_capacity)
  std::uint64_t active = 0;     // jobs running now
};

namespace detail {
class PoolCore;
}

class WorkerPool {
 public:
  // WorkerPool starts `workers` worker goroutines (at least 1, else
  // std::invalid_argument) over a queue of `queue_capacity` jobs. Inside
  // run() only (std::logic_error otherwise).
  explicit WorkerPool(std::size_t workers, std::size_t queue_capacity = 0);
  // ~WorkerPool: shutdown().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // submit queues f() and returns its Future (R: f's decayed result type,
  // void allowed). Parks while the queue is full. Throws PoolClosed once
  // shutdown has begun (f is then destroyed unrun).
  // `where` (the call site) is what dumps show for the worker running the
  // job ("job submitted by F").
  template <class F>
  Future<detail::job_result_t<F>> submit(F f, SourceLocation where = SourceLocation::current()) {
    using R = detail::job_result_t<F>;
    auto* task = new detail::Task<std::decay_t<F>, R>(std::move(f));
    task->set_site(where);
    Future<R> future(detail::AdoptState{}, task);
    submit_job(detail::JobRef(task));
    return future;
  }

  // try_submit queues f() if there is room now (for an unbuffered pool: if
  // a worker is waiting); nullopt otherwise. Never parks. Throws PoolClosed
  // once shutdown has begun. f is consumed either way.
  template <class F>
  [[nodiscard]] std::optional<Future<detail::job_result_t<F>>> try_submit(
      F f, SourceLocation where = SourceLocation::current()) {
    using R = detail::job_result_t<F>;
    auto* task = new detail::Task<std::decay_t<F>, R>(std::move(f));
    task->set_site(where);
    Future<R> future(detail::AdoptState{}, task);
    if (!try_submit_job(detail::JobRef(task))) return std::nullopt;
    return future;
  }

  // shutdown: graceful. Accept nothing more, run every queued job, join
  // the workers. Parks. Idempotent.
  void shutdown();
  // shutdown_now: accept nothing more, cancel what is queued, let running
  // jobs finish, join the workers. Parks. Idempotent.
  void shutdown_now();

  // stats reads the counters (see PoolStats). Never parks.
  PoolStats stats() const noexcept;
  // closed: shutdown has begun.
  bool closed() const noexcept;
  std::size_t workers() const noexcept;
  std::size_t queue_capacity() const noexcept;

 private:
  void submit_job(detail::JobRef job);
  bool try_submit_job(detail::JobRef job);

  std::shared_ptr<detail::PoolCore> core_;  // shared with the workers
};

}  // namespace goro
