// worker_pool.cpp: the worker pool's queue, door and shutdown.
//
// What it is for: running jobs on a fixed number of goroutines with
// back-pressure, and stopping them without losing or repeating a job, no
// matter how submitters, workers and shutdown calls (from goroutines or
// plain threads) interleave.
//
// Pieces (PoolCore, shared by the WorkerPool handle and every worker, so a
// worker never outlives what it uses):
//   jobs_     Chan<JobRef>(queue_capacity): the queue. A JobRef is a
//             move-only ticket that runs or drops its job exactly once
//             (future.hpp); destroying one unrun cancels the job. The
//             channel gives each queued ticket to exactly one receiver.
//   door_     one atomic word: a "closed" bit and the number of submitters
//             currently inside submit() (between passing the door and
//             their send returning).
//   stop_now_ set by shutdown_now(): workers drop, instead of run, what
//             they dequeue from then on.
//   workers_  a WaitGroup: one count per live worker.
//
// Invariants:
//   D  jobs_ is closed exactly once, by whoever brings door_ to "closed,
//      nobody inside" first (the shutdown caller itself, or the last
//      submitter out). So no send can ever meet a closed channel: a sender
//      is inside the door, and the channel is closed only once the door is
//      closed and empty.
//   Q  every ticket that enters jobs_ leaves it exactly once, to a worker
//      (which runs or, under stop_now_, drops it) or to shutdown_now's
//      drain (which drops it): workers receive until jobs_ is closed AND
//      drained, and exit only then.
//   J  a ticket that never enters jobs_ is one whose submit() threw
//      (PoolClosed; its Future was never handed out) or whose try_submit()
//      found no room (it returns nullopt).
// D, Q and J together: every Future handed out resolves exactly once.
//
// submit(job):
//   1. door_.fetch_add(1). If the closed bit was set: leave (step 3) and
//      throw PoolClosed; the job is discarded, no Future escapes.
//   2. jobs_.send(job): parks while the queue is full. Cannot panic: D.
//   3. leave: door_.fetch_sub(1); if that left "closed, nobody inside",
//      close jobs_ (D; a once-flag makes late leavers harmless).
// try_submit: the same with try_send.
// shutdown(now):
//   1. if now: stop_now_ = true (release; workers load it after each receive).
//   2. door_.fetch_or(closed). If nobody was inside, close jobs_ (D);
//      otherwise the last submitter out does (their sends complete because
//      workers keep receiving).
//   3. if now: drain jobs_ with try_recv, dropping each ticket, so queued
//      Futures resolve at once rather than when a worker frees up.
//   4. workers_.wait() (skipped when called from one of the pool's own
//      workers, which would wait for itself).
// worker: for (ticket : jobs_) { stop_now_ ? drop : run }; workers_.done().
//
// Why a submitter parked at shutdown time still gets its job in: it passed
// the door before the door closed, so it was accepted; the workers keep
// receiving until the channel is closed, so its send completes, and the
// job runs (graceful) or is dropped (now). Go code usually adds a quit
// channel and a select to bounce such submitters; that makes every submit
// a two-channel select for the rare benefit of refusing a job that arrived
// a moment before shutdown.
//
// Alternatives rejected:
//   - closing jobs_ in shutdown() directly: a submitter parked in send
//     would get Panic("send on closed channel"), and one about to send
//     would too; the door's count is what makes the close safe.
//   - an RWMutex as the door (submitters read-lock it around the send,
//     shutdown write-locks it): same guarantee, two more atomic operations
//     per submit and a park in shutdown() for every in-flight submitter;
//     the counter lets the last one out do the close instead of waiting.
//   - a Mutex + Cond queue of our own: the channel already parks
//     submitters and workers in FIFO order with hand-off to a parked
//     worker, and is what the Go pattern uses.
//   - one heap block per job plus one per result: the job and its result
//     share one allocation (Task), and the queue holds a pointer-sized ticket.
#include "goro/worker_pool.hpp"

