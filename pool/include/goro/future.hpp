// Future<T>: the result of a job that runs on another goroutine.
//
//   goro::WorkerPool pool(4);
//   goro::Future<int> f = pool.submit([] { return 6 * 7; });
//   int v = f.get();   // parks until the job has run; rethrows what it threw
//
// Go has no futures: a Go programmer hands each job a result channel. A
// Future is that channel, made one-shot and shareable: it holds either the
// job's value or the exception it threw, and every get() sees the same
// outcome.
//
// Semantics (std::shared_future's, on goroutines):
//   - A Future is a handle: copies share one result, which lives while any
//     handle (or the job itself) does. A default-constructed Future has no
//     result (valid() is false); calling get()/wait() on it throws Panic.
//   - get() parks the caller (a goroutine, or a plain thread through the
//     same seam) until the result is ready, then returns the value or
//     rethrows the job's exception. It may be called any number of times,
//     from any number of goroutines and threads at once: each call returns a
//     copy of the value. If T is move-only, the first get() moves the value
//     out and later ones throw Panic("goro: Future value already taken").
//   - A job that never ran (WorkerPool::shutdown_now, or run() tearing down
//     with the job still queued) makes get() throw goro::Cancelled.
//   - ready() never parks; wait() parks like get() without returning the
//     value; wait_for(d)/wait_until(t) park at most until the deadline and
//     report whether the result is ready.
// A parked get() reports the wait reason "goro.Future.Get".
//
// Memory ordering: a job's completion (everything it did, including the
// destruction of the function object) happens before any get(), wait(), or
// a wait_for/ready() that returns true, returns in any caller.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "goro/detail/lock.hpp"
#include "goro/detail/fast_path.hpp"
#include "goro/wait_reason.hpp"
#include "goro/runtime.hpp"
#include "goro/runtime_timer.hpp"

namespace goro {

// Cancelled is what a Future throws when its job was dropped without
// running (WorkerPool::shutdown_now). Like Go's context.Canceled it is an
// expected outcome that the caller handles, not a bug, so it is a
// std::runtime_error and not a goro::Panic (a logic_error: "the program is
// wrong"): `catch (const goro::Panic&)` does not swallow it.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("goro: job cancelled before it ran") {}
  using std::runtime_error::runtime_error;
};

namespace detail {

// is_forced_unwind, called inside a catch block, reports whether the
// exception being handled is the one run()'s teardown throws into a parked
// goroutine to unwind it. Code that catches (...) on behalf of a user's job
// must rethrow that one (docs/design.md, "Lifecycle of a run").
bool is_forced_unwind() noexcept;

// cancelled_error is the exception_ptr a dropped job's Future rethrows.
std::exception_ptr cancelled_error();

struct FutureWaiter;

// JobCounters are a WorkerPool's per-job counters. A job updates them
// before its result becomes ready, so a caller that has seen every result
// also sees the counters that describe them. Increments are release and
// WorkerPool::stats() loads with acquire, in the order that keeps every
// difference it computes non-negative (worker_pool.cpp).
struct JobCounters {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> cancelled{0};
};

// FutureCore is the type-independent part of a shared result: reference
// count, state, the exception, and the list of parked waiters (future.cpp
// explains the protocol). It is also the job: run_job() runs the function
// and completes the result, drop_job() completes it with Cancelled.
class FutureCore {
 public:
  FutureCore() noexcept = default;
  FutureCore(const FutureCore&) = delete;
  FutureCore& operator=(const FutureCore&) = delete;

  // retain/release count handles (Futures and the queued job). Any thread.
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    // acq_rel: the last releaser sees every other handle's writes before it
    // deletes the state.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // ready: the result is set. Acquire pairs with the release store in complete().
  bool ready() const noexcept { return state_.load(std::memory_order_acquire) != kPending; }

  // wait parks the caller (wait reason "goro.Future.Get") until ready().
  void wait();
  // wait_until parks until ready() or the monotonic deadline (ns, the clock
  // of std::chrono::steady_clock). Returns ready().
  bool wait_until(std::int64_t deadline_ns);

  // rethrow_if_failed: after ready(), rethrows the job's exception if any.
  void rethrow_if_failed() const {
    if (state_.load(std::memory_order_acquire) == kFailed) std::rethrow_exception(error_);
  }

