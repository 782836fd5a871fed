// introspect_request.cpp: reading a request line off an introspection
// connection (introspect_wire.hpp has the protocol). A file of its own so
// that the fuzz target (tests/fuzz) builds it with coverage instrumentation.
#include <string>
#include <string_view>

#include "goro/detail/introspect_wire.hpp"

namespace goro::detail {

RequestStatus introspect_parse_request(std::string_view buffered, std::string* request) {
  const std::size_t nl = buffered.find('\n');
  if (nl == std::string_view::npos) {
    return buffered.size() > kIntrospectMaxRequest ? RequestStatus::kTooLong : RequestStatus::kIncomplete;
  }
  if (nl > kIntrospectMaxRequest) return RequestStatus::kTooLong;
  std::string_view line = buffered.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  request->assign(line);
  return RequestStatus::kComplete;
}

}  // namespace goro::detail
