// The goro CLI's subcommands. Each takes its arguments (after the
// subcommand's name) and returns the process's exit status.
#pragma once

#include <string>
#include <vector>

namespace goro_cli {

int demo_main(const std::vector<std::string>& args);
int bench_main(const std::vector<std::string>& args);

}  // namespace goro_cli