#include <stdexcept>

#include "goro/chan.hpp"
#include "goro/runtime.hpp"
#include "goro/waitgroup.hpp"

namespace goro {
namespace detail {

class PoolCore {
 public:
  PoolCore(std::size_t workers, std::size_t queue_capacity)
      : workers_count_(workers),
        capacity_(queue_capacity),
        jobs_(queue_capacity),
        worker_ids_(std::make_unique<std::atomic<std::uint64_t>[]>(workers)) {}

  // enter passes the door; false (having left again) if it is closed.
  bool enter() noexcept {
    // Acquire pairs with the release half of shutdown's fetch_or: a
    // submitter that sees the door open is counted before it closes.
    if ((door_.fetch_add(1, std::memory_order_acquire) & kClosed) == 0) return true;
    leave();
    return false;
  }

  // leave: out of the door; the last one out of a closed door closes jobs_.
  void leave() noexcept {
    // acq_rel: our send happens before the close that may follow in
    // another leaver or in shutdown (invariant D).
    if (door_.fetch_sub(1, std::memory_order_acq_rel) == (kClosed | 1)) close_jobs();
  }

  void close_jobs() noexcept {
    // Once: after the door closes, the count may touch zero more than once
    // (late submitters pass in and straight out again).
    if (!jobs_closed_.exchange(true, std::memory_order_acq_rel)) jobs_.close();
  }

  // Passage is a submitter's trip through the door: entering counts the
  // job as submitted, or discards it and throws PoolClosed if the door is
  // closed (enter() has then already left); leaving is the destructor.
  class Passage {
   public:
    Passage(PoolCore* core, JobRef& job) : core_(core) {
      if (!core->enter()) {
        job.discard();
        throw PoolClosed();
      }
      core->counters_.submitted.fetch_add(1, std::memory_order_release);
    }
    ~Passage() { core_->leave(); }
    Passage(const Passage&) = delete;
    Passage& operator=(const Passage&) = delete;

   private:
    PoolCore* core_;
  };

  void submit(JobRef job) {
    Passage passage(this, job);
    jobs_.send(std::move(job));
  }

  bool try_submit(JobRef job) {
    Passage passage(this, job);
    // A ticket try_send could not place is destroyed inside it, which
    // completes its result as Cancelled; nobody sees that result, because
    // try_submit then returns nullopt instead of the Future.
    const bool sent = jobs_.try_send(std::move(job));
    if (!sent) counters_.submitted.fetch_sub(1, std::memory_order_release);
    return sent;
  }

  void shutdown(bool now) {
    if (now) stop_now_.store(true, std::memory_order_release);  // pairs with the worker's acquire load
    // acq_rel: pairs with enter()'s acquire and the leavers' acq_rel.
    const std::uint64_t before = door_.fetch_or(kClosed, std::memory_order_acq_rel);
    if ((before & ~kClosed) == 0) close_jobs();
    if (now) {
      while (std::optional<JobRef> job = jobs_.try_recv()) job->cancel(&counters_.jobs);
    }
    if (!called_by_own_worker()) workers_.wait();
  }

  void worker(std::size_t index) {
    set_goroutine_name("goro.WorkerPool worker");
    // Relaxed: only this worker can match its own id (called_by_own_worker),
    // and it reads what it wrote itself; anyone else sees 0 or a foreign id.
    worker_ids_[index].store(goroutine_id(), std::memory_order_relaxed);
    struct Done {
      PoolCore* core;
      ~Done() { core->workers_.done(); }  // also when run()'s teardown unwinds us
    } done{this};
    while (std::optional<JobRef> job = jobs_.recv()) {
      if (stop_now_.load(std::memory_order_acquire)) {
        job->cancel(&counters_.jobs);
      } else {
        // Dumps show the job's submit() call site for this goroutine
        // meanwhile; cleared however the job ends (go() does not clear it:
        // one more cache line written per spawn cost spawn_join 1.7x).
        struct Site {
          explicit Site(const JobSite& s) { set_job_site(s); }
          ~Site() { set_job_site(JobSite{}); }
        } site(job->site());
        job->run(&counters_.jobs);
      }
    }
  }

