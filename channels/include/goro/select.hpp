// select: Go's select statement.
//
//   std::size_t i = goro::select(
//       goro::on_recv(jobs, [&](std::optional<Job> j) { if (j) run(*j); }),
//       goro::on_send(results, r, [] { /* sent */ }),
//       goro::on_recv(goro::after(1s), [](auto) { /* timeout */ }));
//
// select blocks until one case can proceed, completes that operation, runs
// its body and returns the case's position in the argument list (on_default
// included). If several cases are ready, one is chosen uniformly at random,
// as in Go. on_default makes the select non-blocking. A case on a nil
// channel is never ready (Go's idiom for disabling a case); select() with
// no cases blocks forever. A send case on a closed channel throws
// Panic("send on closed channel") when chosen.
//
// The receive body gets std::optional<T>: nullopt when the channel is
// closed (Go's v, ok := <-ch with ok == false). Bodies may also take no
// argument.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "goro/chan.hpp"

namespace goro {

namespace detail {

struct SelectCase {
  ChanBase* c;     // null: a nil channel, never ready
  void* elem;      // send: T* source; receive: std::optional<T>* destination
  bool is_send;
};

// select_go runs a select over cases[0..n). Returns the chosen index, or -1
// when block is false and nothing is ready. *received: for a receive case,
// whether a value arrived (false: the channel is closed).
int select_go(SelectCase* cases, int n, bool block, bool* received);

struct NoBody {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};

template <class T, class F>
struct RecvCase {
  ChanBase* c;
  F body;
  std::optional<T> result;

  static constexpr bool is_default = false;
  SelectCase make() { return SelectCase{c, &result, false}; }
  void run() {
    if constexpr (std::is_invocable_v<F&, std::optional<T>>) {
      body(std::move(result));
    } else if constexpr (std::is_invocable_v<F&>) {
      body();
    }  // else: on_recv's static_assert has said what is wrong
  }
};

template <class T, class F>
struct SendCase {
  ChanBase* c;
  T value;
  F body;

  static constexpr bool is_default = false;
  SelectCase make() { return SelectCase{c, &value, true}; }
  void run() {
    if constexpr (std::is_invocable_v<F&>) body();  // else: on_send's static_assert
  }
};

template <class F>
struct DefaultCase {
  F body;
  static constexpr bool is_default = true;
  void run() {
    if constexpr (std::is_invocable_v<F&>) body();  // else: on_default's static_assert
  }
};

}  // namespace detail

// on_recv(ch, f): case v, ok := <-ch: f(std::optional<T>). Go's
// `case v := <-ch` is [](std::optional<T> v) here, not [](T v): the
// optional is empty when ch is closed. f may also take no argument.
template <class T, class F = detail::NoBody>
detail::RecvCase<T, std::decay_t<F>> on_recv(const Chan<T>& ch, F&& f = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&, std::optional<T>> || std::is_invocable_v<std::decay_t<F>&>,
                "goro::on_recv(ch, body): on_recv's body takes std::optional<T> (std::nullopt once ch is closed: "
                "Go's v, ok := <-ch), or no argument; [](T v) does not compile");
  return {ch.core(), std::forward<F>(f), std::nullopt};
}

// on_send(ch, v, f): case ch <- v: f().
template <class T, class V, class F = detail::NoBody>
detail::SendCase<T, std::decay_t<F>> on_send(const Chan<T>& ch, V&& v, F&& f = {}) {
  static_assert(std::is_constructible_v<T, V&&>, "goro::on_send(ch, v, body): v must convert to ch's element type T");
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "goro::on_send(ch, v, body): on_send's body takes no argument");
  if constexpr (std::is_constructible_v<T, V&&>) {
    return {ch.core(), T(std::forward<V>(v)), std::forward<F>(f)};
  } else {
    std::terminate();  // never compiled into a program: the static_assert above failed
  }
}

// on_default(f): default: f().
template <class F = detail::NoBody>
detail::DefaultCase<std::decay_t<F>> on_default(F&& f = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "goro::on_default(body): on_default's body takes no argument");
  return {std::forward<F>(f)};
}

template <class... Cases>
std::size_t select(Cases&&... cases) {
  constexpr std::size_t kCount = sizeof...(Cases);
  constexpr std::size_t kDefaults = (std::size_t{std::decay_t<Cases>::is_default} + ... + 0);
  static_assert(kDefaults <= 1, "goro::select: at most one on_default case");
  constexpr std::size_t kChanCases = kCount - kDefaults;

  auto refs = std::forward_as_tuple(cases...);
  detail::SelectCase sc[kChanCases > 0 ? kChanCases : 1];
  std::size_t arg_of[kChanCases > 0 ? kChanCases : 1] = {};
  std::size_t default_arg = kCount;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    std::size_t k = 0;
    (
        [&] {
          auto& c = std::get<I>(refs);
          if constexpr (std::decay_t<decltype(c)>::is_default) {
            default_arg = I;
          } else {
            sc[k] = c.make();
            arg_of[k] = I;
            ++k;
          }
        }(),
        ...);
    (void)k;  // unused when every case is a default
  }(std::index_sequence_for<Cases...>{});

  bool received = false;
  int chosen;
  if constexpr (kChanCases == 1 && kDefaults == 1) {
    // One case and a default is a non-blocking send or receive (Go compiles
    // it to selectnbsend/selectnbrecv), with their lock-free look first.
    if (sc[0].is_send) {
      chosen = detail::chan_try_send(sc[0].c, sc[0].elem) ? 0 : -1;
    } else {
      const int r = detail::chan_try_recv(sc[0].c, sc[0].elem);
      chosen = r == 0 ? -1 : 0;
      received = r == 1;
    }
  } else {
    chosen = detail::select_go(sc, static_cast<int>(kChanCases), kDefaults == 0, &received);
  }
  const std::size_t arg = chosen < 0 ? default_arg : arg_of[chosen];
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (
        [&] {
          if (I == arg) std::get<I>(refs).run();
        }(),
        ...);
  }(std::index_sequence_for<Cases...>{});
  return arg;
}

}  // namespace goro
