// resolve.hpp: networks, addresses and name resolution (Go's net/ipsock.go,
// net/lookup.go, the parts goro::net needs).
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fd.hpp"

namespace goro::net::detail {

// Network is a parsed network name.
struct Network {
  std::string name;      // as given: "tcp", "tcp4", "tcp6", "unix", "udp", "udp4", "udp6", "unixgram"
  const char* static_name = "";  // the same, with static storage
  int family = 0;        // AF_UNSPEC (tcp, udp), AF_INET, AF_INET6 or AF_UNIX
  int socktype = 0;      // SOCK_STREAM or SOCK_DGRAM
  bool is_unix() const noexcept;
  bool is_stream() const noexcept;
};

// parse_network: false for a network goro::net does not know.
bool parse_network(std::string_view name, Network* out);

// ResolveError is a failure to turn an address into socket addresses, in
// Go's words without the operation ("address localhost: missing port in
// address", "lookup nosuch.invalid: no such host").
struct ResolveError {
  std::error_code code;
  std::string text;
};

// Resolved is what an address resolves to.
struct Resolved {
  std::vector<SockAddr> addrs;  // in the order to try them
  bool wildcard = false;        // no host: every interface (listen) or this machine (dial)
  std::string shown;            // the address as Go's resolved Addr prints it (":8080", "127.0.0.1:80")
};

// resolve resolves address for dial (every suitable address, in the
// resolver's order) or listen (one: a wildcard, an IP, or a name's first
// IPv4 address as Go picks). Names go through getaddrinfo inside
// goro::blocking(). False with *err on failure.
bool resolve(const Network& net, std::string_view address, bool for_listen, Resolved* out, ResolveError* err);

// errno_text is Go's text for an errno ("connection refused"): strerror's,
// lower-cased as Go's syscall table has it.
std::string errno_text(int err);

}  // namespace goro::net::detail
