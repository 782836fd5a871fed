// pprof.cpp: the goroutine profile in pprof's format, as Go's
// /debug/pprof/goroutine serves it: a gzipped profile.proto
// (github.com/google/pprof, proto/profile.proto) with one sample per group
// of goroutines standing at the same stack, valued by their number.
//
// The encoder is written here, as Go's runtime/pprof writes its own (a
// few varints and length-delimited fields): protobuf's library and code
// generator would be a dependency for eight message types. Compression is
// zlib's (gzip framing).
//
// What goes in: sample type and period type goroutine/count; each distinct
// return address is a Location whose Lines are the frames at that address,
// innermost first (profile.proto: "the last entry represents the caller
// into which the preceding entries were inlined"); each (function, file)
// is a Function; each sample carries the goroutines' wait reason (or
// state) as the string label "wait_reason". Frames are those the dumps
// show: goro's own are left out unless GOROTRACEBACK=system.
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <vector>

#include "goro/introspect.hpp"
#include "scheduler.hpp"

namespace goro::rt {
namespace {

// Message builds one protobuf message.
class Message {
 public:
  void varint(int field, std::uint64_t v) {
    key(field, 0);
    put_varint(v);
  }
  void bytes(int field, const std::string& s) {
    key(field, 2);
    put_varint(s.size());
    out_ += s;
  }
  void message(int field, const Message& m) { bytes(field, m.out_); }
  void packed(int field, const std::vector<std::uint64_t>& vs) {
    Message body;
    for (std::uint64_t v : vs) body.put_varint(v);
    bytes(field, body.out_);
  }
  const std::string& data() const { return out_; }

 private:
  void key(int field, int wire_type) { put_varint(static_cast<std::uint64_t>(field) << 3 | static_cast<std::uint64_t>(wire_type)); }
  void put_varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
  }
  std::string out_;
};

// Strings is profile.proto's string table: index 0 is "".
class Strings {
 public:
  Strings() { index(""); }
  std::uint64_t index(const std::string& s) {
    auto [it, fresh] = ids_.emplace(s, list_.size());
    if (fresh) list_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& list() const { return list_; }

 private:
  std::map<std::string, std::uint64_t> ids_;
  std::vector<std::string> list_;
};

std::string gzip(const std::string& raw) {
  z_stream zs{};
  // 15 window bits + 16: gzip framing.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&zs, raw.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string{};
}

// Mapping is an executable file mapped into this process (pprof wants
// to know which binary an address belongs to).
struct Mapping {
  std::uint64_t start = 0, limit = 0, offset = 0;
  std::string file;
};

// executable_mappings reads /proc/self/maps for the executable regions of
// mapped files.
std::vector<Mapping> executable_mappings() {
  std::vector<Mapping> out;
  std::FILE* f = std::fopen("/proc/self/maps", "r");
  if (f == nullptr) return out;
  char line[4096];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long long start = 0, limit = 0, offset = 0;
    char perms[8] = {};
    int path_at = 0;
    if (std::sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &limit, perms, &offset, &path_at) < 4) continue;
    if (std::strchr(perms, 'x') == nullptr || line[path_at] != '/') continue;
    std::string file = line + path_at;
    while (!file.empty() && (file.back() == '\n' || file.back() == ' ')) file.pop_back();
    out.push_back(Mapping{start, limit, offset, file});
  }
  std::fclose(f);
  return out;
}

}  // namespace

std::string goroutine_profile(const std::vector<GoroutineInfo>& all) {
  Strings strings;
  Message profile;
  auto value_type = [&](const char* type, const char* unit) {
    Message m;
    m.varint(1, strings.index(type));
    m.varint(2, strings.index(unit));
    return m;
  };
  profile.message(1, value_type("goroutine", "count"));

  const std::vector<Mapping> mappings = executable_mappings();
  Message mappings_out;
  for (std::size_t i = 0; i < mappings.size(); ++i) {
    Message m;
    m.varint(1, i + 1);
    m.varint(2, mappings[i].start);
    m.varint(3, mappings[i].limit);
    m.varint(4, mappings[i].offset);
    m.varint(5, strings.index(mappings[i].file));
    for (int field = 7; field <= 10; ++field) m.varint(field, 1);  // has functions, files, lines, inlines
    mappings_out.message(3, m);
  }
  auto mapping_of = [&](std::uintptr_t pc) -> std::uint64_t {
    for (std::size_t i = 0; i < mappings.size(); ++i) {
      if (pc >= mappings[i].start && pc < mappings[i].limit) return i + 1;
    }
    return 0;
  };

  std::map<std::pair<std::string, std::string>, std::uint64_t> functions;  // (name, file) -> id
  std::map<std::uintptr_t, std::uint64_t> location_of;                    // pc -> id
  Message functions_out;
  Message locations_out;
  Message samples_out;
  for (const StackGroup& group : group_goroutines(all)) {
    std::vector<std::uint64_t> location_ids;
    for (std::size_t i = 0; i < group.stack.size();) {
      // Frames at one return address: one Location, inlined ones first.
      std::size_t j = i;
      while (j < group.stack.size() && group.stack[j].pc == group.stack[i].pc) ++j;
      const std::uintptr_t pc = group.stack[i].pc;
      auto [it, fresh] = location_of.emplace(pc, location_of.size() + 1);
      if (fresh) {
        Message location;
        location.varint(1, it->second);
        if (const std::uint64_t mapping = mapping_of(pc)) location.varint(2, mapping);
        location.varint(3, pc);
        for (std::size_t k = i; k < j; ++k) {
          const Frame& f = group.stack[k];
          auto [fn, new_fn] = functions.emplace(std::make_pair(f.function, f.file), functions.size() + 1);
          if (new_fn) {
            Message function;
            function.varint(1, fn->second);
            function.varint(2, strings.index(f.function));
            function.varint(3, strings.index(f.function));
            function.varint(4, strings.index(f.file));
            functions_out.message(5, function);
          }
          Message line;
          line.varint(1, fn->second);
          line.varint(2, static_cast<std::uint64_t>(f.line));
          location.message(4, line);
        }
        locations_out.message(4, location);
      }
      location_ids.push_back(it->second);
      i = j;
    }
    Message sample;
    sample.packed(1, location_ids);
    sample.packed(2, {static_cast<std::uint64_t>(group.count)});
    Message label;
    label.varint(1, strings.index("wait_reason"));
    label.varint(2, strings.index(group.what));
    sample.message(3, label);
    samples_out.message(2, sample);
  }
  const Message period_type = value_type("goroutine", "count");
  Message tail;
  for (const std::string& s : strings.list()) tail.bytes(6, s);  // every string is interned by now
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  tail.varint(9, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
  tail.message(11, period_type);
  tail.varint(12, 1);
  return gzip(profile.data() + samples_out.data() + mappings_out.data() + locations_out.data() + functions_out.data() +
              tail.data());
}

}  // namespace goro::rt

namespace goro {

void write_goroutine_profile(std::ostream& out) {
  const std::string data = rt::goroutine_profile(goroutines());
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

}  // namespace goro
