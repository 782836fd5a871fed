// traceback.cpp: the stack of a goroutine that is not running, as Go's
// traceback prints it.
//
// What is walked. A goroutine that is switched out (parked, yielded,
// preempted, queued) left its registers in the frame jump_fcontext (or
// ontop_fcontext) pushed on its own stack: g->ctx points at them. One inside
// blocking() is running, but on frames below the blocking() call: its
// registers at that call were captured on the way in (goro_blocking_enter,
// in goroutine.cpp's BlockingScope) and the frames above stay put until it
// comes back out. Either way we have a resume address, a stack pointer and
// the callee-saved registers, which is exactly what unwinding by the
// binary's call-frame information (DWARF CFI, .eh_frame) needs. Frame
// pointers are not used: user code is built with its own flags, usually
// without them.
//
// Libraries. elfutils' libdw does both halves: its Dwfl unwinder steps
// through frames by CFI from a register set we supply (the "thread state"
// callbacks below) reading memory through a callback we bound to the
// goroutine's stack, and its DWARF reader gives function names, lines and
// the chain of inlined calls at an address. Rejected: libunwind (nongnu)
// exports _Unwind_RaiseException and friends from its shared library and
// would interpose on libgcc's C++ exception unwinder depending on link
// order; GCC's libbacktrace symbolizes well but unwinds only the calling
// thread's stack, and ships only as a static archive in GCC's private
// directory; Boost.Stacktrace and std::stacktrace capture the current
// stack only (and GCC 12's libstdc++ has no std::stacktrace). libdw is a
// shared library in Debian (libdw-dev), reads DWARF 5 (GCC 12's default)
// and split debug files in /usr/lib/debug. debuginfod is never asked: a
// dump must not wait on the network.
//
// Holding a goroutine still. A stack may only be read while its goroutine
// cannot run. Every transition into running passes a "hold check"
// (goroutine.hpp): the M stores kRunning into g->status, then loads
// g->held, and if a walker holds g it waits (wait_for_walker). A walker:
//   1. sets g->held for each goroutine of a batch (at most kBatch);
//   2. issues a process-wide memory barrier (membarrier(2), private
//      expedited: every thread running our code executes a full fence);
//   3. loads each g->status: kWaiting, kRunnable (started) or kSyscall
//      means the goroutine is not running and, held, will not start;
//      kRunning means it runs on some thread ("goroutine running on other
//      thread; stack unavailable", Go's words);
//   4. unwinds the ones it may, collecting return addresses only;
//   5. clears g->held (release).
// Steps 1-3 against the M's store-then-load is Dekker's handshake: either
// the walker's load sees kRunning, or the M's load sees held (or both,
// and the M waits for a walker that gives up). Its store-load order would
// normally need a fence on both sides; the barrier in step 2 supplies the
// M's fence remotely, so the hot path (every switch) pays one plain load
// and a branch that is never taken, and the cost lands on the walker:
// one membarrier per batch. Where membarrier is unavailable, an mprotect
// of a page the process owns does the same (the TLB shootdown interrupts
// every CPU running the process), as CoreCLR's FlushProcessWriteBuffers
// does. ready() is not involved: a held goroutine may be readied and
// queued; whoever picks it up waits at the hold check, for microseconds.
// Symbolizing happens after the goroutines are let go.
//
// Cost. Nothing at park time; the hot paths see one load of a flag on the
// goroutine's first cache line. A dump unwinds every goroutine (libdw
// steps through a few frames in microseconds) and symbolizes each distinct
// return address once: the cache lives as long as the process, and a
// dump of 100,000 goroutines parked at a few sites costs about as many
// unwinds as goroutines and a few dozen lookups.
//
// Where the work runs. libdw needs far more stack than a goroutine has
// (reading a compilation unit's DWARF the first time recurses deeply), so
// all of it runs on one thread of its own, started at the first dump and
// asleep on a condition variable ever after: the caller hands it the job
// and waits (a goroutine waits inside blocking(), so its P goes on
// running others). The thread counts as the runtime's own for the
// deadlock check. One job at a time also suits libdw's Dwfl, which is not
// thread-safe.
#include "traceback.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/version.hpp>
#include <cxxabi.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <string_view>
#include <unordered_map>

#include "goro/runtime.hpp"
#include "goroutine.hpp"
#include "machine.hpp"
#include "goro/detail/print.hpp"
#include "sanitizers.hpp"

