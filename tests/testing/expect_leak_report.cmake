# cmake -DBINARY=<leak_listener_*_test> -P expect_leak_report.cmake
#
# Runs a test binary whose test Listener.LeakyTestLeavesAReceiverBlocked leaks one
# goroutine under goro::testing's listener, and checks that
#   1. the binary exits non-zero;
#   2. the leak report sits between that test's RUN and FAILED lines, and
#      names the goroutine the test printed ("leak: goroutine <id> at
#      <file:line>") with its wait reason and creation site, as
#      dump_goroutines writes them;
#   3. every other test passed, and the summary counts one leaky test.
execute_process(COMMAND ${BINARY} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(out "${out}${err}")
function(fail why)
  message(FATAL_ERROR "${why}\n--- output of ${BINARY} ---\n${out}")
endfunction()

if(rc EQUAL 0)
  fail("the binary exited 0 although a test leaked")
endif()

if(NOT out MATCHES "leak: goroutine ([0-9]+) at ([^\n ]+) blocked at ([^\n]+)\n")
  fail("the leaky test did not say what it leaked")
endif()
set(id ${CMAKE_MATCH_1})
set(site ${CMAKE_MATCH_2})
set(blocked_at ${CMAKE_MATCH_3})

set(test Listener.LeakyTestLeavesAReceiverBlocked)
string(FIND "${out}" "[ RUN      ] ${test}\n" run_at)
string(FIND "${out}" "[  FAILED  ] ${test} (" failed_at)
if(run_at EQUAL -1 OR failed_at EQUAL -1 OR failed_at LESS run_at)
  fail("${test} did not fail")
endif()
math(EXPR length "${failed_at} - ${run_at}")
string(SUBSTRING "${out}" ${run_at} ${length} leaky_test_output)
foreach(part "goroutine ${id} [chan receive]:\n" "\ncreated by " "\n\t" "${site}\n" "1 leaked goroutine\n")
  string(FIND "${leaky_test_output}" "${part}" at)
  if(at EQUAL -1)
    fail("the report in ${test}'s output lacks \"${part}\"")
  endif()
endforeach()
# Goroutine <id>'s entry: its stack, innermost first, starting where it is
# blocked (a function line, then a tab and file:line), then the creation site.
string(FIND "${leaky_test_output}" "goroutine ${id} [chan receive]:\n" entry_at)
string(SUBSTRING "${leaky_test_output}" ${entry_at} -1 entry)
if(NOT entry MATCHES "^goroutine ${id} \\[chan receive\\]:\nblocked_receiving\\(goro::Chan<int>\\)\n\t[^\n]*${blocked_at} \\+0x[0-9a-f]+\n")
  fail("goroutine ${id}'s entry does not start with where it is blocked (${blocked_at})")
endif()
if(NOT entry MATCHES "^goroutine ${id} \\[chan receive\\]:\n([^\n]+\n\t[^\n]+\n)+created by [^\n]+ in goroutine [0-9]+\n\t[^\n]*${site}\n")
  fail("goroutine ${id}'s entry is not in dump_goroutines' form or lacks ${site}")
endif()

string(REGEX MATCHALL "\\[  FAILED  \\] [A-Za-z.]+ \\(" failures "${out}")
list(LENGTH failures n_failed)
if(NOT n_failed EQUAL 1)
  fail("expected exactly one failed test, got ${n_failed}: ${failures}")
endif()
string(REGEX MATCHALL "\\[       OK \\] Listener\\.[A-Za-z]+" passed "${out}")
list(LENGTH passed n_passed)
if(n_passed LESS 2)
  fail("the clean tests did not all pass: ${passed}")
endif()
if(NOT out MATCHES "goro::testing: 1 test leaked goroutines")
  fail("no summary line for the leaky test")
endif()
message(STATUS "${test} failed with the leak report; the clean tests passed; exit code ${rc}")
