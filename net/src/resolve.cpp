// resolve.cpp: networks, host:port parsing, IP literals and name lookups.
//
// IP literals are parsed here (inet_pton), so dialing "127.0.0.1:8080"
// costs no resolver call; names ("localhost") go to getaddrinfo inside
// goro::blocking(), which hands the goroutine's P to another thread if the
// lookup takes long. Go's own resolver is not reimplemented: the system's
// is what a C++ program's users expect (nsswitch, /etc/hosts, mDNS).
#include "resolve.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cctype>
#include <cstring>
#include <memory>

#include "goro/net.hpp"
#include "goro/runtime.hpp"

namespace goro::net {

namespace {

class ResolverCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolver"; }
  std::string message(int ev) const override { return ::gai_strerror(ev); }
};

}  // namespace

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

}  // namespace goro::net

namespace goro::net::detail {

namespace {

ResolveError addr_error(std::string_view address, const char* what) {
  return {std::make_error_code(std::errc::invalid_argument), cat({"address ", address, ": ", what})};
}

// split_host_port is Go's net.SplitHostPort.
bool split_host_port(std::string_view hostport, std::string* host, std::string* port, ResolveError* err) {
  const std::size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    *err = addr_error(hostport, "missing port in address");
    return false;
  }
  std::string_view h;
  if (!hostport.empty() && hostport[0] == '[') {
    const std::size_t end = hostport.find(']');
    if (end == std::string_view::npos) {
      *err = addr_error(hostport, "missing ']' in address");
      return false;
    }
    if (end + 1 == hostport.size()) {
      *err = addr_error(hostport, "missing port in address");
      return false;
    }
    if (end + 1 != colon) {
      *err = addr_error(hostport, hostport[end + 1] == ':' ? "too many colons in address" : "missing port in address");
      return false;
    }
    h = hostport.substr(1, end - 1);
  } else {
    h = hostport.substr(0, colon);
    if (h.find(':') != std::string_view::npos) {
      *err = addr_error(hostport, "too many colons in address");
      return false;
    }
  }
  if (h.find_first_of("[]") != std::string_view::npos || hostport.substr(colon + 1).find_first_of("[]") != std::string_view::npos) {
    *err = addr_error(hostport, "unexpected '[' or ']' in address");
    return false;
  }
  *host = std::string(h);
  *port = std::string(hostport.substr(colon + 1));
  return true;
}

bool parse_port(const Network& net, const std::string& port, int* out, ResolveError* err) {
  if (port.empty()) {
    *out = 0;  // Go: an empty port is 0
    return true;
  }
  bool numeric = true;
  long v = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      numeric = false;
      break;
    }
    v = v * 10 + (c - '0');
    if (v > 65535) break;
  }
  if (numeric) {
    if (v > 65535) {
      *err = addr_error(port, "invalid port");
      return false;
    }
    *out = static_cast<int>(v);
    return true;
  }
  // A service name ("http"): /etc/services, through the resolver.
  struct servent se;
  struct servent* res = nullptr;
  char buf[1024];
  const char* proto = net.is_stream() ? "tcp" : "udp";
  const int rc = goro::blocking([&] { return ::getservbyname_r(port.c_str(), proto, &se, buf, sizeof buf, &res); });
  if (rc != 0 || res == nullptr) {
    *err = {std::make_error_code(std::errc::invalid_argument), cat({"lookup ", net.is_stream() ? "tcp" : "udp", "/", port, ": unknown port"})};
    return false;
  }
  *out = ntohs(static_cast<std::uint16_t>(res->s_port));
  return true;
}

SockAddr make_v4(const in_addr& a, int port) {
  SockAddr s;
  auto* in = reinterpret_cast<sockaddr_in*>(&s.ss);
  in->sin_family = AF_INET;
  in->sin_port = htons(static_cast<std::uint16_t>(port));
  in->sin_addr = a;
  s.len = sizeof(sockaddr_in);
  return s;
}

SockAddr make_v6(const in6_addr& a, int port, std::uint32_t scope) {
  SockAddr s;
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.ss);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(static_cast<std::uint16_t>(port));
  in6->sin6_addr = a;
  in6->sin6_scope_id = scope;
  s.len = sizeof(sockaddr_in6);
  return s;
}

bool family_ok(const Network& net, int family) { return net.family == AF_UNSPEC || net.family == family; }

ResolveError no_suitable(const std::string& host) {
  return {std::make_error_code(std::errc::address_family_not_supported),
          cat({"address ", host, ": no suitable address found"})};
}

bool resolve_unix(std::string_view address, Resolved* out, ResolveError* err) {
  SockAddr s;
  auto* un = reinterpret_cast<sockaddr_un*>(&s.ss);
  un->sun_family = AF_UNIX;
  if (address.empty() || address.size() >= sizeof un->sun_path) {
    *err = {std::make_error_code(std::errc::invalid_argument), cat({"address ", address, ": invalid argument"})};
    return false;
  }
  std::memcpy(un->sun_path, address.data(), address.size());
  if (address[0] == '@') {
    un->sun_path[0] = '\0';  // Linux's abstract namespace
    s.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  } else {
    s.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
  }
  out->addrs.push_back(s);
  out->shown = std::string(address);
  return true;
}

}  // namespace