// goro_rt_capture_caller(RegisterState* out): the state the caller will be
// in right after this call returns: the return address, the stack pointer
// above it, and the callee-saved registers (which a leaf like this leaves
// untouched).
asm(R"(
  .text
  .globl goro_rt_capture_caller
  .hidden goro_rt_capture_caller
  .type goro_rt_capture_caller,@function
goro_rt_capture_caller:
  movq (%rsp), %rax
  movq %rax, 0(%rdi)
  leaq 8(%rsp), %rax
  movq %rax, 8(%rdi)
  movq %rbp, 16(%rdi)
  movq %rbx, 24(%rdi)
  movq %r12, 32(%rdi)
  movq %r13, 40(%rdi)
  movq %r14, 48(%rdi)
  movq %r15, 56(%rdi)
  ret
  .size goro_rt_capture_caller, .-goro_rt_capture_caller
)");

namespace goro::rt {

// Boost.Context 1.74's x86-64 System V jump_fcontext/ontop_fcontext push
// 0x38 bytes below the return address: mxcsr and the x87 control word,
// then r12, r13, r14, r15, rbx, rbp; the fcontext_t is the stack pointer
// after that, so the return address sits at +0x38 and the caller's stack
// pointer is +0x40. Newer Boost releases may add a shadow-stack slot: a
// different version must be checked against its assembly before this
// layout is trusted (the traceback tests would fail first).
#if BOOST_VERSION < 106100 || BOOST_VERSION >= 108700
#error "goro's traceback knows Boost.Context's fcontext frame layout for Boost 1.61-1.86 only"
#endif

RegisterState registers_of_context(const void* fctx) noexcept {
  const auto* p = static_cast<const unsigned char*>(fctx);
  auto word = [p](int off) {
    std::uintptr_t w;
    std::memcpy(&w, p + off, sizeof w);
    return w;
  };
  RegisterState r;
  r.r12 = word(0x08);
  r.r13 = word(0x10);
  r.r14 = word(0x18);
  r.r15 = word(0x20);
  r.rbx = word(0x28);
  r.rbp = word(0x30);
  r.pc = word(0x38);
  r.sp = reinterpret_cast<std::uintptr_t>(p) + 0x40;
  return r;
}

void wait_for_walker(const Goroutine* g) noexcept {
  for (int spins = 0; g->held.load(std::memory_order_acquire); ++spins) {
    if (spins < 1000) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
}

std::atomic<int> g_walker_threads{0};  // 1 once the walker thread exists

int traceback_threads() noexcept { return g_walker_threads.load(std::memory_order_relaxed); }

namespace {

// kBatch goroutines are held at once: a held goroutine that becomes
// runnable waits for the whole batch (a few hundred microseconds at most),
// and every batch costs one process-wide barrier.
constexpr std::size_t kBatch = 64;

// WalkerThread runs every traceback job, one at a time, on a thread with
// a full-size stack (see the essay).
class WalkerThread {
 public:
  static WalkerThread& get() {
    static WalkerThread* w = new WalkerThread;  // never destroyed: a dump may come at exit
    return *w;
  }

  // run executes f on the walker thread and returns when it has. From a
  // goroutine the wait is a blocking() call.
  template <class F>
  void run(F&& f) {
    if (on_it()) {
      f();
      return;
    }
    std::lock_guard<std::mutex> one_job(callers_);
    std::function<void()> job(std::forward<F>(f));
    goro::blocking([&] {
      std::unique_lock<std::mutex> l(mu_);
      if (!started_) {
        std::thread([this] {
          id_.store(std::this_thread::get_id());
          loop();
        }).detach();
        started_ = true;
        g_walker_threads.store(1, std::memory_order_relaxed);
      }
      job_ = &job;
      done_ = false;
      cv_.notify_all();
      cv_.wait(l, [this] { return done_; });
    });
  }

  bool on_it() const { return id_.load() == std::this_thread::get_id(); }

 private:
  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [this] { return job_ != nullptr; });
      std::function<void()>* job = job_;
      l.unlock();
      (*job)();
      l.lock();
      job_ = nullptr;
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex callers_;  // one job at a time
  std::mutex mu_;       // guards the fields below
  std::condition_variable cv_;
  std::function<void()>* job_ = nullptr;
  bool done_ = false;
  bool started_ = false;
  std::atomic<std::thread::id> id_{};
};

// heavy_barrier makes every thread of the process execute a full memory
// barrier before it returns (step 2 of the essay).
void heavy_barrier() noexcept {
  static const bool membarrier_ok = [] {
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  if (membarrier_ok && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
  // Fallback: taking a written page's permission away shoots down its TLB
  // entry on every CPU that may hold it, by an interrupt that serializes.
  static void* page = [] {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }();
  if (page == nullptr) {
    print_stderr("fatal error: goro: no memory barrier for the stack walker\n");
    std::abort();
  }
  mprotect(page, 4096, PROT_READ | PROT_WRITE);
  *static_cast<volatile char*>(page) = 1;
  mprotect(page, 4096, PROT_NONE);
}

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return {};
  if (mangled[0] != '_' || mangled[1] != 'Z') return mangled;
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string out = status == 0 && d != nullptr ? d : mangled;
  std::free(d);
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Where a frame's function belongs, for filtering (see symbolize):
// kCore is goro's machinery (the scheduler, the switch, the internals of
// the primitives), kApi the rest of goro (its public templates and
// functions: Chan<T>::recv, Mutex::lock, the go() thunk that runs the
// goroutine's function), kStd the standard library.
enum class Owner : std::uint8_t { kUser, kApi, kCore, kStd };

bool is_goro(Owner o) { return o == Owner::kApi || o == Owner::kCore; }

Owner owner_of(std::string_view mangled, std::string_view demangled) {
  // Mangled names are the reliable test: "_ZN4goro" is goro::..., with
  // "K" for const members and "ZZ" for entities local to a goro function
  // (the lambdas in goro::go). Unmangled names: goro's assembly and C
  // entry points, and Boost.Context's.
  for (std::string_view p : {"_ZN4goro2rt", "_ZZN4goro2rt", "_ZN4goro6detail", "_ZNK4goro6detail", "_ZZN4goro6detail",
                             "_ZN4goro4parkE", "_ZN4goro5readyE", "_ZN4goro5yieldE", "goro_"}) {
    if (starts_with(mangled, p)) return Owner::kCore;
  }
  for (std::string_view p : {"jump_fcontext", "ontop_fcontext", "make_fcontext"}) {
    if (mangled == p) return Owner::kCore;
  }
  for (std::string_view p : {"_ZN4goro", "_ZNK4goro", "_ZZN4goro", "_ZZNK4goro"}) {
    if (starts_with(mangled, p)) return Owner::kApi;
  }
  if (starts_with(demangled, "goro::rt::") || starts_with(demangled, "goro::detail::")) return Owner::kCore;
  if (starts_with(demangled, "goro::")) return Owner::kApi;
  for (std::string_view p : {"_ZNSt", "_ZNKSt", "_ZSt", "_ZZNSt", "_ZZNKSt", "_ZN9__gnu_cxx", "_ZNK9__gnu_cxx"}) {
    if (starts_with(mangled, p)) return Owner::kStd;
  }
  if (starts_with(demangled, "std::")) return Owner::kStd;
  return Owner::kUser;
}

// SymFrame is one function at a return address (inlined ones included).
struct SymFrame {
  std::string function;  // display name (short_function_name of the demangled name)
  std::string file;
  int line = 0;
  std::uintptr_t offset = 0;  // from the function's entry; 0 for an inlined frame
  Owner owner = Owner::kUser;
};

// Dwarf_Die helpers.
const char* linkage_name(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    if (dwarf_attr_integrate(die, at, &attr) != nullptr) {
      if (const char* s = dwarf_formstring(&attr)) return s;
    }
  }
  return nullptr;
}

// qualified_name builds "ns::Class::name" for a function DIE without a
// linkage name (GCC omits it on constructors, which have two, and on the
// members of local classes, lambdas' call operators among them) from the
// scopes around its declaration. A closure type is "{lambda#N}", N
// counting the closures declared before it in the same scope, and the
// call operator is left out, as short_function_name does.
std::string function_name(Dwarf_Die* die, Owner* owner);

}  // namespace
std::string strip_parameters(const std::string& name);
namespace {

std::string qualified_name(Dwarf_Die* die, Owner* owner) {
  Dwarf_Die origin = *die;
  Dwarf_Attribute attr;
  for (int hops = 0; hops < 4; ++hops) {  // abstract origin, then specification
    Dwarf_Die next;
    if (dwarf_attr(&origin, DW_AT_abstract_origin, &attr) != nullptr && dwarf_formref_die(&attr, &next) != nullptr) {
      origin = next;
    } else if (dwarf_attr(&origin, DW_AT_specification, &attr) != nullptr &&
               dwarf_formref_die(&attr, &next) != nullptr) {
      origin = next;
    } else {
      break;
    }
  }
  const char* base = dwarf_diename(&origin);
  std::string name = base != nullptr ? base : "?";
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes_die(&origin, &scopes);
  for (int i = 1; i < n; ++i) {
    Dwarf_Die* scope = &scopes[i];
    const int tag = dwarf_tag(scope);
    if (tag == DW_TAG_subprogram) {
      // A local class: the enclosing function names the rest.
      name = strip_parameters(function_name(scope, owner)) + "::" + name;
      break;
    }
    if (tag != DW_TAG_namespace && tag != DW_TAG_class_type && tag != DW_TAG_structure_type &&
        tag != DW_TAG_union_type) {
      continue;
    }
    const char* scope_name = dwarf_diename(scope);
    std::string part;
    if (scope_name != nullptr) {
      part = scope_name;
    } else if (tag == DW_TAG_namespace) {
      part = "(anonymous namespace)";
    } else {
      // A closure type: number it among the unnamed classes of its scope.
      int number = 0;
      if (i + 1 < n) {
        Dwarf_Die child;
        if (dwarf_child(&scopes[i + 1], &child) == 0) {
          do {
            const int t = dwarf_tag(&child);
            if ((t == DW_TAG_class_type || t == DW_TAG_structure_type) && dwarf_diename(&child) == nullptr) ++number;
            if (dwarf_dieoffset(&child) == dwarf_dieoffset(scope)) break;
          } while (dwarf_siblingof(&child, &child) == 0);
        }
      }
      part = fmt::format("{{lambda#{}}}", number > 0 ? number : 1);
      if (name == "operator()") name.clear();
    }
    name = name.empty() ? part : part + "::" + name;
  }
  std::free(scopes);
  *owner = owner_of("", name);
  return name;
}

// function_name is the display name of a function DIE, and whose it is.
std::string function_name(Dwarf_Die* die, Owner* owner) {
  if (const char* mangled = linkage_name(die)) {
    const std::string full = demangle(mangled);
    *owner = owner_of(mangled, full);
    // clang names a closure with internal linkage "$_N", N counting across
    // the whole translation unit: the debug information numbers it in its
    // own scope instead, as GCC's "{lambda#N}" does.
    if (full.find("::$_") == std::string::npos) return short_function_name(full);
    const Owner own = *owner;
    std::string name = qualified_name(die, owner);
    *owner = own;
    return name;
  }
  *owner = Owner::kUser;
  return qualified_name(die, owner);
}

// find_scopes appends to `path` the DIEs below `die` whose ranges hold pc,
// outermost first, descending into everything: a concrete function can be
// nested in DIEs that have no address ranges of their own (the out-of-line
// call operator of a lambda in a function template sits inside the
// template's abstract definition), which dwarf_getscopes does not search.
bool find_scopes(Dwarf_Die* die, Dwarf_Addr pc, std::vector<Dwarf_Die>& path) {
  Dwarf_Die child;
  if (dwarf_child(die, &child) != 0) return false;
  do {
    const bool ranged = dwarf_hasattr(&child, DW_AT_low_pc) || dwarf_hasattr(&child, DW_AT_ranges);
    if (ranged) {
      if (dwarf_haspc(&child, pc) > 0) {
        path.push_back(child);
        find_scopes(&child, pc, path);
        return true;
      }
    } else if (find_scopes(&child, pc, path)) {
      return true;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

// cu_at finds the compilation unit holding address `at` of mod. libdw
// looks it up in .debug_aranges, which clang does not emit by default;
// without one, each unit's own ranges are asked in turn.
Dwarf_Die* cu_at(Dwfl_Module* mod, Dwarf_Addr at, Dwarf_Addr* bias) {
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, at, bias)) return cu;
  Dwarf_Die* cu = nullptr;
  while ((cu = dwfl_module_nextcu(mod, cu, bias)) != nullptr) {
    if (dwarf_haspc(cu, at - *bias) > 0) return cu;
  }
  return nullptr;
}

// scopes_at returns the scopes holding pc, innermost first, each inlined
// call its own scope. dwarf_getscopes finds the innermost one, whose
// concrete nesting dwarf_getscopes_die then gives (getscopes itself
// continues into the abstract definition); the slow full search is for
// what getscopes cannot find.
std::vector<Dwarf_Die> scopes_at(Dwarf_Die* cu, Dwarf_Addr pc) {
  std::vector<Dwarf_Die> chain;
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes(cu, pc, &scopes);
  if (n > 0) {
    Dwarf_Die* nesting = nullptr;
    const int m = dwarf_getscopes_die(&scopes[0], &nesting);
    chain.assign(nesting, nesting + std::max(m, 0));
    std::free(nesting);
  }
  std::free(scopes);
  if (chain.empty() && find_scopes(cu, pc, chain)) std::reverse(chain.begin(), chain.end());
  return chain;
}

// The Dwfl session: modules of this process, the unwinder's state, the
// symbol cache. Everything but the cache is the walker thread's alone.
class Session {
 public:
  static Session& get() {
    static Session* s = new Session;  // lives as long as the process: never torn down under a dump
    return *s;
  }

  // refresh reports the process's modules again (libraries may have been
  // loaded since the last dump); modules already known keep their data.
  void refresh() {
    if (dwfl_ == nullptr) return;
    dwfl_report_begin_add(dwfl_);
    dwfl_linux_proc_report(dwfl_, getpid());
    dwfl_report_end(dwfl_, nullptr, nullptr);
    if (!attached_) attached_ = dwfl_attach_state(dwfl_, nullptr, getpid(), &kThreadCallbacks, this);
  }

  // unwind collects the return addresses from `regs` upward, reading
  // memory only within [lo, hi).
  void unwind(const RegisterState& regs, const char* lo, const char* hi, Traceback& out) {
    out.pcs.clear();
    out.elided = false;
    if (regs.pc == 0) return;
    if (!attached_) {  // no unwinder: at least where it stopped
      out.pcs.push_back(regs.pc);
      return;
    }
    regs_ = &regs;
    lo_ = reinterpret_cast<std::uintptr_t>(lo);
    hi_ = reinterpret_cast<std::uintptr_t>(hi);
    out_ = &out;
    dwfl_getthread_frames(dwfl_, getpid(), &Session::on_frame, this);
    regs_ = nullptr;
    out_ = nullptr;
  }

  // frames_at symbolizes one return address. Any thread: a cached answer
  // is read under cache_mu_; a new one is looked up on the walker thread.
  // The reference stays valid (entries are never erased).
  const std::vector<SymFrame>& frames_at(std::uintptr_t pc) {
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      auto it = cache_.find(pc);
      if (it != cache_.end()) return it->second;
    }
    if (WalkerThread::get().on_it()) return learn(pc);
    const std::vector<SymFrame>* found = nullptr;
    WalkerThread::get().run([&] {
      refresh();
      found = &learn(pc);
    });
    return *found;
  }

  // learn looks pc up and caches the answer. Walker thread only.
  const std::vector<SymFrame>& learn(std::uintptr_t pc) {
    {
      std::lock_guard<std::mutex> l(cache_mu_);
      auto it = cache_.find(pc);
      if (it != cache_.end()) return it->second;
    }
    std::vector<SymFrame> frames = lookup(pc);
    std::lock_guard<std::mutex> l(cache_mu_);
    return cache_.emplace(pc, std::move(frames)).first->second;
  }

 private:
  Session() {
    callbacks_.find_elf = dwfl_linux_proc_find_elf;
    callbacks_.find_debuginfo = dwfl_build_id_find_debuginfo;  // local files only, never debuginfod
    callbacks_.section_address = nullptr;
    callbacks_.debuginfo_path = &debuginfo_path_;
    dwfl_ = dwfl_begin(&callbacks_);
  }

  // --- the unwinder's view of "the thread": the stack being walked ---
  // The thread argument is the Session too (set_initial_registers gets it).
  static pid_t next_thread(Dwfl*, void* session, void** thread_arg) {
    if (*thread_arg != nullptr) return 0;
    *thread_arg = session;
    return getpid();
  }
  static bool get_thread(Dwfl*, pid_t, void* session, void** thread_arg) {
    *thread_arg = session;
    return true;
  }
  // memory_read reads one word of the stack being walked. Not
  // instrumented: the words are a stopped goroutine's saved registers and
  // return addresses, which may sit beside a sanitizer's red zones.
  __attribute__((no_sanitize("address", "thread"))) static bool memory_read(Dwfl*, Dwarf_Addr addr,
                                                                            Dwarf_Word* result, void* arg) {
    auto* s = static_cast<Session*>(arg);
    if (addr < s->lo_ || addr + sizeof(Dwarf_Word) > s->hi_) return false;
    *result = *reinterpret_cast<const Dwarf_Word*>(addr);
    return true;
  }
  static bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
    const RegisterState& r = *static_cast<Session*>(arg)->regs_;
    // DWARF register numbers, x86-64: rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip.
    Dwarf_Word regs[17] = {};
    regs[3] = r.rbx;
    regs[6] = r.rbp;
    regs[7] = r.sp;
    regs[12] = r.r12;
    regs[13] = r.r13;
    regs[14] = r.r14;
    regs[15] = r.r15;
    regs[16] = r.pc;
    return dwfl_thread_state_registers(thread, 0, 17, regs);
  }
  static int on_frame(Dwfl_Frame* frame, void* arg) {
    auto* s = static_cast<Session*>(arg);
    Dwarf_Addr pc = 0;
    bool activation = false;
    if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
    if (s->out_->pcs.size() == static_cast<std::size_t>(kMaxFrames)) {
      s->out_->elided = true;
      return DWARF_CB_ABORT;
    }
    s->out_->pcs.push_back(static_cast<std::uintptr_t>(pc));
    return DWARF_CB_OK;
  }
  static constexpr Dwfl_Thread_Callbacks kThreadCallbacks = {
      &Session::next_thread, &Session::get_thread, &Session::memory_read, &Session::set_initial_registers,
      nullptr, nullptr};

  // lookup describes the function(s) at return address pc, innermost first.
  std::vector<SymFrame> lookup(std::uintptr_t pc) {
    std::vector<SymFrame> out;
    if (dwfl_ == nullptr || pc == 0) return out;
    const Dwarf_Addr at = pc - 1;  // inside the call instruction: its line, its function
    Dwfl_Module* mod = dwfl_addrmodule(dwfl_, at);
    if (mod == nullptr) return out;
    GElf_Off sym_off = 0;
    GElf_Sym sym;
    const char* sym_name = dwfl_module_addrinfo(mod, at, &sym_off, &sym, nullptr, nullptr, nullptr);
    const std::uintptr_t entry_offset = sym_name != nullptr ? sym_off + 1 : 0;

    Dwarf_Addr bias = 0;
    Dwarf_Die* cu = cu_at(mod, at, &bias);
    int line = 0;
    const char* file = nullptr;
    if (cu != nullptr) {
      if (Dwarf_Line* l = dwarf_getsrc_die(cu, at - bias)) {
        file = dwarf_linesrc(l, nullptr, nullptr);
        dwarf_lineno(l, &line);
      }
    }
    if (cu != nullptr) {
      const std::vector<Dwarf_Die> chain = scopes_at(cu, at - bias);
      const int m = static_cast<int>(chain.size());
      Dwarf_Files* files = nullptr;
      std::size_t nfiles = 0;
      const bool have_files = dwarf_getsrcfiles(cu, &files, &nfiles) == 0;
      for (int i = 0; i < m; ++i) {
        Dwarf_Die die_copy = chain[static_cast<std::size_t>(i)];
        Dwarf_Die* die = &die_copy;
        const int tag = dwarf_tag(die);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
        SymFrame f;
        f.function = function_name(die, &f.owner);
        f.file = file != nullptr ? file : "";
        f.line = line;
        if (tag == DW_TAG_inlined_subroutine) {
          // The caller's line is where this was inlined.
          Dwarf_Attribute attr;
          Dwarf_Word call_line = 0;
          Dwarf_Word call_file = 0;
          if (dwarf_attr(die, DW_AT_call_line, &attr) != nullptr) dwarf_formudata(&attr, &call_line);
          line = static_cast<int>(call_line);
          if (have_files && dwarf_attr(die, DW_AT_call_file, &attr) != nullptr &&
              dwarf_formudata(&attr, &call_file) == 0 && call_file < nfiles) {
            file = dwarf_filesrc(files, call_file, nullptr, nullptr);
          }
          out.push_back(std::move(f));
          continue;
        }
        f.offset = entry_offset;
        out.push_back(std::move(f));
        break;  // the physical function: done
      }
    }
    if (out.empty()) {
      // No debug information: the ELF symbol table, if it names pc.
      SymFrame f;
      const std::string full = sym_name != nullptr ? demangle(sym_name) : "?";
      f.owner = owner_of(sym_name != nullptr ? sym_name : "", full);
      f.function = short_function_name(full);
      f.file = file != nullptr ? file : "";
      f.line = line;
      f.offset = entry_offset;
      out.push_back(std::move(f));
    }
    return out;
  }

  Dwfl_Callbacks callbacks_{};
  char* debuginfo_path_ = nullptr;
  Dwfl* dwfl_ = nullptr;
  bool attached_ = false;
  // The walk in progress (unwind's arguments, for the callbacks).
  const RegisterState* regs_ = nullptr;
  std::uintptr_t lo_ = 0;
  std::uintptr_t hi_ = 0;
  Traceback* out_ = nullptr;
  std::mutex cache_mu_;  // guards cache_ (filled by the walker thread, read by anyone)
  std::unordered_map<std::uintptr_t, std::vector<SymFrame>> cache_;
};

bool traceback_system() {
  const char* v = std::getenv("GOROTRACEBACK");
  return v != nullptr && (std::strcmp(v, "system") == 0 || std::strcmp(v, "crash") == 0);
}

}  // namespace

void process_barrier() noexcept { heavy_barrier(); }

void tracebacks_of(std::vector<GoroutineStack>& gs) {
  Machine* m = current_machine();
  const Goroutine* self = m != nullptr ? m->curg.load(std::memory_order_relaxed) : nullptr;
  // The caller's own stack, if it is among them, is walked from here: the
  // frames above this one stay put while we wait for the walker thread.
  RegisterState here;
  goro_rt_capture_caller(&here);
  WalkerThread::get().run([&] {
    Session& s = Session::get();
    s.refresh();
    for (std::size_t begin = 0; begin < gs.size(); begin += kBatch) {
      const std::size_t end = std::min(gs.size(), begin + kBatch);
      for (std::size_t i = begin; i < end; ++i) {
        if (gs[i].g != self) gs[i].g->held.store(true, std::memory_order_relaxed);
      }
      heavy_barrier();
      for (std::size_t i = begin; i < end; ++i) {
        GoroutineStack& e = gs[i];
        Goroutine* g = e.g;
        e.trace = Traceback{};
        if (g == self) {
          e.view = StackView::kSelf;
          e.status = GStatus::kRunning;
          s.unwind(here, g->stack.lo, g->stack.hi, e.trace);
          continue;
        }
        // Acquire pairs with the release stores of the state a goroutine
        // leaves in (finish_switch_out, spawn_commit, enter_blocking): its
        // saved registers and stack are visible.
        const GStatus st = g->status.load(std::memory_order_acquire);
        if (g->id.load(std::memory_order_relaxed) != e.id || st == GStatus::kDead) {
          e.view = StackView::kGone;
          continue;
        }
        // Held, g cannot run: what it waits for stays as its stack says.
        e.status = st;
        e.reason = g->wait_reason.load(std::memory_order_relaxed);
        switch (st) {
          case GStatus::kRunning:
            e.view = StackView::kRunning;
            break;
          case GStatus::kRunnable:
            if (!g->started) {
              e.view = StackView::kNeverRan;
              break;
            }
            [[fallthrough]];
          case GStatus::kWaiting:
            e.view = StackView::kWalked;
            s.unwind(registers_of_context(g->ctx), g->stack.lo, g->stack.hi, e.trace);
            break;
          case GStatus::kSyscall:
            e.view = StackView::kWalked;
            if (const RegisterState* r = g->syscall_regs) s.unwind(*r, g->stack.lo, g->stack.hi, e.trace);
            break;
          case GStatus::kDead:
            break;
        }
      }
      for (std::size_t i = begin; i < end; ++i) {
        if (gs[i].g != self) gs[i].g->held.store(false, std::memory_order_release);
      }
    }
    // Symbolize every new address now, while we are here: the callers'
    // lookups then hit the cache.
    for (const GoroutineStack& e : gs) {
      for (std::uintptr_t pc : e.trace.pcs) s.learn(pc);
    }
  });
}

Traceback traceback_here(const char* lo, const char* hi) {
  RegisterState here;
  goro_rt_capture_caller(&here);
  Traceback t;
  WalkerThread::get().run([&] {
    Session& s = Session::get();
    s.refresh();
    s.unwind(here, lo, hi, t);
    for (std::uintptr_t pc : t.pcs) s.learn(pc);
  });
  return t;
}

std::vector<Frame> symbolize(const Traceback& t, std::vector<std::uintptr_t>* offsets) {
  Session& s = Session::get();
  const bool system = traceback_system();
  struct Item {
    const SymFrame* f;
    std::uintptr_t pc;
  };
  std::vector<Item> all;
  for (std::uintptr_t pc : t.pcs) {
    for (const SymFrame& f : s.frames_at(pc)) all.push_back({&f, pc});
  }
  // Hidden: goro's own frames, and a run of standard-library frames that
  // touches one of them (std::invoke between a pool worker and its job,
  // std::unique_lock::lock above Mutex::lock), as Go hides its runtime.
  // If that leaves nothing (code built without debug information, all of
  // it inlined into goro's templates), goro's public frames come back, as
  // Go shows runtime frames rather than none: the go() thunk's name at
  // least names the user's function.
  std::vector<bool> hide(all.size(), false);
  for (int pass = 0; pass < 2 && !system; ++pass) {
    auto hidden = [pass](Owner o) { return pass == 0 ? is_goro(o) : o == Owner::kCore; };
    for (std::size_t i = 0; i < all.size(); ++i) hide[i] = hidden(all[i].f->owner);
    for (std::size_t i = 0; i < all.size();) {
      if (all[i].f->owner != Owner::kStd) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < all.size() && all[j].f->owner == Owner::kStd) ++j;
      if ((i > 0 && hidden(all[i - 1].f->owner)) || (j < all.size() && hidden(all[j].f->owner))) {
        for (std::size_t k = i; k < j; ++k) hide[k] = true;
      }
      i = j;
    }
    if (std::find(hide.begin(), hide.end(), false) != hide.end()) break;
  }
  if (std::find(hide.begin(), hide.end(), false) == hide.end()) hide.assign(all.size(), false);
  std::vector<Frame> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (hide[i]) continue;
    const SymFrame& f = *all[i].f;
    out.push_back(Frame{f.function, f.file, f.line, all[i].pc});
    if (offsets != nullptr) offsets->push_back(f.offset);
  }
  return out;
}