  // run_job runs the job once and completes the result. Returns true if the
  // function returned, false if it threw (the exception is in the result).
  // The teardown's forced unwinding passes through (the result is then
  // Cancelled). Called by the one worker that dequeued the job.
  virtual bool run_job(JobCounters* counters) = 0;
  // drop_job destroys the function unrun and completes the result with
  // Cancelled; `counters` (may be null) counts it as cancelled.
  virtual void drop_job(JobCounters* counters) noexcept = 0;
  // discard_job destroys the function unrun without completing the result:
  // only when no Future for it was ever handed out.
  virtual void discard_job() noexcept = 0;

 protected:
  virtual ~FutureCore();

  // set_value_ready publishes a value the derived class has stored.
  void set_value_ready() noexcept { complete(kValue); }
  // set_error publishes an exception as the result.
  void set_error(std::exception_ptr e) noexcept {
    error_ = std::move(e);
    complete(kFailed);
  }

 private:
  static constexpr std::uint8_t kPending = 0;
  static constexpr std::uint8_t kValue = 1;
  static constexpr std::uint8_t kFailed = 2;

  // complete stores the state (release) and readies every parked waiter.
  void complete(std::uint8_t state) noexcept;
  void push_locked(FutureWaiter* w) noexcept GORO_REQUIRES(lock_);
  void unlink_locked(FutureWaiter* w) noexcept GORO_REQUIRES(lock_);
  void park_linked(FutureWaiter* w) GORO_RELEASE(lock_);
  bool poll_until(std::int64_t deadline_ns);
  static void on_timeout(void* waiter, std::int64_t now_ns);

  std::atomic<std::uint32_t> refs_{1};
  // state_: kPending until complete() stores the outcome (release, under
  // lock_); read with acquire by ready() and under lock_ by waiters.
  std::atomic<std::uint8_t> state_{kPending};
  SpinLock lock_;                    // guards the waiter list and the state change
  FutureWaiter* waiters_ GORO_GUARDED_BY(lock_) = nullptr;  // parked waiters, on their own stacks
  std::exception_ptr error_;         // written once, before state_ becomes kFailed

 public:
  // The job's submit() call site, for dumps (set once, before it is queued).
  void set_site(const SourceLocation& where) noexcept {
    site_.file = where.file_name();
    site_.function = where.function_name();
    site_.line = static_cast<std::uint32_t>(where.line());
  }
  void set_submit_pc(std::uintptr_t pc) noexcept { site_.pc = pc; }
  const JobSite& site() const noexcept { return site_; }

 private:
  JobSite site_;
};

// FutureState<T> adds the value's storage.
template <class T>
class FutureState : public FutureCore {
 public:
  // get: waits, then returns a copy (or, for a move-only T, takes the value once).
  T get() {
    wait();
    rethrow_if_failed();
    if constexpr (std::is_copy_constructible_v<T>) {
      return *value_;
    } else {
      // acq_rel: exactly one caller takes the value.
      if (taken_.exchange(true, std::memory_order_acq_rel)) throw Panic("goro: Future value already taken");
      return std::move(*value_);
    }
  }

 protected:
  template <class... A>
  void set_value(A&&... args) {
    value_.emplace(std::forward<A>(args)...);
  }

 private:
  std::optional<T> value_;  // written by the job before set_value_ready()
  std::atomic<bool> taken_{false};
};

template <>
class FutureState<void> : public FutureCore {
 public:
  void get() {
    wait();
    rethrow_if_failed();
  }
};

// Task<F, R> is a job and its result in one allocation.
template <class F, class R>
class Task final : public FutureState<R> {
 public:
  explicit Task(F&& f) : fn_(std::in_place, std::move(f)) {}

  bool run_job(JobCounters* counters) override {
    if (counters != nullptr) counters->started.fetch_add(1, std::memory_order_release);
    try {
      if constexpr (std::is_void_v<R>) {
        (*fn_)();
      } else {
        this->set_value((*fn_)());
      }
    } catch (...) {
      fn_.reset();
      if (is_forced_unwind()) {
        // run() is tearing down with this job parked: nobody will ever see
        // it finish, so its callers see it cancelled; the unwinding goes on.
        this->set_error(cancelled_error());
        throw;
      }
      if (counters != nullptr) counters->failed.fetch_add(1, std::memory_order_release);
      this->set_error(std::current_exception());
      return false;
    }
    fn_.reset();
    if (counters != nullptr) counters->completed.fetch_add(1, std::memory_order_release);
    this->set_value_ready();
    return true;
  }

