// goro sync: primitives that park goroutines, never threads (Go's sync
// package, plus golang.org/x/sync/semaphore). All of them also work from
// plain threads. docs/sync.md says which one fits when.
#pragma once

#include "goro/cond.hpp"
#include "goro/mutex.hpp"
#include "goro/once.hpp"
#include "goro/rwmutex.hpp"
#include "goro/semaphore.hpp"
#include "goro/waitgroup.hpp"
