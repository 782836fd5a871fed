// run.cpp: the life of one run(): start-up, the wait for main, teardown,
// and what outlives it.
//
// run_main (goro::run) builds the Runtime from Options and $GOMAXPROCS /
// $GORODEBUG, makes the calling thread M0 with P0, builds goroutine 1 by
// hand, starts sysmon and enters the scheduler loop. When main returns
// (begin_exit), every M leaves its loop; run_main stops sysmon, joins the
// Ms (saying so on stderr if one is stuck in a blocking call), closes the
// door to plain threads (external.hpp) and unwinds every goroutine still
// alive (unwind_all: docs/design.md, "Lifecycle of a run"). Before
// unwinding them it records what they were doing: last_run_leftovers()
// and leftovers_since(), which LeakCheck reads, outlive the run.
//
// Only one run is active at a time in a process (g_run_active); runs may
// follow each other any number of times.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "external.hpp"
#include "goro/detail/debug.hpp"
#include "netpoll.hpp"
#include "goro/detail/print.hpp"
#include "sanitizers.hpp"
#include "scheduler.hpp"
#include "traceback.hpp"

namespace goro::rt {

namespace {

std::atomic<Runtime*> g_external_runtime{nullptr};
std::atomic<std::int64_t> g_external_refs{0};
std::atomic<bool> g_run_active{false};
std::atomic<std::int64_t> g_last_unwound{0};
std::mutex g_leftovers_mu;
std::vector<GoroutineInfo> g_leftovers;  // under g_leftovers_mu
// The leftovers of every run, for leftovers_since(): the newest
// kLeftoverLogSize descriptions (~200 bytes each) and two counters that
// make a RunsMark. All under g_leftovers_mu, written by record_leftovers.
constexpr std::size_t kLeftoverLogSize = 1000;
std::deque<Leftover> g_leftover_log;
std::uint64_t g_runs_ended = 0;
std::uint64_t g_leftovers_total = 0;

// record_leftovers keeps a description of the goroutines still alive when
// main returned (teardown, before unwinding them, and before they are made
// runnable to unwind, so that each keeps its wait reason), for leak reports.
void record_leftovers(Runtime* rt) {
  std::vector<GoroutineInfo> all = goroutines_of(rt);
  std::lock_guard<std::mutex> l(g_leftovers_mu);
  for (const GoroutineInfo& g : all) {
    if (g_leftover_log.size() == kLeftoverLogSize) g_leftover_log.pop_front();
    g_leftover_log.push_back(Leftover{g_runs_ended + 1, g});
  }
  g_leftovers_total += all.size();
  ++g_runs_ended;
  g_leftovers = std::move(all);
}

int procs_from(const Options& options) {
  if (options.procs < 0 || options.procs > 1024) {
    throw std::invalid_argument(
        fmt::format("goro::run: Options::procs must be between 0 and 1024, got {}", options.procs));
  }
  if (options.procs > 0) return options.procs;
  if (const char* env = std::getenv("GOMAXPROCS")) {
    // As Go: a positive integer is honoured, anything else ignored.
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0) return static_cast<int>(std::min<long>(n, 1024));
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, 1024));
}

std::size_t stack_size_from(const Options& options) {
  if (options.stack_size == 0) return kDefaultStackSize;
  if (options.stack_size > kMaxStackSize) {
    throw std::invalid_argument(
        fmt::format("goro::run: Options::stack_size must be at most 1 GiB, got {}", options.stack_size));
  }
  return std::max(options.stack_size, kMinStackSize);
}

