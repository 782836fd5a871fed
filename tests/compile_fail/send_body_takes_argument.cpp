// expect: on_send's body takes no argument
#include <goro/goro.hpp>

void f(goro::Chan<int> c) {
  goro::select(goro::on_send(c, 1, [](int v) { (void)v; }));
}
