// goro pool: bounded concurrency on top of channels and sync.
//   WorkerPool  a fixed set of worker goroutines over a bounded job queue,
//               with back-pressure and a shutdown that loses nothing
//   Future<T>   a job's result: get() parks until it is there
//   ErrGroup    golang.org/x/sync/errgroup: the first failure cancels the rest
//   merge       fan-in of many channels into one
// docs/pool.md says which one fits when.
#pragma once

#include "goro/errgroup.hpp"
#include "goro/future.hpp"
#include "goro/merge.hpp"
#include "goro/worker_pool.hpp"