DebugSettings parse_gorodebug() {
  DebugSettings d;
  const char* env = std::getenv("GORODEBUG");
  if (env == nullptr) return d;
  std::string s(env);
  std::size_t pos = 0;
  while (pos <= s.size()) {
    std::size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    const std::string item = s.substr(pos, comma - pos);
    const std::size_t eq = item.find('=');
    if (eq != std::string::npos) {
      const std::string key = item.substr(0, eq);
      const int value = std::atoi(item.c_str() + eq + 1);
      if (key == "schedtrace") d.schedtrace_ms = value > 0 ? value : 0;
      if (key == "scheddetail") d.scheddetail = value != 0;
      if (key == "deadlock") d.deadlock_check = value != 0;
      if (key == "sigquit") d.sigquit_exits = item.substr(eq + 1) != "dump";
      if (key == "introspect") d.introspect = value != 0;
      if (key == "lockorder") d.lockorder = value != 0;
      if (key == "migrate") d.migrate = value != 0;
      if (key == "blockwarn") d.blockwarn = value != 0;
    }
    pos = comma + 1;
  }
  return d;
}

// Teardown: unwind every goroutine still alive when main returned.
void unwind_all(Runtime* rt, Machine* m0) {
  rt->tearing_down = true;
  orphans_teardown_begin();
  if (m0->p == nullptr) {
    LockGuard l(rt->lock);
    Processor* p = idle_p_get_locked(rt);
    if (p == nullptr) fatal("goro: no P for teardown");
    m0->p = p;
    p->m.store(m0, std::memory_order_relaxed);
    p->status.store(PStatus::kRunning, std::memory_order_relaxed);
  }
  for (const auto& p : rt->allp) p->clear_timers();

  std::vector<Goroutine*> todo;
  for (const auto& p : rt->allp) {
    if (Goroutine* g = std::exchange(p->migrant, nullptr)) todo.push_back(g);
    if (Goroutine* g = p->runnext.exchange(nullptr)) todo.push_back(g);
    while (Goroutine* g = p->runq.pop()) todo.push_back(g);
  }
  {
    LockGuard l(rt->lock);
    while (Goroutine* g = global_runq_pop_locked(rt)) todo.push_back(g);
  }
  record_leftovers(rt);
  for_each_goroutine(rt, [&](Goroutine* g, bool) {
    if (cas_status<GStatus::kWaiting, GStatus::kRunnable>(g, std::memory_order_seq_cst)) {
      // Nothing ended its park: its waiter may still be linked somewhere
      // (detail::park_abandoned, orphans.cpp).
      g->abandoned = true;
      todo.push_back(g);
    }
  });
  // Close what the run opened through goro::net and left open (a Conn in a
  // leaked object, a global): parked readers wake with "use of closed
  // network connection" as they unwind, and no descriptor outlives the run.
  netpoll_teardown(rt->netpoll_run);
  g_last_unwound.store(rt->live.load(), std::memory_order_relaxed);

  Processor* p = m0->p;
  for (Goroutine* g : todo) {
    g->unwind = true;
    runq_put(p, g, false);
  }
  // Run them until nothing is runnable. Each resumes at its switch point
  // and unwinds from there (or, never started, destroys its function
  // object); destructors may ready others, which run here too.
  for (;;) {
    bool inherit = false;
    Goroutine* g = runq_get(p, &inherit);
    if (g == nullptr) {
      LockGuard l(rt->lock);
      g = global_runq_get_locked(rt, p, 0);
    }
    if (g == nullptr) break;
    g->unwind = true;
    execute(m0, g, false);
    if (m0->p == nullptr) fatal("goro: teardown lost its P");
  }
  netpoll_run_end();
  const std::int64_t stuck = rt->live.load();
  if (stuck > 0) {
    print_stderr("goro: {} goroutine(s) blocked again while unwinding at the end of run(); "
                 "their memory is left allocated\n",
                 stuck);
    rt->stacks.leak_slabs();
    rt->records.leak();
  }
  orphans_teardown_end();
}

}  // namespace

Runtime::Runtime(int procs_, std::size_t stack_size)
    : procs(procs_), allp(static_cast<std::size_t>(procs_ + kMaxSpareProcs)), stacks(stack_size) {
  for (int i = 0; i < procs; ++i) {
    allp.push_back(std::make_unique<Processor>(i));
  }
  for (int i = 1; i <= procs; ++i) {
    if (std::gcd(i, procs) == 1) steal_strides.push_back(i);
  }
}

Runtime::~Runtime() = default;

