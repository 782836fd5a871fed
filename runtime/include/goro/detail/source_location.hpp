// SourceLocation: where a goroutine was created (the go() call site).
//
// goro's own class, whichever compiler and standard library: it appears in
// the signatures of exported functions (detail::spawn_reserve), so it must
// be one type everywhere, or a program built with clang++ could not link a
// goro built with g++ (std::source_location exists under g++ 12 but not
// under clang 14 with the same libstdc++, and an alias to it would mangle
// differently). current() fills it from __builtin_FILE()/__builtin_LINE()/
// __builtin_FUNCTION(), which both compilers evaluate at the call site when
// current() is a defaulted argument (under g++, from std::source_location,
// for its more readable function names). There is no column: g++ 12 has no
// __builtin_COLUMN, so column() is 0.
#pragma once

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace goro {

class SourceLocation {
 public:
#if defined(__cpp_lib_source_location) && !defined(__clang__)
  // g++: std::source_location's function name is the readable one
  // ("main()::<lambda()>" where __builtin_FUNCTION() says "operator()").
  // Only this inline function differs; the class is the same.
  static constexpr SourceLocation current(std::source_location here = std::source_location::current()) noexcept {
    SourceLocation loc;
    loc.file_ = here.file_name();
    loc.function_ = here.function_name();
    loc.line_ = here.line();
    return loc;
  }
#else
  static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                          const char* function = __builtin_FUNCTION(),
                                          std::uint_least32_t line = __builtin_LINE()) noexcept {
    SourceLocation loc;
    loc.file_ = file;
    loc.function_ = function;
    loc.line_ = line;
    return loc;
  }
#endif
  constexpr SourceLocation() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return 0; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
};

}  // namespace goro
