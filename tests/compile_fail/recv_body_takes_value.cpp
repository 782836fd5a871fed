// expect: on_recv's body takes std::optional<T>
// A Go programmer's `case v := <-c` written as [](int v).
#include <goro/goro.hpp>

void f(goro::Chan<int> c) {
  goro::select(goro::on_recv(c, [](int v) { (void)v; }));
}