bool Network::is_unix() const noexcept { return family == AF_UNIX; }
bool Network::is_stream() const noexcept { return socktype == SOCK_STREAM; }

bool parse_network(std::string_view name, Network* out) {
  struct Known {
    const char* name;
    int family, socktype;
  };
  static constexpr Known kKnown[] = {
      {"tcp", AF_UNSPEC, SOCK_STREAM}, {"tcp4", AF_INET, SOCK_STREAM},  {"tcp6", AF_INET6, SOCK_STREAM},
      {"unix", AF_UNIX, SOCK_STREAM},  {"udp", AF_UNSPEC, SOCK_DGRAM},  {"udp4", AF_INET, SOCK_DGRAM},
      {"udp6", AF_INET6, SOCK_DGRAM},  {"unixgram", AF_UNIX, SOCK_DGRAM},
  };
  for (const Known& k : kKnown) {
    if (std::string_view(k.name) == name) {
      out->name = std::string(name);
      out->static_name = k.name;
      out->family = k.family;
      out->socktype = k.socktype;
      return true;
    }
  }
  return false;
}

std::string errno_text(int err) {
  std::string s = std::strerror(err);
  // Go's syscall table is glibc's text with a lower-case first letter.
  if (!s.empty() && std::isupper(static_cast<unsigned char>(s[0])) &&
      (s.size() < 2 || !std::isupper(static_cast<unsigned char>(s[1])))) {
    s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  }
  return s;
}

bool resolve(const Network& net, std::string_view address, bool for_listen, Resolved* out, ResolveError* err) {
  out->addrs.clear();
  out->wildcard = false;
  if (net.is_unix()) return resolve_unix(address, out, err);
  std::string host, port_s;
  if (!split_host_port(address, &host, &port_s, err)) return false;
  int port = 0;
  if (!parse_port(net, port_s, &port, err)) return false;

  if (host.empty()) {
    out->wildcard = true;
    out->shown = cat({":", std::to_string(port)});
    if (for_listen) {
      // "tcp" listens on IPv6's wildcard with IPv4 mapped in (dual stack),
      // as Go does; the caller falls back to IPv4 without IPv6.
      if (net.family == AF_INET) {
        out->addrs.push_back(make_v4(in_addr{htonl(INADDR_ANY)}, port));
      } else {
        out->addrs.push_back(make_v6(in6addr_any, port, 0));
      }
    } else {
      // Dialing no host means this machine.
      if (net.family == AF_INET6) {
        out->addrs.push_back(make_v6(in6addr_loopback, port, 0));
      } else {
        out->addrs.push_back(make_v4(in_addr{htonl(INADDR_LOOPBACK)}, port));
      }
    }
    return true;
  }

  in_addr a4;
  in6_addr a6;
  if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if (!family_ok(net, AF_INET)) {
      *err = no_suitable(host);
      return false;
    }
    out->addrs.push_back(make_v4(a4, port));
  } else if (host.find('%') == std::string::npos && ::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (!family_ok(net, AF_INET6)) {
      *err = no_suitable(host);
      return false;
    }
    out->addrs.push_back(make_v6(a6, port, 0));
  } else {
    // A name, or an IPv6 literal with a zone ("fe80::1%eth0").
    addrinfo hints{};
    hints.ai_family = net.family;
    hints.ai_socktype = net.socktype;
    addrinfo* res = nullptr;
    const int rc = goro::blocking([&] { return ::getaddrinfo(host.c_str(), nullptr, &hints, &res); });
    if (rc != 0) {
      std::string why = rc == EAI_NONAME || rc == EAI_NODATA ? "no such host" : ::gai_strerror(rc);
      if (rc == EAI_SYSTEM) why = errno_text(errno);
      *err = {std::error_code(rc, resolver_category()), cat({"lookup ", host, ": ", why})};
      return false;
    }
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> keep(res, ::freeaddrinfo);
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_family == AF_INET && family_ok(net, AF_INET)) {
        out->addrs.push_back(make_v4(reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr, port));
      } else if (ai->ai_family == AF_INET6 && family_ok(net, AF_INET6)) {
        const auto* in6 = reinterpret_cast<sockaddr_in6*>(ai->ai_addr);
        out->addrs.push_back(make_v6(in6->sin6_addr, port, in6->sin6_scope_id));
      }
    }
    if (out->addrs.empty()) {
      *err = no_suitable(host);
      return false;
    }
    if (for_listen) {
      // Listening on a name takes one address: its first IPv4 one if any.
      std::size_t pick = 0;
      for (std::size_t i = 0; i < out->addrs.size(); ++i) {
        if (out->addrs[i].family() == AF_INET) {
          pick = i;
          break;
        }
      }
      const SockAddr chosen = out->addrs[pick];
      out->addrs.assign(1, chosen);
    }
  }
  out->shown = format_addr(out->addrs.front());
  return true;
}

}  // namespace goro::net::detail
