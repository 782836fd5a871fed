// traceback.hpp: where a goroutine stands. Unwinding a stopped stack by the
// binary's unwind tables, symbolizing the return addresses, and the rules
// that keep a walker off a stack that is running (traceback.cpp has the
// design essay).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "goro/introspect.hpp"
#include "goro/park.hpp"
#include "goroutine.hpp"

namespace goro::rt {

// RegisterState is what unwinding a stopped frame needs on x86-64: the
// address it resumes at, its stack pointer and the callee-saved registers.
// The field order is the capture stubs' (traceback.cpp, goro_blocking_enter):
// do not reorder.
struct RegisterState {
  std::uintptr_t pc = 0;  // a return address: the instruction after a call
  std::uintptr_t sp = 0;
  std::uintptr_t rbp = 0;
  std::uintptr_t rbx = 0;
  std::uintptr_t r12 = 0;
  std::uintptr_t r13 = 0;
  std::uintptr_t r14 = 0;
  std::uintptr_t r15 = 0;
};
static_assert(sizeof(RegisterState) == 8 * sizeof(std::uintptr_t));

// kMaxFrames bounds one traceback, as Go's tracebacks are bounded (100):
// beyond it the dump says "...additional frames elided...".
inline constexpr int kMaxFrames = 100;

// Traceback is one goroutine's stack as raw return addresses, innermost
// first. `elided`: the stack went on past kMaxFrames.
struct Traceback {
  std::vector<std::uintptr_t> pcs;
  bool elided = false;
};

// StackView is what tracebacks_of found for one goroutine.
enum class StackView : std::uint8_t {
  kWalked,       // pcs holds its stack
  kNeverRan,     // runnable but never started: no stack yet
  kRunning,      // running on another thread: stack unavailable (Go's words)
  kSelf,         // the caller itself: walked from the caller's frame
  kGone,         // exited (and its record possibly reused) before we looked
};

struct GoroutineStack {
  Goroutine* g = nullptr;
  std::uint64_t id = 0;  // the id the caller expects g to have
  // spawn: g is a spawn record (the goroutine had not run when listed); if
  // the walk finds it gone, the goroutine has started since (moved to its
  // stack's record), and collect() keeps it as listed.
  bool spawn = false;
  StackView view = StackView::kGone;
  Traceback trace;
  // What g was doing when its stack was taken (read while it was held):
  // the state and wait reason that go with the stack.
  GStatus status = GStatus::kDead;
  WaitReason reason = WaitReason::none;
};

// process_barrier makes every thread of the process execute a full memory
// barrier before it returns (membarrier(2)): the remote half of the stack
// walker's handshake, and of a listing's with bind_stack (goroutine.cpp).
void process_barrier() noexcept;

// tracebacks_of walks the stacks of `gs` (each with the id it is expected
// to have), in place. Any thread, at any time while the run is alive; it
// holds each goroutine still while walking it (traceback.cpp, "Holding a
// goroutine still"). The work runs on the walker thread; the caller
// waits (a goroutine inside blocking()).
void tracebacks_of(std::vector<GoroutineStack>& gs);

// traceback_here walks the caller's own stack (the panicking goroutine's,
// say), whose bounds are [lo, hi).
Traceback traceback_here(const char* lo, const char* hi);

// traceback_threads is 1 once the walker thread exists, else 0: the
// deadlock check counts it as the runtime's own.
int traceback_threads() noexcept;

// symbolize turns pcs (return addresses, innermost first) into frames, one
// per function including inlined ones, innermost first. Internal frames
// (goro's own) are dropped unless GOROTRACEBACK=system; `offsets`, if not
// null, receives each frame's distance from its function's entry (0 for
// an inlined frame), for the dump's "+0x4c". Cached per address.
std::vector<Frame> symbolize(const Traceback& t, std::vector<std::uintptr_t>* offsets = nullptr);

// function_offsets gives, for each frame of a symbolized stack, its
// return address's distance from the entry of its function ("+0x4c"), or
// 0 for a frame inlined into another (Go prints no offset for those).
std::vector<std::uintptr_t> function_offsets(const std::vector<Frame>& stack);

// trim_throw_frames drops the frames of the C++ runtime that a stack
// captured in a terminate handler starts with, up to and including the
// throw (__cxa_throw, std::rethrow_exception, ...): the panic's stack
// starts where the exception was thrown.
void trim_throw_frames(Traceback& t);

// caller_frame describes the first frame outside goro at `pc` (a return
// address, e.g. the go() call site of a goroutine): its function and
// line. False when nothing is known about pc.
bool caller_frame(std::uintptr_t pc, Frame* out, std::uintptr_t* offset);

// strip_parameters drops each component's parameter list:
// "ns::f(int)::g() const" becomes "ns::f::g".
std::string strip_parameters(const std::string& name);

// short_function_name renders a demangled C++ name the way Go names
// closures: "main(int, char**)::{lambda()#1}::operator()() const" becomes
// "main::{lambda#1}"; names without a lambda are returned unchanged.
std::string short_function_name(const std::string& demangled);

// capture_caller records the state its caller will have once it returns
// (x86-64 assembly, traceback.cpp).
extern "C" void goro_rt_capture_caller(RegisterState* out) noexcept;

// registers_of_context reads the registers a suspended fcontext saved
// (Boost.Context's jump_fcontext / ontop_fcontext frame layout).
RegisterState registers_of_context(const void* fctx) noexcept;

}  // namespace goro::rt
