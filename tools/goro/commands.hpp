// The goro CLI's subcommands. Each takes its arguments (after the
// subcommand's name) and returns the process's exit status.
#pragma once

#include <chrono>
#include <cstdio>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace goro_cli {

int demo_main(const std::vector<std::string>& args);
int bench_main(const std::vector<std::string>& args);

// inspect.cpp: attaching to a live goro process.
int ps_command(const std::vector<std::string>& args);
int stat_command(const std::vector<std::string>& args);
int top_command(const std::vector<std::string>& args);
int dump_command(const std::vector<std::string>& args);
int pprof_command(const std::vector<std::string>& args);

// parse_go_duration reads a duration as the commands take them: Go's
// syntax for one unit ("500ms", "1.5s", "2m") or a bare number of seconds.
std::optional<std::chrono::nanoseconds> parse_go_duration(const std::string& s);

// print_to writes formatted text to a stdio stream as printf did: a write
// that fails (stdout closed, or a full disk) is not an error here, where
// fmt::print would throw and end the command with an uncaught exception.
template <class... T>
void print_to(std::FILE* stream, fmt::format_string<T...> format, T&&... args) {
  fmt::memory_buffer text;
  fmt::format_to(std::back_inserter(text), format, std::forward<T>(args)...);
  std::fwrite(text.data(), 1, text.size(), stream);
}

}  // namespace goro_cli
