// goro sync: primitives that park goroutines, never threads (Go's sync package).
// All of them also work from plain threads.
#pragma once

#include "goro/waitgroup.hpp"
