// The goro CLI's subcommands. Each takes its arguments (after the
// subcommand's name) and returns the process's exit status.
#pragma once

#include <string>
#include <vector>

namespace goro_cli {

int demo_main(const std::vector<std::string>& args);
int bench_main(const std::vector<std::string>& args);

// inspect.cpp: attaching to a live goro process.
int ps_command(const std::vector<std::string>& args);
int stat_command(const std::vector<std::string>& args);
int top_command(const std::vector<std::string>& args);
int dump_command(const std::vector<std::string>& args);
int pprof_command(const std::vector<std::string>& args);

}  // namespace goro_cli
