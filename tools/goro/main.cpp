// goro: the command-line tool. `goro demo` is the main job: a million
// goroutines parked at once, watched live; `goro bench` runs the workloads
// raced against Go (docs/benchmarks.md); ps, stat, top and dump look
// inside a live goro process (docs/debugging.md).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "commands.hpp"

namespace {

void usage(std::FILE* out) {
  std::fputs(
      "usage: goro <command> [arguments]      (goro <command> --help: more on one command)\n"
      "\n"
      "commands:\n"
      "  demo [-n N] [--hold [duration]]\n"
      "                       spawn N goroutines (default 1000000) that park, watch the scheduler,\n"
      "                       release them and check that none leaked\n"
      "  bench <workload>     run a side-by-side benchmark workload (docs/benchmarks.md)\n"
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
      "  help [command]       this text, or one command's\n",
      out);
}

struct CommandHelp {
  const char* name;
  const char* text;
};

const CommandHelp kHelp[] = {
    {"demo",
     "usage: goro demo [-n N] [--hold [duration]]\n"
     "\n"
     "Spawns N goroutines (default 1000000) that each park on one channel, prints a\n"
     "schedtrace-style line every second, reports the time and memory they took,\n"
     "releases them and checks that the goroutine count falls back to 1 (exit 1 if not).\n"
     "\n"
     "  -n N               how many goroutines (1 to 100000000)\n"
     "  --hold [duration]  keep them parked for this long (e.g. 30s, 2m) before releasing\n"
     "                     them, or until Enter is pressed if no duration follows; meanwhile\n"
     "                     watch the process from another terminal: goro stat|top|dump <pid>\n"},
    {"bench",
     "usage: goro bench <workload>\n"
     "\n"
     "Runs one side-by-side workload and prints one line:\n"
     "  BENCH name=<workload> impl=goro n=<ops> ns_per_op=<f> wall_ms=<f> rss_kb=<n> [extra=value ...]\n"
     "or 'error=<what>' and exit status 1 if its self-check fails (or the build is unoptimised\n"
     "or sanitized). bench/go holds the same workloads in Go and bench/compare races the two;\n"
     "docs/benchmarks.md explains the workloads and the figures.\n"},
    {"ps",
     "usage: goro ps [--json]\n"
     "\n"
     "Lists the live processes that use goro: pid, goroutines, Ps, command. Yours, or\n"
     "everyone's when run as root. --json: one object per line.\n"},
    {"stat",
     "usage: goro stat <pid> [-i interval] [-n count] [--json]\n"
     "\n"
     "Prints a line per interval (default 1s; Go's duration syntax: 500ms, 2s) until\n"
     "count lines, Ctrl-C, or the process's exit (\"process <pid> exited\", status 0):\n"
     "goroutines, runnable goroutines, run queues, threads, steals/s, switches/s.\n"
     "--json: one object per line, with sched_stats()'s field names.\n"},
    {"top",
     "usage: goro top <pid> [-i interval] [-n count]\n"
     "\n"
     "A full-screen view refreshed every interval (default 1s): the scheduler's figures and\n"
     "the goroutines counted by wait reason, and by wait reason and creation site, each with\n"
     "its growth in goroutines a second (a leak is a group that keeps growing).\n"
     "q quits (or Ctrl-C); it also ends after count frames or when the process exits.\n"},
    {"dump",
     "usage: goro dump <pid> [--group] [--json]\n"
     "\n"
     "Prints every goroutine of the process as Go's dump does: id, state or wait reason,\n"
     "name, creation site. --group: one entry per kind (wait reason and creation site)\n"
     "with a count, as pprof's debug=1. --json: the goroutines as JSON.\n"},
};

const CommandHelp* help_of(const std::string& cmd) {
  for (const CommandHelp& h : kHelp) {
    if (cmd == h.name) return &h;
  }
  return nullptr;
}

bool asks_for_help(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

// command_help answers `goro <cmd> --help` on stdout, status 0.
int command_help(const std::string& cmd) {
  std::fputs(help_of(cmd)->text, stdout);
  if (cmd == "bench") {
    // bench's own usage lists its workloads (on stderr): send it here too.
    std::fputs("\n", stdout);
    std::fflush(stdout);
    ::dup2(1, 2);
    (void)goro_cli::bench_main({});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (help_of(cmd) != nullptr && asks_for_help(args)) return command_help(cmd);
  if (cmd == "demo") return goro_cli::demo_main(args);
  if (cmd == "bench") return goro_cli::bench_main(args);
  if (cmd == "ps") return goro_cli::ps_command(args);
  if (cmd == "stat") return goro_cli::stat_command(args);
  if (cmd == "top") return goro_cli::top_command(args);
  if (cmd == "dump") return goro_cli::dump_command(args);
  if (cmd == "pprof") return goro_cli::pprof_command(args);
  if (cmd == "help" || cmd == "-h" || cmd == "--help") {
    if (!args.empty() && help_of(args[0]) != nullptr) return command_help(args[0]);
    usage(stdout);
    return 0;
  }
  goro_cli::print_to(stderr, "goro: unknown command '{}'\n\n", cmd);
  usage(stderr);
  return 2;
}
