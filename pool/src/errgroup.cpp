// errgroup.cpp: golang.org/x/sync/errgroup on goroutines, with exceptions
// for errors.
//
// What it is for: fork-join over goroutines where one failure makes the
// rest pointless: the first exception cancels the group's context, the
// siblings see context().done() close and stop, and wait() reports that
// first exception.
//
// State: ctx_/cancel_ (with_cancel of the parent), wg_ (one count per
// running goroutine of the group), sem_ (the limit as a channel of tokens,
// x/sync's design: go() sends a token before spawning, the goroutine
// receives one back when it ends; nil when unlimited), active_ (running
// goroutines, for set_limit's check), failed_/err_ (the first failure).
//
// Invariants:
//   L  with a limit n, at most n goroutines of the group are between
//      acquire_slot() and the end of finish(): each holds one of sem_'s n
//      buffer slots.
//   E  err_ is written at most once, by the goroutine that won failed_'s
//      exchange, before that goroutine's wg_.done(); wait() reads it only
//      after wg_.wait(), so WaitGroup's ordering covers it.
//
// go(f), in order:
//   1. acquire_slot: sem_.send(token) (parks at the limit; nothing if nil).
//   2. begin: active_ += 1, wg_.add(1).
//   3. goro::go: the goroutine runs f; if f throws (and it is not run()'s
//      teardown unwinding it), fail(): the first failure stores err_ and
//      cancels ctx_.
//   4. finish (a destructor, so it runs however f ends): sem_.recv() (our
//      token is buffered, so it never parks), active_ -= 1, wg_.done().
// wait(): wg_.wait(); cancel_(); return err_.
//
// Alternatives rejected:
//   - goro::Semaphore for the limit: it works the same, but a goroutine at
//     the limit then shows "semacquire" where Go shows "chan send", and
//     x/sync's own TryGo note (channels allow barging) would no longer hold.
//   - a Mutex around err_: the exchange on failed_ elects the writer, and
//     the WaitGroup already orders the write before wait()'s read.
//   - wait() without cancelling when nothing failed: x/sync cancels the
//     context when Wait returns either way (so resources tied to it are
//     released), and API.md says the same.
#include "goro/errgroup.hpp"

#include <string>

namespace goro {

ErrGroup::ErrGroup(Context parent) {
  auto [ctx, cancel] = with_cancel(std::move(parent));
  ctx_ = std::move(ctx);
  cancel_ = std::move(cancel);
}

ErrGroup::~ErrGroup() { wait(); }

void ErrGroup::acquire_slot() {
  if (!sem_.is_nil()) sem_.send(Unit{});
}

bool ErrGroup::try_acquire_slot() { return sem_.is_nil() || sem_.try_send(Unit{}); }

void ErrGroup::begin() {
  // Relaxed: set_limit must not race with go() (x/sync's rule too), so the
  // increment and set_limit's load are ordered by the caller's own program
  // order; finish()'s release decrement is the edge that matters.
  active_.fetch_add(1, std::memory_order_relaxed);
  wg_.add(1);
}

void ErrGroup::finish() noexcept {
  // The token first, then active_ (release: set_limit's acquire load that
  // sees 0 knows no goroutine touches sem_ any more), then wg_.
  if (!sem_.is_nil()) sem_.try_recv();  // our own token is buffered: never empty here
  active_.fetch_sub(1, std::memory_order_release);
  wg_.done();
}

void ErrGroup::fail(std::exception_ptr e) noexcept {
  // acq_rel: exactly one failure wins (invariant E).
  if (failed_.exchange(true, std::memory_order_acq_rel)) return;
  err_ = std::move(e);
  cancel_();
}

std::exception_ptr ErrGroup::wait() {
  wg_.wait();
  cancel_();
  return err_;
}

void ErrGroup::set_limit(std::int64_t n) {
  // x/sync checks only when a limit was set (len(g.sem)); goro checks
  // always, because replacing sem_ under a running goroutine's finish()
  // would be a data race in C++, not just a surprise.
  const std::int64_t active = active_.load(std::memory_order_acquire);  // pairs with finish()'s release
  if (active != 0) {
    throw Panic("errgroup: modify limit while " + std::to_string(active) +
                " goroutines in the group are still active");
  }
  sem_ = n < 0 ? Chan<Unit>() : Chan<Unit>(static_cast<std::size_t>(n));
}

}  // namespace goro
