// The smallest real goro program: used by the install tests to prove that
// an installed or vendored goro links and runs.
#include <goro/goro.hpp>

#include <cstdio>

int main() {
  return goro::run([] {
    goro::Chan<int> ch(0);
    goro::go([ch] { ch.send(41); });
    const int v = *ch.recv() + 1;
    std::printf("consumer: %d\n", v);
    return v == 42 ? 0 : 1;
  });
}
