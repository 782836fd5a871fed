# cmake -DCXX=<compiler> -DSOURCE=<file.cpp> -DINCLUDES=<dir;dir> -P check.cmake
#
# A compile-fail test: SOURCE must not compile, and the compiler must say
# why in the words its first line gives ("// expect: <regex>"), in one
# error: a static_assert's message, not a page of template errors.
file(STRINGS ${SOURCE} first LIMIT_COUNT 1)
if(NOT first MATCHES "^// expect: (.+)$")
  message(FATAL_ERROR "${SOURCE}: the first line must be // expect: <regex>")
endif()
set(expect "${CMAKE_MATCH_1}")
set(flags -std=c++20 -fsyntax-only)
foreach(dir IN LISTS INCLUDES)
  list(APPEND flags -I${dir})
endforeach()
execute_process(COMMAND ${CXX} ${flags} ${SOURCE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled; it must not")
endif()
if(NOT out MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE}: the compiler did not say \"${expect}\":\n${out}")
endif()
string(REGEX MATCHALL "error:" errors "${out}")
list(LENGTH errors n)
if(n GREATER 1)
  message(FATAL_ERROR "${SOURCE}: ${n} errors, want the static_assert alone:\n${out}")
endif()
message(STATUS "${SOURCE}: refused with \"${expect}\"")
