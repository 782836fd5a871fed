// expect: v must convert to ch's element type T
#include <string>

#include <goro/goro.hpp>

void f(goro::Chan<int> c) {
  goro::select(goro::on_send(c, std::string("one")));
}
