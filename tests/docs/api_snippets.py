#!/usr/bin/env python3
"""api_snippets.py <docs/api.md> <out.cpp>: docs/api.md's C++ blocks as one test.

Every ```cpp block becomes a namespace of its own in one translation unit,
with #line directives so that a compiler error names the line of
docs/api.md. #include lines are hoisted to the top. Each block that defines
`void example()` becomes a GoogleTest test running it inside goro::run();
each that defines `int program()`, a test calling it outside any run and
expecting 0. Tests are named ApiMd.Line<N>, N the block's first line.
"""
import re
import sys

PRELUDE = """// Generated from docs/api.md by tests/docs/api_snippets.py: do not edit.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <goro/goro.hpp>
#include <goro/testing.hpp>

// check is the snippets' assertion.
#define check(condition) EXPECT_TRUE(condition) << #condition
"""


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        lines = f.read().split("\n")
    blocks, block, start = [], None, 0
    for i, line in enumerate(lines, 1):
        if block is None and line.strip() == "```cpp":
            block, start = [], i + 1
        elif block is not None and line.strip() == "```":
            blocks.append((start, block))
            block = None
        elif block is not None:
            block.append(line)
    if block is not None:
        sys.exit(f"{src}:{start - 1}: a ```cpp block is not closed")
    if not blocks:
        sys.exit(f"{src}: no ```cpp blocks")

    includes, bodies, tests = [], [], []
    for start, block in blocks:
        ns = f"api_snippet_{start}"
        code = []
        for line in block:
            if line.lstrip().startswith("#include"):
                includes.append(line.strip())
                code.append("")  # keeps the #line numbering
            else:
                code.append(line)
        text = "\n".join(code)
        bodies.append(f"namespace {ns} {{\nusing namespace std::chrono_literals;\n"
                      f"#line {start} \"{src}\"\n{text}\n}}  // namespace {ns}\n")
        if re.search(r"^void example\(\)", text, re.M):
            tests.append(f"TEST(ApiMd, Line{start}) {{ goro::run([] {{ {ns}::example(); }}); }}")
        if re.search(r"^int program\(\)", text, re.M):
            tests.append(f"TEST(ApiMd, Line{start}) {{ EXPECT_EQ({ns}::program(), 0); }}")
    with open(out, "w") as f:
        f.write(PRELUDE)
        f.write("".join(f"{i}\n" for i in dict.fromkeys(includes)))
        f.write("\n")
        f.write("\n".join(bodies))
        f.write(f"\n#line 1 \"{out}.tests\"\n")
        f.write("\n".join(tests) + "\n")


if __name__ == "__main__":
    main()