  void start_worker(const std::shared_ptr<PoolCore>& self, std::size_t index) {
    workers_.add(1);
    try {
      go([self, index] { self->worker(index); });
    } catch (...) {
      workers_.done();
      throw;
    }
  }

  bool called_by_own_worker() const noexcept {
    const std::uint64_t me = goroutine_id();
    if (me == 0) return false;
    for (std::size_t i = 0; i < workers_count_; ++i) {
      if (worker_ids_[i].load(std::memory_order_relaxed) == me) return true;
    }
    return false;
  }

  PoolStats stats() const noexcept {
    // completed and failed are loaded before started: a job is started
    // before it completes or fails (increments are release, loads acquire),
    // so active is never negative.
    PoolStats s;
    s.completed = counters_.jobs.completed.load(std::memory_order_acquire);
    s.failed = counters_.jobs.failed.load(std::memory_order_acquire);
    s.cancelled = counters_.jobs.cancelled.load(std::memory_order_acquire);
    const std::uint64_t started = counters_.jobs.started.load(std::memory_order_acquire);
    s.submitted = counters_.submitted.load(std::memory_order_acquire);
    s.active = started - s.completed - s.failed;
    s.queued = jobs_.size();
    return s;
  }

  bool closed() const noexcept { return (door_.load(std::memory_order_acquire) & kClosed) != 0; }
  std::size_t workers() const noexcept { return workers_count_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr std::uint64_t kClosed = std::uint64_t{1} << 63;

  const std::size_t workers_count_;
  const std::size_t capacity_;
  Chan<JobRef> jobs_;
  // door_: kClosed | number of submitters inside (invariant D).
  std::atomic<std::uint64_t> door_{0};
  std::atomic<bool> jobs_closed_{false};
  std::atomic<bool> stop_now_{false};
  WaitGroup workers_;
  // worker_ids_[i]: worker i's goroutine id, written once by the worker
  // (0 until then), read by called_by_own_worker().
  std::unique_ptr<std::atomic<std::uint64_t>[]> worker_ids_;
  struct Counters {
    // submitted on its own cache line: submitters write it, workers the rest.
    alignas(64) std::atomic<std::uint64_t> submitted{0};
    alignas(64) JobCounters jobs;
  } counters_;
};

}  // namespace detail

WorkerPool::WorkerPool(std::size_t workers, std::size_t queue_capacity) {
  if (workers == 0) throw std::invalid_argument("goro::WorkerPool: workers must be at least 1");
  core_ = std::make_shared<detail::PoolCore>(workers, queue_capacity);
  std::size_t started = 0;
  try {
    for (; started < workers; ++started) core_->start_worker(core_, started);
  } catch (...) {
    if (started > 0) core_->shutdown(false);  // join the ones that did start
    throw;
  }
}

WorkerPool::~WorkerPool() { core_->shutdown(false); }

// Both record their return address (in the submit() the caller inlined)
// as the job's submitting code, which dumps symbolize.
void WorkerPool::submit_job(detail::JobRef job) {
  job.set_submit_pc(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  core_->submit(std::move(job));
}
bool WorkerPool::try_submit_job(detail::JobRef job) {
  job.set_submit_pc(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return core_->try_submit(std::move(job));
}
void WorkerPool::shutdown() { core_->shutdown(false); }
void WorkerPool::shutdown_now() { core_->shutdown(true); }
PoolStats WorkerPool::stats() const noexcept { return core_->stats(); }
bool WorkerPool::closed() const noexcept { return core_->closed(); }
std::size_t WorkerPool::workers() const noexcept { return core_->workers(); }
std::size_t WorkerPool::queue_capacity() const noexcept { return core_->capacity(); }

}  // namespace goro
