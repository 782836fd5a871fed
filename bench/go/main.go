// Command bench-go runs one of goro's side-by-side benchmark workloads in
// Go, for bench/compare to race against `goro bench` on the same machine.
// docs/benchmarks.md describes the workloads; this program and goro's
// tools/goro/bench*.cpp write each of them the same way against their own
// runtime's API. Standard library only; Go 1.19 (Debian 12's golang-go)
// is enough.
//
//	bench-go <workload>   one line: BENCH name=<w> impl=go n=<ops> ns_per_op=<f> wall_ms=<f> rss_kb=<n> [k=v ...]
//	bench-go --list       the workload names, one per line
//
// A workload whose self-check fails prints "BENCH name=<w> impl=go
// error=<what>" and exits 1. GOMAXPROCS is honoured as Go always does.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// result is what a workload measured: n operations in wall time, and
// extra " k=v" figures.
type result struct {
	n     int64
	wall  time.Duration
	extra string
}

type workload struct {
	name string
	run  func() (result, error)
}

// workloads, in docs/benchmarks.md's order (goro bench lists them alike).
var workloads = []workload{
	{"spawn_join", spawnJoin},
	{"spawn_parked", spawnParked},
	{"skynet", skynetBench},
	{"pingpong", pingpong},
	{"chan_spsc", chanSPSC},
	{"chan_mpmc", chanMPMC},
	{"select2", select2},
	{"mutex", mutexBench},
	{"rwmutex", rwmutexBench},
	{"yield", yieldBench},
	{"timers", timers},
	{"worker_pool", workerPool},
	{"idle", idle},
	{"pipeline", pipeline},
	{"ctx_timeout", ctxTimeout},
	{"select_timeout", selectTimeout},
	{"echo", echo},
	{"echo_conns", echoConns},
}

func main() {
	var names []string
	for _, w := range workloads {
		names = append(names, w.name)
	}
	if len(os.Args) == 2 && os.Args[1] == "--list" {
		fmt.Println(strings.Join(names, "\n"))
		return
	}
	if len(os.Args) == 2 {
		for _, w := range workloads {
			if w.name != os.Args[1] {
				continue
			}
			r, err := w.run()
			if err != nil {
				fmt.Printf("BENCH name=%s impl=go error=%s\n", w.name, strings.ReplaceAll(err.Error(), " ", "_"))
				os.Exit(1)
			}
			fmt.Printf("BENCH name=%s impl=go n=%d ns_per_op=%.2f wall_ms=%.3f rss_kb=%d%s\n", w.name, r.n,
				float64(r.wall.Nanoseconds())/float64(r.n), ms(r.wall), statusKB("VmHWM"), r.extra)
			return
		}
		fmt.Fprintf(os.Stderr, "bench-go: unknown workload '%s'\n", os.Args[1])
	}
	fmt.Fprintf(os.Stderr, "usage: %s <workload>\nworkloads: %s\n", os.Args[0], strings.Join(names, " "))
	os.Exit(2)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// statusKB reads a "Name:   123 kB" line of /proc/self/status; -1 if absent.
func statusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			parts := strings.Fields(line[len(field)+1:])
			if len(parts) > 0 {
				v, err := strconv.ParseInt(parts[0], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mismatch formats a failed self-check as goro bench does.
func mismatch(what string, got, want interface{}) error {
	return fmt.Errorf("%s_mismatch:got=%v,want=%v", what, got, want)
}
