// http_server.cpp: a small HTTP/1.0 server, a goroutine per request (the
// second example of docs/net.md).
//
//   example_http_server [address]    serve until interrupted (default 127.0.0.1:8080), then:
//                                      curl http://127.0.0.1:8080/
//                                      curl http://127.0.0.1:8080/goroutines   (this server's goroutine dump)
//                                      curl http://127.0.0.1:8080/stats        (scheduler and poller figures)
//   example_http_server --self-test  serve on a free port, send itself requests,
//                                    exit 0 if the answers are right (the tests run this)
//
// HTTP/1.0 keeps it short: one request per connection, read until the
// blank line that ends the head, answer, close. A client that sends nothing
// for 10 seconds gets its connection closed (a read deadline), so a
// slow-loris cannot hold goroutines forever.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>

#include "goro/goro.hpp"

using namespace std::chrono_literals;

namespace {

std::atomic<std::int64_t> g_requests{0};

struct Request {
  std::string method, path;
};

// read_head reads up to the end of the request head ("\r\n\r\n"); false
// if the client went away or sent too much.
bool read_head(goro::net::Conn& c, std::string* head) {
  char buf[1024];
  while (head->find("\r\n\r\n") == std::string::npos && head->find("\n\n") == std::string::npos) {
    if (head->size() > 16 * 1024) return false;
    const std::size_t n = c.read(buf, sizeof buf);
    if (n == 0) return false;
    head->append(buf, n);
  }
  return true;
}

std::string respond(int status, const char* reason, const std::string& body) {
  std::ostringstream out;
  out << "HTTP/1.0 " << status << " " << reason << "\r\n"
      << "Content-Type: text/plain; charset=utf-8\r\n"
      << "Content-Length: " << body.size() << "\r\n\r\n"
      << body;
  return out.str();
}

std::string handle(const Request& r) {
  if (r.method != "GET") return respond(405, "Method Not Allowed", "only GET here\n");
  if (r.path == "/") {
    return respond(200, "OK", "hello from goro: request " + std::to_string(++g_requests) + ", " +
                                  std::to_string(goro::num_goroutine()) + " goroutines\n");
  }
  if (r.path == "/goroutines") {
    std::ostringstream dump;
    goro::dump_goroutines(dump);  // the listener's goroutine shows [IO wait]
    return respond(200, "OK", dump.str());
  }
  if (r.path == "/stats") {
    const goro::SchedStats s = goro::sched_stats();
    std::ostringstream out;
    out << "goroutines " << s.goroutines << "\nthreads " << s.threads << "\nio_waiters " << s.io_waiters
        << "\npoll_descriptors " << s.poll_descriptors << "\npolls " << s.polls << "\npoll_events " << s.poll_events
        << "\n";
    return respond(200, "OK", out.str());
  }
  return respond(404, "Not Found", "404 page not found\n");
}

void serve_conn(goro::net::Conn c) {
  try {
    c.set_read_deadline(std::chrono::steady_clock::now() + 10s);
    std::string head;
    if (!read_head(c, &head)) return;
    std::istringstream line(head.substr(0, head.find('\n')));
    Request r;
    line >> r.method >> r.path;
    c.write(handle(r));
  } catch (const goro::net::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
}  // the Conn's destructor closes the connection: HTTP/1.0's end of response

void serve(goro::net::Listener& ln) {
  for (;;) {
    goro::net::Conn c;
    try {
      c = ln.accept();
    } catch (const goro::net::Error& e) {
      if (!e.closed()) std::fprintf(stderr, "%s\n", e.what());
      return;
    }
    goro::go([c = std::move(c)]() mutable { serve_conn(std::move(c)); });
  }
}

// get is a minimal HTTP/1.0 client for the self-test.
std::string get(const std::string& addr, const std::string& path) {
  goro::net::Conn c = goro::net::dial("tcp", addr);
  c.write("GET " + path + " HTTP/1.0\r\nHost: " + addr + "\r\n\r\n");
  std::string out;
  char buf[4096];
  while (const std::size_t n = c.read(buf, sizeof buf)) out.append(buf, n);
  return out;
}

int self_test() {
  auto ln = goro::net::listen("tcp", "127.0.0.1:0");
  goro::WaitGroup server;
  server.add(1);
  goro::go([&] {
    serve(ln);
    server.done();
  });
  int failures = 0;
  auto expect = [&](bool ok, const char* what) {
    std::printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    failures += ok ? 0 : 1;
  };
  expect(get(ln.addr(), "/").rfind("HTTP/1.0 200 OK\r\n", 0) == 0, "GET / answers 200");
  expect(get(ln.addr(), "/nope").rfind("HTTP/1.0 404", 0) == 0, "an unknown path answers 404");
  expect(get(ln.addr(), "/goroutines").find("[IO wait]") != std::string::npos,
         "the dump shows the accept loop parked in IO wait");
  expect(get(ln.addr(), "/stats").find("poll_descriptors") != std::string::npos, "/stats answers");
  // Many clients at once.
  goro::WaitGroup wg;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    wg.add(1);
    goro::go([&] {
      if (get(ln.addr(), "/").find("hello from goro") != std::string::npos) ++ok;
      wg.done();
    });
  }
  wg.wait();
  expect(ok == 50, "50 concurrent clients answered");
  ln.close();
  server.wait();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--self-test") == 0) return goro::run(self_test);
  const std::string addr = argc > 1 ? argv[1] : "127.0.0.1:8080";
  return goro::run([&] {
    goro::net::Listener ln;
    try {
      ln = goro::net::listen("tcp", addr);
    } catch (const goro::net::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    std::printf("serving http://%s/ (also /goroutines and /stats)\n", ln.addr().c_str());
    std::fflush(stdout);
    serve(ln);
    return 0;
  });
}
