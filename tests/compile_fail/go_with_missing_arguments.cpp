// expect: f must be callable with no arguments \(or pass them: go\(f, args...\)\)
#include <goro/goro.hpp>

void f() {
  goro::go([](int v) { (void)v; });
}
