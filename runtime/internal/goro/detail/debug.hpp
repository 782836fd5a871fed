// goro/detail/debug.hpp: the GORODEBUG switches that goro's modules above
// the runtime consult, and the stack of the caller for their reports. Not
// part of the public contract.
#pragma once

#include <atomic>
#include <iosfwd>
#include <vector>

#include "goro/introspect.hpp"

namespace goro::detail {

// g_lockorder is GORODEBUG=lockorder=1: Mutex and RWMutex record the order
// in which locks are taken and report inversions (sync/src/lockorder.cpp).
// Set by run() from $GORODEBUG when a run starts; read (relaxed) on every
// lock and unlock, so off it costs a load and an untaken branch.
extern std::atomic<bool> g_lockorder;

// current_stack is the caller's stack (a goroutine's or a plain thread's),
// innermost first, as dumps show stacks.
std::vector<Frame> current_stack();

// write_stack writes frames as dumps do: the function, then a tab and
// file:line (+0x offset) on the next line.
void write_stack(std::ostream& out, const std::vector<Frame>& stack);

}  // namespace goro::detail
