// eh_state.hpp: a context's share of the C++ runtime's per-thread exception
// state (__cxa_eh_globals: the exceptions being handled, the count of
// exceptions in flight). Goroutines share threads, so each goroutine (and
// each M's g0) keeps its own copy and switch.cpp swaps it at every switch.
#pragma once

namespace goro::rt {

struct EhState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

}  // namespace goro::rt
