// A port, written for goro, of the idea of Go's test/chan/powser1.go: power
// series as demand-driven streams of exact rationals, one goroutine per
// operator, unbuffered channels everywhere. A stress test of channel
// hand-offs, select and goroutine creation (every multiplication spawns a
// new layer of operators as coefficients are demanded).
//
// A series is a pair of channels: the consumer sends on `req`, then
// receives the next coefficient on `dat`.
#include <cstdint>
#include <deque>
#include <numeric>
#include <utility>

#include "goro_test.hpp"

namespace {

using goro::Chan;
using goro::on_recv;
using goro::select;

struct Rat {
  std::int64_t num = 0;
  std::int64_t den = 1;
  static Rat of(std::int64_t n, std::int64_t d = 1) {
    if (d < 0) n = -n, d = -d;
    const std::int64_t g = std::gcd(n, d);
    return g > 1 ? Rat{n / g, d / g} : Rat{n, d};
  }
  friend Rat operator+(Rat a, Rat b) { return of(a.num * b.den + b.num * a.den, a.den * b.den); }
  friend Rat operator*(Rat a, Rat b) { return of(a.num * b.num, a.den * b.den); }
  friend bool operator==(Rat a, Rat b) { return a.num == b.num && a.den == b.den; }
};

std::ostream& operator<<(std::ostream& os, Rat r) { return os << r.num << "/" << r.den; }

struct Series {
  Chan<int> req{0};
  Chan<Rat> dat{0};
};

Rat get(Series s) {
  s.req.send(0);
  return *s.dat.recv();
}

// serve answers every request on s with next(): strictly demand-driven, as
// Go's operators are (`<-out.req; out.dat <- f()`). Computing before the
// request arrives would deadlock a feedback loop such as exp_of's.
template <class F>
[[noreturn]] void serve(Series s, F next) {
  for (;;) {
    s.req.recv();
    s.dat.send(next());
  }
}

// copy_to forwards in to out forever.
[[noreturn]] void copy_to(Series in, Series out) {
  serve(out, [&] { return get(in); });
}

Series constant(Rat c) {  // c, c, c, ...
  Series s;
  goro::go([=] { serve(s, [&] { return c; }); });
  return s;
}

Series monomial(Rat c, int k) {  // c x^k
  Series s;
  goro::go([=] {
    int i = 0;
    serve(s, [&] { return i++ == k ? c : Rat{}; });
  });
  return s;
}

// split hands every coefficient of in to two consumers that may read at
// different rates. One goroutine runs a select loop: it accepts requests
// from either side, answers from that side's queue, asks `in` for the next
// coefficient when a waiting side's queue is empty, and keeps accepting
// requests while that answer is pending (a feedback loop such as exp_of's
// needs the other side served meanwhile). Cases are disabled by using a nil
// channel, Go's idiom.
std::pair<Series, Series> split(Series in) {
  Series a, b;
  goro::go([=] {
    const Chan<int> no_req;
    const Chan<Rat> no_dat;
    std::deque<Rat> qa, qb;  // read from in, not yet delivered to a / b
    bool a_waiting = false, b_waiting = false, fetching = false;
    for (;;) {
      if (a_waiting && !qa.empty()) {
        a.dat.send(qa.front());
        qa.pop_front();
        a_waiting = false;
        continue;
      }
      if (b_waiting && !qb.empty()) {
        b.dat.send(qb.front());
        qb.pop_front();
        b_waiting = false;
        continue;
      }
      const bool need = (a_waiting && qa.empty()) || (b_waiting && qb.empty());
      select(on_recv(a_waiting ? no_req : a.req, [&](auto) { a_waiting = true; }),
             on_recv(b_waiting ? no_req : b.req, [&](auto) { b_waiting = true; }),
             goro::on_send(need && !fetching ? in.req : no_req, 0, [&] { fetching = true; }),
             on_recv(fetching ? in.dat : no_dat, [&](std::optional<Rat> v) {
               fetching = false;
               qa.push_back(*v);
               qb.push_back(*v);
             }));
    }
  });
  return {a, b};
}

Series add(Series u, Series v) {
  Series s;
  goro::go([=] { serve(s, [&] { return get(u) + get(v); }); });
  return s;
}

Series cmul(Rat c, Series u) {
  Series s;
  goro::go([=] { serve(s, [&] { return c * get(u); }); });
  return s;
}

Series shift(Series u) {  // x * u
  Series s;
  goro::go([=] {
    bool first = true;
    serve(s, [&] { return std::exchange(first, false) ? Rat{} : get(u); });
  });
  return s;
}

Series integ(Rat c, Series u) {  // c + integral of u
  Series s;
  goro::go([=] {
    std::int64_t i = 0;
    serve(s, [&] { return i++ == 0 ? c : get(u) * Rat::of(1, i - 1); });
  });
  return s;
}

Series deriv(Series u) {
  Series s;
  goro::go([=] {
    std::int64_t i = 0;
    serve(s, [&] {
      if (i++ == 0) get(u);  // the constant term drops out
      return get(u) * Rat::of(i);
    });
  });
  return s;
}

// mul: with U = u0 + x U', V = v0 + x V',
// UV = u0 v0 + x (u0 V' + v0 U' + x U' V'); U' and V' are each read twice,
// hence the splits; the product of the tails recurses lazily.
Series mul(Series u, Series v) {
  Series s;
  goro::go([=] {
    s.req.recv();
    const Rat u0 = get(u), v0 = get(v);
    s.dat.send(u0 * v0);
    auto [u1, u2] = split(u);
    auto [v1, v2] = split(v);
    copy_to(add(add(cmul(u0, v1), cmul(v0, u1)), shift(mul(u2, v2))), s);
  });
  return s;
}

// exp: X = exp(U) for U(0) = 0 solves X' = X U', X(0) = 1, so
// X = 1 + integral(X U'): a feedback loop through a split.
Series exp_of(Series u) {
  Series x;
  // Named copies: clang 14 cannot capture structured bindings.
  auto halves = split(x);
  Series out = halves.first, back = halves.second;
  goro::go([=] { copy_to(integ(Rat::of(1), mul(back, deriv(u))), x); });
  return out;
}

class PowerSeriesTest : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Procs, PowerSeriesTest, ::testing::Values(1, 2, 4, 8), goro_test::procs_name);

