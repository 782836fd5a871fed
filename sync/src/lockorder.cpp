// lockorder.cpp: GORODEBUG=lockorder=1, a deadlock that did not happen
// yet, reported anyway.
//
// Two goroutines that take locks A and B in opposite orders deadlock the
// day their timing lines up; until then the program works and every test
// passes. Go has no check for this; Linux's lockdep and Abseil's Mutex
// deadlock detection do, and this is theirs in small. With the flag on,
// every acquisition of a Mutex or RWMutex (write or read) by a goroutine
// or plain thread records an edge "L was taken while H was held" for each
// lock H its taker holds. The edges form the acquired-before graph; the
// first time a new edge H -> L closes a cycle (L already reaches H), goro
// prints a report to stderr containing "potential deadlock", naming each
// lock of the cycle by where it was first taken and showing, for each
// edge, the stack of the acquisition that made it. The program continues;
// each cycle is reported once.
//
// Rules, as lockdep's:
//   - a successful try_lock holds the lock (later acquisitions get edges
//     from it) but adds no edge into it: a try cannot wait, so it cannot
//     deadlock;
//   - read locks count: Go's RWMutex blocks new readers once a writer
//     waits, so a read lock taken in the wrong order deadlocks too;
//   - a lock is identified by its address while it lives; destroying it
//     forgets it and its edges (so a new lock at the same address starts
//     clean);
//   - a lock unlocked by a goroutine other than the one that took it (Go
//     allows that) leaves whoever holds it on record.
//
// Cost. Off, the lock paths load one flag. On, everything here runs under
// one mutex (a debugging mode, not a production one); stacks are captured
// only for a lock's first acquisition and for a new edge, which a program
// creates a bounded number of times.
#include <algorithm>
#include <iterator>
#include <mutex>
#include <new>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include "goro/detail/debug.hpp"
#include "goro/park.hpp"
#include "goro/runtime.hpp"
#include "goro/detail/lockorder.hpp"

namespace goro::detail {
namespace {

struct Node {
  std::uint64_t number = 0;        // "lock #1", in order of first acquisition
  const char* kind = "";           // "sync.Mutex", "sync.RWMutex"
  std::vector<Frame> first_taken;  // the stack of its first acquisition
  std::uint64_t first_goroutine = 0;
};

struct Edge {
  std::vector<Frame> stack;  // the acquisition of `to` while `from` was held
  std::uint64_t goroutine = 0;
};

// Holder identifies who holds a lock: a goroutine by its record, id and
// run (records are reused, ids restart in every run), a plain thread by
// its record (id 0).
struct Holder {
  const Goroutine* record = nullptr;
  std::uint64_t goroutine = 0;
  std::uint64_t run = 0;
  bool operator==(const Holder&) const = default;
  static Holder me() {
    const std::uint64_t id = goroutine_id();
    return Holder{goro::self(), id, id != 0 ? runs_mark().runs : 0};
  }
};

struct Held {
  const void* lock;
  Holder holder;
};

class Graph {
 public:
  void acquired(const void* lock, const char* kind, bool tried) {
    std::vector<std::string> reports;
    {
      const Holder me = Holder::me();
      std::lock_guard<std::mutex> l(mu_);
      Node& node = node_of(lock, kind);
      if (!tried) {
        for (const Held& h : held_) {
          if (h.holder != me || h.lock == lock) continue;
          if (!add_edge(h.lock, lock)) continue;
          // A new edge h.lock -> lock: a cycle if lock already reaches h.lock.
          std::vector<const void*> path;
          if (find_path(lock, h.lock, path)) {
            path.insert(path.begin(), h.lock);  // h.lock -> lock -> ... -> h.lock
            std::string r = report_once(path);
            if (!r.empty()) reports.push_back(std::move(r));
          }
        }
      }
      (void)node;
      held_.push_back(Held{lock, me});
    }
    for (const std::string& r : reports) {
      std::fwrite(r.data(), 1, r.size(), stderr);
      std::fflush(stderr);
    }
  }

  void released(const void* lock) {
    const Holder me = Holder::me();
    std::lock_guard<std::mutex> l(mu_);
    // The caller's own hold first (the usual case), else anyone's (a lock
    // released by another goroutine than the one that took it).
    auto it = std::find_if(held_.rbegin(), held_.rend(),
                           [&](const Held& h) { return h.lock == lock && h.holder == me; });
    if (it == held_.rend()) {
      it = std::find_if(held_.rbegin(), held_.rend(), [&](const Held& h) { return h.lock == lock; });
    }
    if (it != held_.rend()) held_.erase(std::next(it).base());
  }

  void forget(const void* lock) {
    std::lock_guard<std::mutex> l(mu_);
    if (nodes_.erase(lock) == 0) return;
    succ_.erase(lock);
    for (auto& [from, tos] : succ_) tos.erase(lock);
    for (auto it = edges_.begin(); it != edges_.end();) {
      it = it->first.first == lock || it->first.second == lock ? edges_.erase(it) : std::next(it);
    }
    held_.erase(std::remove_if(held_.begin(), held_.end(), [&](const Held& h) { return h.lock == lock; }),
                held_.end());
  }