void begin_exit() {
  Runtime* rt = g_runtime;
  // From here on, every primitive's destruction is recorded (orphans.cpp).
  detail::g_run_exiting.store(true, std::memory_order_seq_cst);
  rt->exiting.store(true, std::memory_order_seq_cst);
  {
    LockGuard l(rt->lock);
    for (const auto& m : rt->allm) m->park_note.wakeup();
  }
  netpoll_break();  // the M blocked in the poller is on no idle list
  wake_sysmon();
}

// --- outsiders -----------------------------------------------------------

Runtime* external_acquire() noexcept {
  g_external_refs.fetch_add(1, std::memory_order_seq_cst);
  Runtime* rt = g_external_runtime.load(std::memory_order_seq_cst);
  if (rt == nullptr) {
    g_external_refs.fetch_sub(1, std::memory_order_seq_cst);
    return nullptr;
  }
  return rt;
}

void external_release() noexcept { g_external_refs.fetch_sub(1, std::memory_order_seq_cst); }

void external_open(Runtime* rt) noexcept { g_external_runtime.store(rt, std::memory_order_seq_cst); }

void external_close_and_drain() noexcept {
  g_external_runtime.store(nullptr, std::memory_order_seq_cst);
  while (g_external_refs.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace goro::rt

namespace goro {

using namespace goro::rt;

namespace detail {

int run_main(InvokeFn main, void* arg, const Options& options) {
  if (current_machine() != nullptr) {
    throw std::logic_error("goro::run: called from inside a goroutine (a run is already active)");
  }
  const int procs = procs_from(options);
  const std::size_t stack_size = stack_size_from(options);
  bool expected = false;
  if (!g_run_active.compare_exchange_strong(expected, true)) {
    throw std::logic_error("goro::run: another run() is already active in this process");
  }

  orphans_run_start();
  auto* rt = new Runtime(procs, stack_size);
  netpoll_init();
  rt->netpoll_run = netpoll_run_begin();
  rt->netpoll_polls_base = netpoll_polls();
  rt->netpoll_events_base = netpoll_events();
  rt->debug = parse_gorodebug();
  detail::g_lockorder.store(rt->debug.lockorder, std::memory_order_relaxed);
  if (rt->debug.introspect) introspect_server_start();
  rt->start_ns = now_ns();
  rt->coarse_now.store(rt->start_ns, std::memory_order_relaxed);
  rt->lastpoll.store(rt->start_ns, std::memory_order_relaxed);
  g_runtime = rt;
  rt->goid_gen.store(1, std::memory_order_relaxed);  // main is goroutine 1
  for (int i = procs - 1; i >= 0; --i) {
    LockGuard l(rt->lock);
    idle_p_put_locked(rt, rt->allp[static_cast<std::size_t>(i)].get());
  }

  // M0 is the thread that called run().
  Machine* m0;
  {
    LockGuard l(rt->lock);
    rt->allm.push_back(std::make_unique<Machine>(rt->mcount.fetch_add(1, std::memory_order_relaxed)));
    m0 = rt->allm.back().get();
  }
  m0->is_m0 = true;
  m0->rng = static_cast<std::uint64_t>(rt->start_ns);
  set_current_machine(m0);
  machine_context_init(m0);
  install_signal_handlers();
  install_panic_handler();
  machine_signal_init(m0);
  {
    LockGuard l(rt->lock);
    m0->p = idle_p_get_locked(rt);
  }
  acquire_p(m0, m0->p);

  // Goroutine 1 runs main. Built by hand: no wake_p before main even starts.
  struct MainFn {
    InvokeFn invoke;
    void* arg;
    void operator()() const { invoke(arg); }
  };
  const SpawnSlot slot = spawn_reserve(sizeof(MainFn), alignof(MainFn), SourceLocation::current());
  ::new (slot.storage) MainFn{main, arg};
  Goroutine* g1 = slot.g;
  g1->invoke = [](void* p) { (*static_cast<MainFn*>(p))(); };
  g1->destroy = [](void* p) noexcept { static_cast<MainFn*>(p)->~MainFn(); };
  static_assert(std::is_trivially_copyable_v<MainFn>);
  g1->relocate = nullptr;  // its bytes are copied when it moves into its stack
  g1->file.store("goro::run", std::memory_order_relaxed);
  g1->line.store(0, std::memory_order_relaxed);
  g1->function.store("main", std::memory_order_relaxed);
  set_status<GStatus::kDead, GStatus::kRunnable>(g1, std::memory_order_relaxed);
  rt->live.store(1, std::memory_order_relaxed);
  m0->p->created.add();
  runq_put(m0->p, g1, false);

  external_open(rt);
  rt->runtime_threads.store(1, std::memory_order_relaxed);  // sysmon
  rt->sysmon_thread = std::thread([rt] { sysmon_main(rt); });

  schedule_loop(m0);

  // main returned. Stop sysmon first: once exiting is set, it is the only
  // party that could still start a new M (handoff_p from retake).
  rt->sysmon_stop.store(true, std::memory_order_seq_cst);
  wake_sysmon();
  rt->sysmon_thread.join();
  // Then wait for the other Ms to leave their scheduler loops.
  const std::int64_t wait_start = now_ns();
  bool warned = false;
  for (;;) {
    std::vector<Machine*> ms;
    {
      LockGuard l(rt->lock);
      for (const auto& m : rt->allm) {
        if (!m->is_m0 && !m->joined) ms.push_back(m.get());
      }
    }
    if (ms.empty()) break;
    for (Machine* m : ms) {
      for (;;) {
        if (m->exited.load(std::memory_order_acquire)) {
          // new_m assigns the handle just after the thread starts.
          LockGuard l(rt->lock);
          if (m->thread.joinable()) break;
        }
        // A thread inside blocking() (or a goroutine running without
        // runtime calls) keeps run() waiting: say so, do not hang silently.
        if (!warned && now_ns() - wait_start > 1000000000) {
          print_stderr("goro: run() is waiting for goroutines still inside blocking() calls "
                       "or running without runtime calls\n");
          warned = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      m->thread.join();
      m->joined = true;
    }
  }
  external_close_and_drain();

  unwind_all(rt, m0);

  machine_signal_fini(m0);
  remove_panic_handler();
  remove_signal_handlers();
  set_current_machine(nullptr);
  g_runtime = nullptr;
  delete rt;
  g_run_active.store(false, std::memory_order_seq_cst);
  return 0;
}

}  // namespace detail

std::int64_t num_goroutine() noexcept {
  if (current_machine() != nullptr && g_runtime != nullptr) return g_runtime->live.load(std::memory_order_relaxed);
  ExternalRef ref;
  return ref ? ref.get()->live.load(std::memory_order_relaxed) : 0;
}

int gomaxprocs() noexcept {
  if (current_machine() != nullptr && g_runtime != nullptr) return g_runtime->procs;
  ExternalRef ref;
  return ref ? ref.get()->procs : 0;
}

std::int64_t last_run_unwound() noexcept { return g_last_unwound.load(std::memory_order_relaxed); }

std::vector<GoroutineInfo> last_run_leftovers() {
  std::lock_guard<std::mutex> l(g_leftovers_mu);
  return g_leftovers;
}

RunsMark runs_mark() {
  std::lock_guard<std::mutex> l(g_leftovers_mu);
  return RunsMark{g_runs_ended, g_leftovers_total};
}

Leftovers leftovers_since(const RunsMark& mark) {
  std::lock_guard<std::mutex> l(g_leftovers_mu);
  Leftovers out;
  if (mark.leftovers >= g_leftovers_total) return out;
  const std::uint64_t wanted = g_leftovers_total - mark.leftovers;
  const std::uint64_t kept = std::min<std::uint64_t>(wanted, g_leftover_log.size());
  out.goroutines.assign(g_leftover_log.end() - static_cast<std::ptrdiff_t>(kept), g_leftover_log.end());
  out.dropped = wanted - kept;
  return out;
}

}  // namespace goro
