// ErrGroup: golang.org/x/sync/errgroup's Group: goroutines working on
// parts of one task, where the first failure cancels the rest.
//
//   goro::ErrGroup g(parent_ctx);
//   for (auto& url : urls) {
//     g.go([&, url] { fetch(g.context(), url); });   // throws on failure
//   }
//   if (std::exception_ptr e = g.wait()) std::rethrow_exception(e);
//
// Semantics, x/sync's (errgroup.WithContext(parent)) with exceptions for
// errors:
//   - go(f) runs f on a new goroutine. If f throws, the first such exception
//     (the first to be caught, in time) is kept and context() is cancelled,
//     so siblings that watch context().done() stop early. Later exceptions
//     are dropped, as x/sync drops later errors.
//   - wait() parks until every goroutine started by go()/try_go() has
//     returned, cancels context() (failure or not) and returns the first
//     exception, or null. The group may be used again afterwards; its
//     context stays cancelled and its first exception stays the answer.
//   - set_limit(n) bounds how many of the group's goroutines run at once:
//     go() then parks ("chan send") until one finishes; try_go() returns
//     false instead. n < 0 removes the limit. Changing the limit while any
//     goroutine of the group is running throws Panic("errgroup: modify limit
//     while <k> goroutines in the group are still active"), x/sync's text.
//   - The destructor waits (like wait(), discarding the result): the
//     goroutines may use the group and whatever f captured until they return.
// Unlike x/sync's zero Group, an ErrGroup always has a context (derived from
// `parent` with with_cancel). An exception thrown by f never escapes the
// goroutine (it is not fatal, unlike an exception in a bare goro::go()).
// Every member may be called from goroutines and from plain threads while
// run() is active, except that set_limit must not race with go().
//
// Memory ordering: everything a goroutine of the group did happens before
// wait() returns; the first failure happens before context().done() is
// seen closed.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/future.hpp"
#include "goro/runtime.hpp"
#include "goro/waitgroup.hpp"

namespace goro {

class ErrGroup {
 public:
  // ErrGroup derives its context from parent (with_cancel).
  explicit ErrGroup(Context parent = background());
  // ~ErrGroup waits for the group's goroutines.
  ~ErrGroup();
  ErrGroup(const ErrGroup&) = delete;
  ErrGroup& operator=(const ErrGroup&) = delete;

  // go runs f on a new goroutine of the group; parks while the group is at
  // its limit. `where` is the creation site dumps report.
  template <class F>
  void go(F f, SourceLocation where = SourceLocation::current()) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>,
                  "goro::ErrGroup::go: f must be callable with no arguments");
    acquire_slot();
    spawn(std::move(f), where);
  }

  // try_go runs f on a new goroutine only if the group is below its limit;
  // returns whether it did (x/sync's TryGo). Never parks.
  template <class F>
  bool try_go(F f, SourceLocation where = SourceLocation::current()) {
    static_assert(std::is_invocable_v<std::decay_t<F>&>,
                  "goro::ErrGroup::try_go: f must be callable with no arguments");
    if (!try_acquire_slot()) return false;
    spawn(std::move(f), where);
    return true;
  }

  // wait parks until every goroutine of the group has returned, cancels
  // context(), and returns the first exception (null if none).
  std::exception_ptr wait();

  // set_limit: at most n goroutines of the group at once; n < 0: no limit.
  void set_limit(std::int64_t n);

  // context is cancelled by the first failure, by wait(), or by the parent.
  Context context() const { return ctx_; }

 private:
  // Finish ends one goroutine of the group: frees its slot and counts it
  // done, in that order (set_limit's check relies on it), even when run()'s
  // teardown unwinds the goroutine.
  struct Finish {
    ErrGroup* group;
    ~Finish() { group->finish(); }
  };

  template <class F>
  void spawn(F&& f, const SourceLocation& where) {
    begin();
    try {
      goro::go(
          [this, f = std::move(f)]() mutable {
            Finish finish{this};
            // f moves onto this frame so that it (and what it captured) is
            // destroyed before finish() lets wait() return.
            auto fn = std::move(f);
            try {
              fn();
            } catch (...) {
              if (detail::is_forced_unwind()) throw;
              fail(std::current_exception());
            }
          },
          where);
    } catch (...) {
      finish();  // go() failed: the goroutine never existed
      throw;
    }
  }

  void acquire_slot();
  bool try_acquire_slot();
  void begin();
  void finish() noexcept;
  void fail(std::exception_ptr e) noexcept;

  Context ctx_;
  CancelFunc cancel_;
  WaitGroup wg_;
  // sem_: x/sync's token channel, capacity = the limit; nil: no limit.
  // Written by set_limit only while no goroutine of the group runs.
  Chan<Unit> sem_;
  // active_: goroutines between begin() and finish(); set_limit checks it.
  std::atomic<std::int64_t> active_{0};
  // failed_: the first failure's flag; err_ is written once, by the
  // goroutine that set it, before its wg_.done() (so wait() reads it after
  // wg_.wait() without a race).
  std::atomic<bool> failed_{false};
  std::exception_ptr err_;
};

}  // namespace goro