 private:
  struct PairHash {
    std::size_t operator()(const std::pair<const void*, const void*>& p) const noexcept {
      return std::hash<const void*>()(p.first) * 31 + std::hash<const void*>()(p.second);
    }
  };

  Node& node_of(const void* lock, const char* kind) {
    auto [it, fresh] = nodes_.try_emplace(lock);
    if (fresh) {
      it->second.number = ++numbered_;
      it->second.kind = kind;
      it->second.first_taken = current_stack();
      it->second.first_goroutine = goroutine_id();
    }
    return it->second;
  }

  // add_edge records from -> to with the current stack; false if known.
  bool add_edge(const void* from, const void* to) {
    if (!succ_[from].insert(to).second) return false;
    Edge& e = edges_[{from, to}];
    e.stack = current_stack();
    e.goroutine = goroutine_id();
    return true;
  }

  // find_path: a path from `from` to `to` in the graph (depth first),
  // as the nodes after `from`, ending with `to`.
  bool find_path(const void* from, const void* to, std::vector<const void*>& path) {
    std::unordered_set<const void*> seen;
    return dfs(from, to, path, seen);
  }
  bool dfs(const void* at, const void* to, std::vector<const void*>& path, std::unordered_set<const void*>& seen) {
    if (!seen.insert(at).second) return false;
    path.push_back(at);
    if (at == to) return true;
    auto it = succ_.find(at);
    if (it != succ_.end()) {
      for (const void* next : it->second) {
        if (dfs(next, to, path, seen)) return true;
      }
    }
    path.pop_back();
    return false;
  }

  // report_once describes the cycle path[0] -> path[1] -> ... -> path[0]
  // (path's last node is path[0] again), unless this cycle was reported.
  std::string report_once(std::vector<const void*> path) {
    // Start the cycle at its oldest lock, so a report reads the same
    // whichever edge closed it.
    path.pop_back();
    const auto oldest = std::min_element(path.begin(), path.end(), [&](const void* a, const void* b) {
      return nodes_[a].number < nodes_[b].number;
    });
    std::rotate(path.begin(), oldest, path.end());
    path.push_back(path.front());
    std::vector<std::uint64_t> key;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) key.push_back(nodes_[path[i]].number);
    std::sort(key.begin(), key.end());
    if (!reported_.insert(key).second) return {};

    // A stream, for write_stack; the lines around the stacks are fmt's.
    std::ostringstream out;
    const std::size_t n = path.size() - 1;
    fmt::print(out, "\ngoro: potential deadlock: {} locks taken in inconsistent order (GORODEBUG=lockorder=1)\n", n);
    auto name = [&](const void* lock) {
      const Node& node = nodes_[lock];
      std::string s = fmt::format("lock #{} ({} {}", node.number, node.kind, lock);
      if (!node.first_taken.empty() && !node.first_taken[0].file.empty()) {
        fmt::format_to(std::back_inserter(s), ", first taken at {}:{}", base_name(node.first_taken[0].file),
                       node.first_taken[0].line);
      }
      s += ')';
      return s;
    };
    for (std::size_t i = 0; i < n; ++i) {
      const Node& node = nodes_[path[i]];
      fmt::print(out, "\n{} was first taken by goroutine {} at:\n", name(path[i]), node.first_goroutine);
      write_stack(out, node.first_taken);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Edge& e = edges_[{path[i], path[i + 1]}];
      fmt::print(out, "\ngoroutine {} took {} while holding {}:\n", e.goroutine, name(path[i + 1]), name(path[i]));
      write_stack(out, e.stack);
    }
    out << "\nIf these run at the same time, each waits for a lock the next one holds. Take the locks in one order "
           "everywhere.\n\n";
    return std::move(out).str();
  }

  static std::string base_name(const std::string& path) {
    const std::size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  }

  std::mutex mu_;
  std::uint64_t numbered_ = 0;
  std::unordered_map<const void*, Node> nodes_;
  std::unordered_map<const void*, std::unordered_set<const void*>> succ_;
  std::unordered_map<std::pair<const void*, const void*>, Edge, PairHash> edges_;
  std::vector<Held> held_;  // every lock held now, by whom, in order of acquisition
  std::set<std::vector<std::uint64_t>> reported_;  // cycles reported, as their sorted lock numbers
};

Graph& graph() {
  static Graph* g = new Graph;  // never destroyed: locks may be released during exit
  return *g;
}

}  // namespace

// The hooks are called from noexcept code (try_lock, destructors): a
// checker that runs out of memory checks less, it does not terminate.
void lockorder_acquired(const void* lock, const char* kind, bool tried) noexcept {
  try {
    graph().acquired(lock, kind, tried);
  } catch (const std::bad_alloc&) {
  }
}
void lockorder_released(const void* lock) noexcept {
  try {
    graph().released(lock);
  } catch (const std::bad_alloc&) {
  }
}
void lockorder_forget(const void* lock) noexcept {
  try {
    graph().forget(lock);
  } catch (const std::bad_alloc&) {
  }
}

}  // namespace goro::detail
