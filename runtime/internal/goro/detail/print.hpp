// goro/detail/print.hpp: text formatted by fmt and written to a stdio
// stream the way printf writes it. Internal to goro: the runtime's messages
// to stderr and the goro CLI's output share it.
//
// fmt::print is not used: it throws when the write fails (a closed or full
// stream), and the runtime prints from noexcept paths (fatal errors,
// panics) and from threads of its own (sysmon), where an exception would
// end the process for a message nobody can read; the CLI would end a
// command over a closed stdout. Like fprintf, print_to formats into a
// buffer on the stack and writes it with one fwrite, whose failure it
// ignores.
#pragma once

#include <cstdio>
#include <iterator>
#include <utility>

#include <fmt/format.h>

namespace goro::detail {

// print_to writes the formatted text to `stream`. Never throws: text up to
// fmt::memory_buffer's inline size (500 bytes) allocates nothing, and a
// longer one that finds no memory is dropped.
template <class... T>
void print_to(std::FILE* stream, fmt::format_string<T...> format, T&&... args) noexcept {
  try {
    fmt::memory_buffer text;
    fmt::format_to(std::back_inserter(text), format, std::forward<T>(args)...);
    std::fwrite(text.data(), 1, text.size(), stream);
  } catch (...) {
  }
}

// print_stderr is print_to(stderr, ...): the runtime's messages.
template <class... T>
void print_stderr(fmt::format_string<T...> format, T&&... args) noexcept {
  print_to(stderr, format, std::forward<T>(args)...);
}

}  // namespace goro::detail

namespace goro::rt {
using detail::print_stderr;
}  // namespace goro::rt