std::vector<std::uintptr_t> function_offsets(const std::vector<Frame>& stack) {
  Session& s = Session::get();
  std::vector<std::uintptr_t> out(stack.size(), 0);
  for (std::size_t i = 0; i < stack.size(); ++i) {
    if (i + 1 < stack.size() && stack[i + 1].pc == stack[i].pc) continue;  // inlined into the next one
    const std::vector<SymFrame>& at = s.frames_at(stack[i].pc);
    if (!at.empty() && at.back().function == stack[i].function) out[i] = at.back().offset;
  }
  return out;
}

void trim_throw_frames(Traceback& t) {
  Session& s = Session::get();
  std::size_t cut = 0;
  const std::size_t look = std::min<std::size_t>(t.pcs.size(), 32);
  for (std::size_t i = 0; i < look; ++i) {
    const std::vector<SymFrame>& at = s.frames_at(t.pcs[i]);
    if (at.empty()) continue;
    const std::string& name = at.back().function;
    if (name == "__cxa_throw" || name == "__cxa_rethrow" || name == "_Unwind_RaiseException" ||
        name == "_Unwind_Resume_or_Rethrow" || starts_with(name, "std::rethrow_exception(") ||
        starts_with(name, "std::terminate(")) {
      cut = i + 1;
    }
  }
  t.pcs.erase(t.pcs.begin(), t.pcs.begin() + static_cast<std::ptrdiff_t>(cut));
}

