// libFuzzer target: the introspection server's request reading, as a
// connection does it (introspect_server.cpp): bytes arrive in chunks of
// any size, the server keeps at most kIntrospectMaxRequest + 1 of them,
// and once the line is complete it is answered. The first input byte picks
// the chunk size. Checked: the parser's verdict agrees with a plain
// reading of the bytes, the request never holds a newline or exceeds the
// bound, and answering any request line neither crashes nor leaks.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "goro/detail/introspect_wire.hpp"

using goro::detail::kIntrospectMaxRequest;
using goro::detail::RequestStatus;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string buffered;
  std::string request;
  RequestStatus status = RequestStatus::kIncomplete;
  for (std::size_t off = 0; off < input.size() && status == RequestStatus::kIncomplete; off += chunk) {
    const std::string_view piece = input.substr(off, chunk);
    const std::size_t room = kIntrospectMaxRequest + 1 - buffered.size();
    buffered.append(piece.substr(0, room));
    status = goro::detail::introspect_parse_request(buffered, &request);
    check(buffered.size() <= kIntrospectMaxRequest + 1);
  }
  const std::size_t nl = input.find('\n');
  switch (status) {
    case RequestStatus::kComplete: {
      check(nl != std::string_view::npos && nl <= kIntrospectMaxRequest);
      check(request.find('\n') == std::string::npos && request.size() <= kIntrospectMaxRequest);
      std::string_view line = input.substr(0, nl);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      check(line == request);
      // The answers that read the (absent) run are cheap; the profile and
      // the dumps of an empty process too.
      const std::string answer = goro::detail::introspect_answer(request);
      check(!answer.empty() || request == "goroutines" || request == "stacks" || request == "stack groups" ||
            request == "dump" || request == "dump group");
      break;
    }
    case RequestStatus::kTooLong:
      check(nl == std::string_view::npos || nl > kIntrospectMaxRequest);
      check(input.size() > kIntrospectMaxRequest);
      break;
    case RequestStatus::kIncomplete:
      check(nl == std::string_view::npos && input.size() <= kIntrospectMaxRequest);
      break;
  }
  return 0;
}
