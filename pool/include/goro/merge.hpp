// merge: fan-in. Many channels into one, as in Go's pipelines article
// ("Go Concurrency Patterns: Pipelines and cancellation"):
//
//   goro::Chan<Result> all = goro::merge(std::vector{a, b, c});
//   for (Result r : all) use(r);   // ends once a, b and c are all closed
//
// merge(inputs) starts one forwarding goroutine per input; each receives
// from its input until it is closed and sends every value to the output.
// The output is closed once every input is closed and its values
// forwarded. Values from one input keep their order; values from different
// inputs interleave as they arrive. An empty `inputs` gives a closed
// channel. A nil input never closes, so neither does the output (Go's
// semantics). The output is unbuffered unless `capacity` says otherwise.
//
// Like Go's merge, the forwarders park until someone receives: a consumer
// that stops early leaves them parked. merge(ctx, inputs) is the version
// for that case: once ctx is cancelled the forwarders drop what they hold
// and exit, and the output is closed.
//
// Memory ordering: a send on an input happens before the receive of the
// same value from the output completes; the close of every input happens
// before a receive that returns because the output is closed.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "goro/chan.hpp"
#include "goro/context.hpp"
#include "goro/runtime.hpp"
#include "goro/select.hpp"

namespace goro {

namespace detail {

// MergeState is what the forwarders share: the output and how many of them
// are still running. The last to finish closes the output.
template <class T>
struct MergeState {
  MergeState(Chan<T> o, std::size_t n) : out(std::move(o)), left(n) {}
  Chan<T> out;
  std::atomic<std::size_t> left;

  void forwarder_done() {
    // acq_rel: every forwarder's last send happens before the close.
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) out.close();
  }
};

}  // namespace detail

// merge forwards every value of every input to the returned channel, which
// is closed once all inputs are. Any goroutine, or a plain thread inside run().
template <class T>
Chan<T> merge(std::vector<Chan<T>> inputs, std::size_t capacity = 0) {
  Chan<T> out(capacity);
  if (inputs.empty()) {
    out.close();
    return out;
  }
  auto state = std::make_shared<detail::MergeState<T>>(out, inputs.size());
  for (Chan<T>& in : inputs) {
    go([in = std::move(in), state] {
      while (std::optional<T> v = in.recv()) state->out.send(std::move(*v));
      state->forwarder_done();
    });
  }
  return out;
}

// merge(ctx, inputs): as merge(inputs), but each forwarder also stops when
// ctx is cancelled (a value it was holding is dropped); the output is closed
// once every forwarder has stopped.
template <class T>
Chan<T> merge(Context ctx, std::vector<Chan<T>> inputs, std::size_t capacity = 0) {
  Chan<T> out(capacity);
  if (inputs.empty()) {
    out.close();
    return out;
  }
  auto state = std::make_shared<detail::MergeState<T>>(out, inputs.size());
  const Chan<Unit> done = ctx.done();
  for (Chan<T>& in : inputs) {
    go([in = std::move(in), state, done] {
      for (;;) {
        std::optional<T> v;
        bool stop = false;
        select(on_recv(in,
                       [&](std::optional<T> got) {
                         if (got) {
                           v = std::move(got);
                         } else {
                           stop = true;  // the input is closed and drained
                         }
                       }),
               on_recv(done, [&] { stop = true; }));
        if (stop) break;
        select(on_send(state->out, std::move(*v)), on_recv(done, [&] { stop = true; }));
        if (stop) break;
      }
      state->forwarder_done();
    });
  }
  return out;
}

}  // namespace goro
