// libFuzzer target: the goro CLI's parsers of the server's answers
// (tools/goro/reply.hpp). An answer comes from another process, possibly
// of another version, cut short, or holding any bytes a goroutine's name
// or a file name holds: every parser must take it, and the JSON rendered
// from it must serialise (invalid UTF-8 included).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const goro_cli::Fields f = goro_cli::parse_fields(text);
  (void)goro_cli::num(f, "goroutines");
  (void)goro_cli::nums(f, "local_runq");
  for (const auto& row : goro_cli::parse_goroutines(text)) {
    if (row.id.find('\n') != std::string::npos) std::abort();
  }
  (void)goro_cli::json_text(goro_cli::stacks_json(text));
  long long total = 0;
  (void)goro_cli::json_text(goro_cli::groups_json(text, &total));
  for (const auto& c : goro_cli::split_tabs(text)) {
    if (c.find('\t') != std::string::npos) std::abort();
  }
  return 0;
}
