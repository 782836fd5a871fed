// introspect_wire.hpp: where a goro process's introspection socket lives and
// what travels over it. Shared by the runtime (the server) and the `goro`
// CLI (the client); not part of the public contract.
//
// Place: one socket per process, "<pid>.sock", in a per-user directory:
// $XDG_RUNTIME_DIR/goro/ when that variable names a directory, else
// /tmp/goro-<uid>/. The directory is 0700 and must be owned by the user
// (a directory someone else created in /tmp is refused, not used); the
// socket is 0600, and the server also checks the peer's uid (SO_PEERCRED).
//
// Protocol: the client connects, writes one request line, and reads until
// the server closes. Requests:
//   info        "key value" lines: pid, command, running, goroutines, gomaxprocs
//   stats       "key value" lines, one per SchedStats field (local_runq:
//               space-separated, one length per P), plus pid and
//               monotonic_ns (the sample's time, for rates)
//   goroutines  one line per goroutine, tab-separated: id, state,
//               wait_reason, waiting_for_ns, created_at, created_by,
//               parent_id, name (tabs and newlines in text become spaces);
//               no stacks (cheap: `goro top` asks every second)
//   stacks      the same with three more columns, submitted_at,
//               submitted_by and stack_elided (0/1), each goroutine line
//               followed by its frames, innermost first, one line each:
//               "\t<pc hex>\t<line>\t<file>\t<function>"
//   stack groups  one "G\t<count>\t<wait reason or state>\t<created_at>
//               \t<elided>\t<ids, space-separated>" line per group of
//               goroutines at the same stack (dump_goroutines' grouping),
//               each followed by its frames as above
//   dump        dump_goroutines(out, false)
//   dump group  dump_goroutines(out, true)
//   pprof       write_goroutine_profile(out): binary, gzipped protobuf
// An unknown request gets "error <text>", and so does a request line longer
// than kIntrospectMaxRequest bytes; a client that sends nothing for 10 s,
// or does not read its answer, is disconnected. The server serves many
// clients at once (introspect_server.cpp), so no client can delay another.
// Text, not JSON: the CLI renders
// JSON itself, and neither side needs a parser beyond splitting lines.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace goro::detail {

// introspect_dir is the directory a process of user `uid` with the given
// $XDG_RUNTIME_DIR (null or empty when unset) uses for its socket.
std::string introspect_dir(unsigned uid, const char* xdg_runtime_dir);

// introspect_candidate_dirs lists every directory where a process of user
// `uid` may have put its socket: its $XDG_RUNTIME_DIR choice (when known),
// the conventional /run/user/<uid>/goro, and /tmp/goro-<uid>.
std::vector<std::string> introspect_candidate_dirs(unsigned uid, const char* xdg_runtime_dir);

// kIntrospectMaxRequest bounds a request line (without its newline).
inline constexpr std::size_t kIntrospectMaxRequest = 256;

enum class RequestStatus { kIncomplete, kComplete, kTooLong };

// introspect_parse_request reads what a client has sent so far: kComplete
// with *request set to its first line (without "\n" or "\r\n"), kTooLong
// when that line is (or is bound to be) longer than kIntrospectMaxRequest,
// else kIncomplete. Bytes after the newline are ignored.
RequestStatus introspect_parse_request(std::string_view buffered, std::string* request);

// introspect_answer is the server's answer to one request line.
std::string introspect_answer(const std::string& request);

// introspect_serving reports whether this process's server thread is up.
bool introspect_serving() noexcept;

// introspect_socket_path is this process's socket ("" when not serving).
std::string introspect_socket_path();

}  // namespace goro::detail
