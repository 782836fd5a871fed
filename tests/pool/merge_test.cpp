// Tests of merge (fan-in): every value arrives, per-input order is kept,
// the output closes only after every input has, cancellation stops the
// forwarders; and the fan-out/fan-in shape (N workers reading one channel).
#include <atomic>
#include <map>
#include <vector>

#include "goro_test.hpp"
#include "pool_test_util.hpp"

namespace {

using goro::Chan;
using goro::Unit;
using goro_test::RuntimeTest;
using goro_test::scaled;
using goro_test::wait_until;

class MergeTest : public RuntimeTest {};
GORO_INSTANTIATE_PROCS(MergeTest);

TEST_P(MergeTest, DeliversEveryValueInPerInputOrderAndClosesAfterTheLastInput) {
  run([] {
    constexpr int kInputs = 5;
    const int per = static_cast<int>(scaled(500));
    std::vector<Chan<int>> inputs;
    for (int i = 0; i < kInputs; ++i) inputs.emplace_back(i % 2 == 0 ? 0 : 8);
    Chan<int> out = goro::merge(inputs);
    // All but the last input send their values and close.
    for (int i = 0; i < kInputs - 1; ++i) {
      goro::go([in = inputs[i], i, per] {
        for (int k = 0; k < per; ++k) in.send(i * 1'000'000 + k);
        in.close();
      });
    }
    std::map<int, int> next;  // input -> next expected k
    for (int n = 0; n < (kInputs - 1) * per; ++n) {
      const std::optional<int> v = out.recv();
      ASSERT_TRUE(v.has_value()) << "output closed early";
      const int input = *v / 1'000'000, k = *v % 1'000'000;
      EXPECT_EQ(k, next[input]++) << "input " << input << " out of order";
    }
    // The last input is still open: so is the output.
    EXPECT_FALSE(out.try_recv().has_value());
    EXPECT_FALSE(out.closed());
    inputs.back().send(-1);
    EXPECT_EQ(out.recv(), -1);
    inputs.back().close();
    EXPECT_EQ(out.recv(), std::nullopt);
    EXPECT_TRUE(out.closed());
  });
}

TEST_P(MergeTest, NoInputsGiveAClosedChannel) {
  run([] {
    Chan<int> out = goro::merge(std::vector<Chan<int>>{});
    EXPECT_TRUE(out.closed());
    EXPECT_EQ(out.recv(), std::nullopt);
  });
}

TEST_P(MergeTest, BufferedOutputAndAlreadyClosedInputs) {
  run([] {
    Chan<int> a(4), b(4);
    a.send(1);
    a.send(2);
    b.send(3);
    a.close();
    b.close();
    Chan<int> out = goro::merge(std::vector{a, b}, 16);
    EXPECT_EQ(out.capacity(), 16u);
    int sum = 0, count = 0;
    for (int v : out) {
      sum += v;
      ++count;
    }
    EXPECT_EQ(count, 3);
    EXPECT_EQ(sum, 6);
  });
}

TEST_P(MergeTest, CancellingTheContextStopsTheForwardersAndClosesTheOutput) {
  run([] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::vector<Chan<int>> inputs(4, Chan<int>());  // nil: they never deliver or close
    inputs[0] = Chan<int>(1);
    inputs[0].send(7);  // one value in flight, which nobody will receive
    Chan<int> out = goro::merge(ctx, inputs);
    EXPECT_TRUE(pool_test::wait_for_waiters("select", 4));  // every forwarder is parked
    EXPECT_FALSE(out.closed());
    cancel();
    // Drain whatever got through before the cancel; then it is closed.
    while (out.recv().has_value()) {
    }
    EXPECT_TRUE(out.closed());
    // The fixture's teardown check proves no forwarder was left behind.
  });
}

TEST_P(MergeTest, ContextVersionForwardsLikeThePlainOne) {
  run([] {
    auto [ctx, cancel] = goro::with_cancel(goro::background());
    std::vector<Chan<int>> inputs;
    for (int i = 0; i < 3; ++i) inputs.emplace_back(0);
    Chan<int> out = goro::merge(ctx, inputs);
    for (int i = 0; i < 3; ++i) {
      goro::go([in = inputs[i]] {
        for (int k = 1; k <= 100; ++k) in.send(k);
        in.close();
      });
    }
    int sum = 0;
    for (int v : out) sum += v;
    EXPECT_EQ(sum, 3 * 5050);
    cancel();
  });
}

// Fan-out/fan-in: N workers read one jobs channel (Go's fan-out), each
// writes to its own results channel, and merge joins them.
TEST_P(MergeTest, FanOutOverOneChannelFanInWithMerge) {
  run([] {
    constexpr int kWorkers = 4;
    const int jobs_count = static_cast<int>(scaled(2000));
    Chan<int> jobs(16);
    std::vector<Chan<std::pair<int, int>>> results;
    for (int w = 0; w < kWorkers; ++w) {
      Chan<std::pair<int, int>> r(0);
      results.push_back(r);
      goro::go([jobs, r, w] {
        for (int j : jobs) r.send({w, j * j});
        r.close();
      });
    }
    goro::go([jobs, jobs_count] {
      for (int j = 0; j < jobs_count; ++j) jobs.send(j);
      jobs.close();
    });
    std::int64_t sum = 0;
    int count = 0;
    for (auto [worker, v] : goro::merge(results)) {
      (void)worker;
      sum += v;
      ++count;
    }
    std::int64_t want = 0;
    for (std::int64_t j = 0; j < jobs_count; ++j) want += j * j;
    EXPECT_EQ(count, jobs_count);
    EXPECT_EQ(sum, want);
  });
}

}  // namespace
