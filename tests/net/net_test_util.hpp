// net_test_util.hpp: helpers for the goro::net tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <string>

#include "goro_test.hpp"

namespace net_test {

using Clock = std::chrono::steady_clock;

// read_full reads exactly len bytes (io.ReadFull); returns how many it got
// before end of stream.
inline std::size_t read_full(goro::net::Conn& c, void* buf, std::size_t len) {
  std::size_t got = 0;
  while (got < len) {
    const std::size_t n = c.read(static_cast<char*>(buf) + got, len - got);
    if (n == 0) break;
    got += n;
  }
  return got;
}

// read_all reads until end of stream.
inline std::string read_all(goro::net::Conn& c) {
  std::string out;
  char buf[4096];
  while (const std::size_t n = c.read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

// port_of returns the port of "host:port" / "[v6]:port".
inline int port_of(const std::string& addr) { return std::stoi(addr.substr(addr.rfind(':') + 1)); }

// expect_error runs f and checks it throws goro::net::Error whose what()
// is `text` (or starts with it, if prefix).
template <class F>
goro::net::Error expect_error(F&& f) {
  try {
    f();
  } catch (const goro::net::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no goro::net::Error thrown";
  return goro::net::Error(std::error_code(), "none");
}

// pair_of dials a listener and accepts: both ends of one connection.
struct Pair {
  goro::net::Conn client;
  goro::net::Conn server;
};
inline Pair connected_pair(goro::net::Listener& ln, const std::string& network = "tcp") {
  Pair p;
  p.client = goro::net::dial(network, ln.addr());
  p.server = ln.accept();
  return p;
}

}  // namespace net_test
