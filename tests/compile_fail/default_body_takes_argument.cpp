// expect: on_default's body takes no argument
#include <goro/goro.hpp>

void f(goro::Chan<int> c) {
  goro::select(goro::on_recv(c), goro::on_default([](int) {}));
}