TEST_P(PowerSeriesTest, ProductOfGeometricSeriesIsOneOverOneMinusXSquared) {
  goro::run([] {
    Series ones = constant(Rat::of(1));
    Series ones2 = constant(Rat::of(1));
    Series p = mul(ones, ones2);  // 1/(1-x)^2 = sum (n+1) x^n
    for (int n = 0; n < 12; ++n) EXPECT_EQ(get(p), Rat::of(n + 1)) << "coefficient " << n;
  }, goro::Options{.procs = GetParam()});
  EXPECT_GT(goro::last_run_unwound(), 0) << "the operator goroutines run forever and are unwound";
}

TEST_P(PowerSeriesTest, ExponentialFromItsDifferentialEquation) {
  goro::run([] {
    Series e = exp_of(monomial(Rat::of(1), 1));  // exp(x)
    std::int64_t factorial = 1;
    for (int n = 0; n < 10; ++n) {
      if (n > 0) factorial *= n;
      EXPECT_EQ(get(e), Rat::of(1, factorial)) << "coefficient " << n;
    }
  }, goro::Options{.procs = GetParam()});
}

TEST_P(PowerSeriesTest, SumsAndDerivatives) {
  goro::run([] {
    // d/dx of 1/(1-x)^2 = 2/(1-x)^3: coefficients (n+1)(n+2)
    Series d = deriv(mul(constant(Rat::of(1)), constant(Rat::of(1))));
    for (int n = 0; n < 8; ++n) EXPECT_EQ(get(d), Rat::of((n + 1) * (n + 2)));
    Series s = add(constant(Rat::of(1, 2)), constant(Rat::of(1, 3)));
    for (int n = 0; n < 4; ++n) EXPECT_EQ(get(s), Rat::of(5, 6));
  }, goro::Options{.procs = GetParam()});
}

}  // namespace
