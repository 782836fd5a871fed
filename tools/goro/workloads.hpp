// workloads.hpp: how `goro bench` workloads are written and registered.
//
// Each workload is a function that runs inside goro::run() and returns a
// Result (ops, wall time of the measured section, extra "k=v" fields, or a
// self-check error). Files register theirs with GORO_BENCH_WORKLOAD; the
// runner (bench.cpp) looks workloads up by name.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <fmt/format.h>

namespace goro_cli {

struct Result {
  std::int64_t n = 0;
  std::chrono::nanoseconds wall{0};
  std::string extra;  // " k=v ..."
  std::string error;  // non-empty: the self-check failed (no spaces)
};

using WorkloadFn = Result (*)();

// register_workload adds a workload; `order` sorts the listing (SPEC.md's order).
bool register_workload(const char* name, int order, WorkloadFn fn);

// mismatch formats a self-check failure as SPEC.md wants it.
template <class T>
std::string mismatch(const char* what, T got, T want) {
  return fmt::format("{}_mismatch:got={},want={}", what, got, want);
}

}  // namespace goro_cli

#define GORO_BENCH_CONCAT2(a, b) a##b
#define GORO_BENCH_CONCAT(a, b) GORO_BENCH_CONCAT2(a, b)
// GORO_BENCH_WORKLOAD(name, order, fn) registers fn as `goro bench name`.
#define GORO_BENCH_WORKLOAD(name, order, fn) \
  static const bool GORO_BENCH_CONCAT(registered_, __LINE__) = ::goro_cli::register_workload(name, order, fn)
