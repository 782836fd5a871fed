// echo_server.cpp: a TCP echo server, a goroutine per connection (the
// example of docs/net.md).
//
//   example_echo_server [address]    serve until interrupted (default 127.0.0.1:7000)
//                                    then, in another terminal:  nc 127.0.0.1 7000
//                                    and watch it:               goro dump <pid>
//   example_echo_server --self-test  serve on a free port, talk to itself
//                                    with 20 clients, exit 0 if all went well
//                                    (the tests run this)
//
// Each connection's goroutine parks in read() ("IO wait" in `goro dump`)
// and its thread runs other goroutines meanwhile: a thousand idle clients
// cost a thousand small stacks and no threads. A connection silent for
// five minutes is dropped (a read deadline).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

// serve_conn echoes one connection until the client closes it, goes
// silent for too long, or fails.
void serve_conn(goro::net::Conn c) {
  const std::string who = c.remote_addr();
  std::printf("%s connected\n", who.c_str());
  char buf[4096];
  try {
    for (;;) {
      c.set_read_deadline(std::chrono::steady_clock::now() + 5min);
      const std::size_t n = c.read(buf, sizeof buf);
      if (n == 0) break;  // the client closed its end
      c.write(buf, n);
    }
    std::printf("%s disconnected\n", who.c_str());
  } catch (const goro::net::Error& e) {
    std::printf("%s dropped: %s\n", who.c_str(), e.what());  // e.g. "... i/o timeout"
  }
}

// serve accepts until the listener is closed.
void serve(goro::net::Listener& ln) {
  for (;;) {
    goro::net::Conn c;
    try {
      c = ln.accept();
    } catch (const goro::net::Error& e) {
      if (!e.closed()) std::fprintf(stderr, "accept: %s\n", e.what());
      return;
    }
    goro::go([c = std::move(c)]() mutable { serve_conn(std::move(c)); });
  }
}

int self_test() {
  auto ln = goro::net::listen("tcp", "127.0.0.1:0");
  goro::WaitGroup server;
  server.add(1);
  goro::go([&] {
    serve(ln);
    server.done();
  });
  goro::WaitGroup clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    clients.add(1);
    goro::go([&, i] {
      goro::net::Conn c = goro::net::dial("tcp", ln.addr());
      const std::string line = "hello from client " + std::to_string(i) + "\n";
      for (int round = 0; round < 10; ++round) {
        c.write(line);
        std::string back;
        char buf[64];
        while (back.size() < line.size()) {
          const std::size_t n = c.read(buf, sizeof buf);
          if (n == 0) break;
          back.append(buf, n);
        }
        if (back == line) ++ok;
      }
      clients.done();
    });
  }
  clients.wait();
  ln.close();  // serve() returns; the connections' goroutines have seen end of stream
  server.wait();
  std::printf("%d of 200 round trips echoed\n", ok.load());
  return ok == 200 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one log line at a time
  if (argc > 1 && std::strcmp(argv[1], "--self-test") == 0) return goro::run(self_test);
  const std::string addr = argc > 1 ? argv[1] : "127.0.0.1:7000";
  return goro::run([&] {
    goro::net::Listener ln;
    try {
      ln = goro::net::listen("tcp", addr);
    } catch (const goro::net::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());  // "listen tcp 127.0.0.1:7000: bind: address already in use"
      return 1;
    }
    std::string nc_args = ln.addr();
    nc_args[nc_args.rfind(':')] = ' ';
    std::printf("echo server on %s (try: nc %s)\n", ln.addr().c_str(), nc_args.c_str());
    serve(ln);
    return 0;
  });
}
