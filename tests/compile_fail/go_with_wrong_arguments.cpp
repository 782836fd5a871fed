// expect: f must be callable with the arguments, as std::thread calls it
// An lvalue reference parameter cannot bind the rvalue copy: std::ref is the way.
#include <goro/goro.hpp>

void f() {
  int counter = 0;
  goro::go([](int& c) { ++c; }, counter);
}
