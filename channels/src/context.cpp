// context.cpp: cancellation trees (Go's context package).
//
// Each cancellable context is a ContextState: a done channel, the error,
// an optional deadline with a runtime timer, its parent, and the set of its
// cancellable children. Creating a child registers it with the nearest
// cancellable ancestor (or cancels it at once if that one is already
// cancelled). cancel(err), in order:
//   1. under the state's lock: if already cancelled, stop; else record err
//      and take the children;
//   2. close done (exactly once: step 1 lets one caller through);
//   3. cancel each child with the same error;
//   4. stop the deadline timer and unregister from the parent, so a child
//      whose parent lives on frees itself when its own cancel runs.
// The parent holds its children (shared ownership) until they are
// cancelled: as in Go, a context that is never cancelled lives as long as
// its parent.
//
// Memory: one allocation holds the done channel and the state (with the
// shared_ptr's control block): the state is the channel block's extra room
// (chan_make_with), placed there by StateAlloc. The block goes when both
// are done with: the state's own reference on the channel is dropped when
// the shared_ptr frees the state's memory, and done() handles hold
// references of their own. A per-request context (with_timeout, a look at
// done(), cancel) thus costs one allocation for the state and one for the
// CancelFunc's closure.
#include "goro/context.hpp"

#include <algorithm>
#include <vector>

#include "goro/detail/chan_core.hpp"
#include "goro/runtime_timer.hpp"

namespace goro {

namespace detail {

struct ContextState {
  explicit ContextState(std::shared_ptr<ContextState> p) noexcept : parent(std::move(p)) {}
  ~ContextState() = default;

  Lock lock;
  std::shared_ptr<ContextState> parent;
  // done is the channel whose block holds this state; not a handle (that
  // would keep the block alive forever), see StateAlloc.
  ChanBase* done = nullptr;  // set right after construction
  std::atomic<ContextError> err{ContextError::none};
  std::optional<std::chrono::steady_clock::time_point> deadline;
  std::vector<std::shared_ptr<ContextState>> children;  // under lock
  // Declared last, destroyed first: ~RuntimeTimer waits for a callback in
  // flight, which still needs the members above.
  RuntimeTimer timer{&on_deadline, this};

  static void on_deadline(void* self, std::int64_t) {
    static_cast<ContextState*>(self)->cancel(ContextError::deadline_exceeded);
  }

  void add_child(const std::shared_ptr<ContextState>& child) {
    ContextError e;
    {
      LockGuard l(lock);
      e = err.load(std::memory_order_relaxed);
      if (e == ContextError::none) {
        children.push_back(child);
        return;
      }
    }
    child->cancel(e);  // the parent is already done
  }

  void remove_child(ContextState* child) {
    std::shared_ptr<ContextState> keep;  // released after the lock
    LockGuard l(lock);
    auto it = std::find_if(children.begin(), children.end(), [&](const auto& c) { return c.get() == child; });
    if (it != children.end()) {
      keep = std::move(*it);
      children.erase(it);
    }
  }

  void cancel(ContextError e) {
    std::vector<std::shared_ptr<ContextState>> kids;
    {
      LockGuard l(lock);
      if (err.load(std::memory_order_relaxed) != ContextError::none) return;
      err.store(e, std::memory_order_release);
      kids.swap(children);
    }
    chan_close(done);
    for (const auto& k : kids) k->cancel(e);
    timer.stop();
    if (parent) parent->remove_child(this);
  }
};

namespace {

const ChanHooks kDoneHooks{[](ChanBase* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) chan_free(c);
}};

// StateAlloc is the shared_ptr's allocator: the state's memory (control
// block included) is the extra room of a new done channel's block, whose
// first reference stands for the state and is dropped with its memory.
template <class T>
struct StateAlloc {
  using value_type = T;
  ChanBase** made;  // where allocate() reports the channel it made

  explicit StateAlloc(ChanBase** m) noexcept : made(m) {}
  template <class U>
  StateAlloc(const StateAlloc<U>& other) noexcept : made(other.made) {}  // NOLINT: rebinding

  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= kChanExtraAlign);
    void* extra = nullptr;
    *made = chan_make_with(0, &elem_ops<Unit>, n * sizeof(T), &kDoneHooks, &extra);
    return static_cast<T*>(extra);
  }
  void deallocate(T* p, std::size_t) noexcept { kDoneHooks.release(chan_of_extra(p, 0, &elem_ops<Unit>)); }

  template <class U>
  bool operator==(const StateAlloc<U>&) const noexcept {
    return true;
  }
};

}  // namespace

}  // namespace detail

const char* to_string(ContextError e) noexcept {
  switch (e) {
    case ContextError::none: return "";
    case ContextError::canceled: return "context canceled";
    case ContextError::deadline_exceeded: return "context deadline exceeded";
  }
  return "";
}

Chan<Unit> Context::done() const {
  if (!s_) return Chan<Unit>();
  detail::chan_retain(s_->done);
  return Chan<Unit>(s_->done, detail::AdoptRef{});
}

ContextError Context::err() const { return s_ ? s_->err.load(std::memory_order_acquire) : ContextError::none; }

std::optional<std::chrono::steady_clock::time_point> Context::deadline() const {
  return s_ ? s_->deadline : std::nullopt;
}

Context background() { return Context(); }
Context todo() { return Context(); }

namespace {

std::pair<Context, CancelFunc> make_child(const Context& parent,
                                          std::optional<std::chrono::steady_clock::time_point> deadline) {
  detail::ChanBase* done = nullptr;
  auto s = std::allocate_shared<detail::ContextState>(detail::StateAlloc<detail::ContextState>(&done), parent.state());
  s->done = done;
  s->deadline = deadline;
  if (parent.state()) parent.state()->add_child(s);
  CancelFunc cancel = [s] { s->cancel(ContextError::canceled); };
  return {Context(s), std::move(cancel)};
}

}  // namespace

std::pair<Context, CancelFunc> with_cancel(Context parent) {
  return make_child(parent, parent.deadline());
}

namespace {

// deadline_child is with_deadline with the clock already read (`now`, ns):
// with_timeout reads it once for both the deadline and the check.
std::pair<Context, CancelFunc> deadline_child(Context parent, std::chrono::steady_clock::time_point t,
                                              std::int64_t now) {
  if (auto pd = parent.deadline(); pd && *pd <= t) {
    return with_cancel(std::move(parent));  // the parent's earlier deadline governs
  }
  auto result = make_child(parent, t);
  detail::ContextState& s = *result.first.state();
  const std::int64_t when = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (when <= now) {
    s.cancel(ContextError::deadline_exceeded);
  } else if (t != std::chrono::steady_clock::time_point::max() && s.err.load() == ContextError::none) {
    s.timer.start(when);
  }
  return result;
}

}  // namespace

std::pair<Context, CancelFunc> with_deadline(Context parent, std::chrono::steady_clock::time_point t) {
  return deadline_child(std::move(parent), t, monotonic_now_ns());
}

std::pair<Context, CancelFunc> with_timeout(Context parent, std::chrono::nanoseconds d) {
  // steady_clock is CLOCK_MONOTONIC, the runtime timers' clock.
  const std::int64_t now_ns = monotonic_now_ns();
  const auto now = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns));
  const auto max = std::chrono::steady_clock::time_point::max();
  const auto t = d.count() > (max - now).count() ? max : now + d;
  return deadline_child(std::move(parent), t, now_ns);
}

}  // namespace goro
