// reply.hpp: reading the introspection server's answers (the protocol is in
// goro/detail/introspect_wire.hpp). Kept apart from the socket code so the
// parsers can be fuzzed on their own (tests/fuzz): an answer is text from
// another process, which may be of another goro version, cut short, or
// carry any bytes a goroutine name or a file name holds. Every parser takes
// any input without crashing; what it cannot read becomes empty fields.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace goro_cli {

// Fields: the "key value" lines of the info and stats answers.
using Fields = std::map<std::string, std::string>;
Fields parse_fields(const std::string& text);
// num reads a field as an integer (0 when absent); nums, a list of them.
long long num(const Fields& f, const std::string& key);
std::vector<long long> nums(const Fields& f, const std::string& key);

// GoroutineRow: one line of the goroutines answer.
struct GoroutineRow {
  std::string id, state, wait_reason, waiting_for_ns, created_at, created_by, parent_id, name;
};
std::vector<GoroutineRow> parse_goroutines(const std::string& text);

// split_tabs splits one answer line at its tabs.
std::vector<std::string> split_tabs(const std::string& line);

// frame_json reads a frame line ("\t<pc hex>\t<line>\t<file>\t<function>").
nlohmann::ordered_json frame_json(const std::string& line);

// stacks_json renders the "stacks" answer; groups_json the "stack groups"
// answer, with the total goroutine count in *total.
nlohmann::ordered_json stacks_json(const std::string& text);
nlohmann::ordered_json groups_json(const std::string& text, long long* total);

// json_text serialises j; bytes that are not UTF-8 (a goroutine name may
// hold any) become U+FFFD instead of an exception.
std::string json_text(const nlohmann::ordered_json& j);

}  // namespace goro_cli
