// print_stderr.hpp: the runtime's messages to stderr, formatted by fmt.
//
// fmt::print is not used for them: it throws when the write fails (a
// closed or full stderr), and the runtime prints from noexcept paths
// (fatal errors, panics) and from threads of its own (sysmon), where an
// exception would end the process for a message nobody can read. Like
// fprintf, print_stderr formats into a buffer on the stack and writes it
// with one fwrite, whose failure it ignores.
#pragma once

#include <cstdio>
#include <iterator>
#include <utility>

#include <fmt/format.h>

namespace goro::rt {

// print_stderr writes the formatted text to stderr. Never throws: messages
// up to fmt::memory_buffer's inline size (500 bytes) allocate nothing, and
// a longer one that finds no memory is dropped.
template <class... T>
void print_stderr(fmt::format_string<T...> format, T&&... args) noexcept {
  try {
    fmt::memory_buffer text;
    fmt::format_to(std::back_inserter(text), format, std::forward<T>(args)...);
    std::fwrite(text.data(), 1, text.size(), stderr);
  } catch (...) {
  }
}

}  // namespace goro::rt
