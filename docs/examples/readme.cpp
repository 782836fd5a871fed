// The example at the top of README.md, built and run by the tests.
#include <goro/goro.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

int main() {
  return goro::run([] {
    goro::Chan<int> results(0);  // unbuffered, like make(chan int)
    goro::WaitGroup wg;
    for (int i = 1; i <= 10; ++i) {  // ten goroutines
      wg.add(1);
      goro::go([&, i] {
        goro::sleep_for(i * 1ms);  // parks the goroutine, not the thread
        results.send(i * i);
        wg.done();
      });
    }
    goro::go([&] { wg.wait(); results.close(); });  // close once all are done

    int sum = 0;
    for (bool open = true; open;) {
      goro::select(  // Go's select, with a timeout
          goro::on_recv(results, [&](std::optional<int> v) { v ? void(sum += *v) : void(open = false); }),
          goro::on_recv(goro::after(1s), [&](auto) { std::puts("timed out"); open = false; }));
    }
    std::printf("sum of squares: %d\n", sum);  // 385
    return sum == 385 ? 0 : 1;
  });
}
