// goro: the command-line tool. `goro demo` is the main job: a million
// goroutines parked at once, watched live; `goro bench` runs the workloads
// raced against Go in ../shared/bench.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: goro <command> [arguments]\n"
      "\n"
      "commands:\n"
      "  demo [-n N]          spawn N goroutines (default 1000000) that park, watch the scheduler,\n"
      "                       release them and check that none leaked\n"
      "  bench <workload>     run a side-by-side benchmark workload (../shared/bench/SPEC.md)\n"
      "  ps [--json]          list live processes using goro (yours; everyone's as root)\n"
      "  stat <pid> [-i 1s] [-n N] [--json]\n"
      "                       a line per interval: goroutines, run queues, threads, steals/s, switches/s\n"
      "  top <pid> [-i 1s] [-n N]\n"
      "                       the same full-screen, with goroutines summed up by wait reason\n"
      "  dump <pid> [--group] [--json]\n"
      "                       the goroutine dump of a live process, with stacks (--group: goroutines\n"
      "                       at the same stack counted together)\n"
      "  pprof <pid> [-o FILE]\n"
      "                       the goroutine profile of a live process (pprof's format; go tool pprof)\n"
      "  help                 this text\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "demo") return goro_cli::demo_main(args);
  if (cmd == "bench") return goro_cli::bench_main(args);
  if (cmd == "ps") return goro_cli::ps_command(args);
  if (cmd == "stat") return goro_cli::stat_command(args);
  if (cmd == "top") return goro_cli::top_command(args);
  if (cmd == "dump") return goro_cli::dump_command(args);
  if (cmd == "pprof") return goro_cli::pprof_command(args);
  if (cmd == "help" || cmd == "-h" || cmd == "--help") {
    usage(stdout);
    return 0;
  }
  std::fprintf(stderr, "goro: unknown command '%s'\n\n", cmd.c_str());
  usage(stderr);
  return 2;
}