bool caller_frame(std::uintptr_t pc, Frame* out, std::uintptr_t* offset) {
  if (pc == 0) return false;
  for (const SymFrame& f : Session::get().frames_at(pc)) {
    if (is_goro(f.owner)) continue;
    *out = Frame{f.function, f.file, f.line, pc};
    if (offset != nullptr) *offset = f.offset;
    return true;
  }
  return false;
}

namespace {

// split_qualified splits a demangled name at its top-level "::", keeping
// (), <>, [] and {} nesting.
std::vector<std::string> split_qualified(const std::string& name) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == '>' || c == ']' || c == '}') --depth;
    if (depth == 0 && c == ':' && i + 1 < name.size() && name[i + 1] == ':') {
      parts.push_back(cur);
      cur.clear();
      ++i;
      continue;
    }
    cur += c;
  }
  parts.push_back(cur);
  return parts;
}

// drop_parameter_list cuts "f(int) const" to "f"; "(anonymous namespace)"
// is a name, not a parameter list, and stays.
std::string drop_parameter_list(std::string p) {
  int d = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '(' && d == 0 && i > 0) {
      p.resize(i);
      break;
    }
    if (c == '<' || c == '[' || c == '{') ++d;
    if (c == '>' || c == ']' || c == '}') --d;
  }
  return p;
}

}  // namespace