  void drop_job(JobCounters* counters) noexcept override {
    fn_.reset();
    if (counters != nullptr) counters->cancelled.fetch_add(1, std::memory_order_release);
    this->set_error(cancelled_error());
  }

  void discard_job() noexcept override { fn_.reset(); }

 private:
  std::optional<F> fn_;  // the job; destroyed as soon as it has run
};

// JobRef is a queued job: a move-only ticket holding one reference to the
// Task and the duty to run or drop it exactly once. Destroying a JobRef that
// still holds its job drops it (its Future throws Cancelled), so a job can
// never be lost: not in a channel freed with jobs in it, not in a send
// abandoned by an exception.
class JobRef {
 public:
  JobRef() noexcept = default;
  // JobRef takes one new reference to `core`.
  explicit JobRef(FutureCore* core) noexcept : core_(core) { core_->retain(); }
  JobRef(JobRef&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  JobRef& operator=(JobRef&& other) noexcept {
    JobRef(std::move(other)).swap(*this);
    return *this;
  }
  ~JobRef() { cancel(nullptr); }
  void swap(JobRef& other) noexcept { std::swap(core_, other.core_); }

  // run runs the job (once; the JobRef is empty afterwards). See run_job().
  bool run(JobCounters* counters) {
    struct Release {
      FutureCore* c;
      ~Release() { c->release(); }
    } release{std::exchange(core_, nullptr)};
    return release.c->run_job(counters);
  }
  // site / set_submit_pc: where the job was submitted (FutureCore::site).
  JobSite site() const noexcept { return core_ != nullptr ? core_->site() : JobSite{}; }
  void set_submit_pc(std::uintptr_t pc) noexcept {
    if (core_ != nullptr) core_->set_submit_pc(pc);
  }
  // cancel drops the job, if still held: its Future throws Cancelled.
  void cancel(JobCounters* counters) noexcept {
    if (FutureCore* c = std::exchange(core_, nullptr)) {
      c->drop_job(counters);
      c->release();
    }
  }
  // discard drops the job without completing its result (no Future was handed out).
  void discard() noexcept {
    if (FutureCore* c = std::exchange(core_, nullptr)) {
      c->discard_job();
      c->release();
    }
  }

 private:
  FutureCore* core_ = nullptr;
};

// job_result_t<F> is the value type of the Future a job F yields.
template <class F>
using job_result_t = std::decay_t<std::invoke_result_t<std::decay_t<F>&>>;

struct AdoptState {};

}  // namespace detail

template <class T>
class Future {
 public:
  // Future() has no result: valid() is false.
  Future() noexcept = default;
  // Future(adopt, s) takes over one reference to s (the pool's factory).
  Future(detail::AdoptState, detail::FutureState<T>* s) noexcept : s_(s) {}

  Future(const Future& other) noexcept : s_(other.s_) {
    if (s_ != nullptr) s_->retain();
  }
  Future(Future&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Future& operator=(const Future& other) noexcept {
    Future(other).swap(*this);
    return *this;
  }
  Future& operator=(Future&& other) noexcept {
    Future(std::move(other)).swap(*this);
    return *this;
  }
  ~Future() {
    if (s_ != nullptr) s_->release();
  }
  void swap(Future& other) noexcept { std::swap(s_, other.s_); }

  // valid: this handle refers to a result.
  bool valid() const noexcept { return s_ != nullptr; }

  // ready: the result is there (get() would not park). Never parks.
  bool ready() const noexcept { return s_ != nullptr && s_->ready(); }

  // get parks until the result is ready, then returns the value or rethrows
  // the job's exception (goro::Cancelled for a job that never ran). Any
  // goroutine or thread, any number of times (see the header comment for
  // move-only T).
  T get() const { return state().get(); }

  // wait parks until the result is ready.
  void wait() const { state().wait(); }

  // wait_for parks at most d; true if the result is ready. A zero or
  // negative d only looks.
  bool wait_for(std::chrono::nanoseconds d) const {
    const std::int64_t now = monotonic_now_ns();
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    return state().wait_until(d.count() > max - now ? max : now + d.count());
  }

  // wait_until parks at most until t; true if the result is ready.
  bool wait_until(std::chrono::steady_clock::time_point t) const {
    return state().wait_until(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
  }

 private:
  detail::FutureState<T>& state() const {
    if (s_ == nullptr) throw Panic("goro: Future has no state");
    return *s_;
  }

  detail::FutureState<T>* s_ = nullptr;
};

}  // namespace goro