std::string strip_parameters(const std::string& name) {
  std::string out;
  bool after_lambda = false;
  for (const std::string& part : split_qualified(name)) {
    // A closure's call operator adds nothing to the closure's name.
    if (after_lambda && starts_with(part, "operator()")) continue;
    after_lambda = starts_with(part, "{lambda");
    if (!out.empty()) out += "::";
    out += drop_parameter_list(part);
  }
  return out;
}

std::string short_function_name(const std::string& name) {
  if (name.find("{lambda(") == std::string::npos) return name;
  std::vector<std::string> parts = split_qualified(name);
  // A template function's return type comes first ("auto main::..."):
  // drop what precedes the last top-level space of the first part.
  {
    std::string& first = parts.front();
    int d = 0;
    std::size_t cut = std::string::npos;
    for (std::size_t i = 0; i < first.size(); ++i) {
      const char c = first[i];
      if (c == '(' || c == '<' || c == '[' || c == '{') ++d;
      if (c == ')' || c == '>' || c == ']' || c == '}') --d;
      if (d == 0 && c == ' ') cut = i;
    }
    if (cut != std::string::npos) first = first.substr(cut + 1);
  }
  std::string out;
  bool after_lambda = false;
  for (const std::string& part : parts) {
    std::string p = part;
    if (starts_with(p, "{lambda(")) {
      // "{lambda(auto:1)#2}" -> "{lambda#2}"
      const std::size_t hash = p.rfind('#');
      p = hash != std::string::npos ? "{lambda" + p.substr(hash) : "{lambda}";
      after_lambda = true;
    } else if (after_lambda && (starts_with(p, "operator()") || starts_with(p, "_FUN("))) {
      continue;  // the closure's call operator (or its static invoker) adds nothing
    } else {
      after_lambda = false;
      p = drop_parameter_list(p);  // and what follows it: " const", a [with ...]
    }
    if (!out.empty()) out += "::";
    out += p;
  }
  return out;
}

}  // namespace goro::rt
