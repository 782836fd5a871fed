package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

// spawn_join: spawn n goroutines that each call wg.Done(); main waits.
func spawnJoin() (result, error) {
	const n = 1_000_000
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return result{n: n, wall: time.Since(start)}, nil
}

// spawn_parked: n goroutines say "started" then park on gate; RSS is read
// once all are parked, then the gate closes and all must exit.
func spawnParked() (result, error) {
	const n = 1_000_000
	gate := make(chan struct{})
	var started, exited sync.WaitGroup
	before := runtime.NumGoroutine()
	rss0 := statusKB("VmRSS")
	start := time.Now()
	started.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-gate
			exited.Done()
		}()
	}
	started.Wait()
	rss1 := statusKB("VmRSS")
	close(gate)
	exited.Wait()
	wall := time.Since(start)
	// Goroutines run their last instructions after Done(): give them up to 1 s.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	leaked := runtime.NumGoroutine() - before
	if leaked != 0 {
		return result{}, mismatch("leaked", leaked, 0)
	}
	extra := fmt.Sprintf(" bytes_per_g=%.1f leaked=%d", float64(rss1-rss0)*1024/float64(n), leaked)
	return result{n: n, wall: wall, extra: extra}, nil
}

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	for i := int64(0); i < 10; i++ {
		go skynet(rc, num+i*(size/10), size/10)
	}
	var sum int64
	for i := 0; i < 10; i++ {
		sum += <-rc
	}
	out <- sum
}

// skynet: a 10-ary tree of goroutines down to 1,000,000 leaves; each
// parent sums its children over its own unbuffered channel.
func skynetBench() (result, error) {
	const n = 1_111_111
	const want = int64(499999500000)
	out := make(chan int64)
	start := time.Now()
	go skynet(out, 0, 1_000_000)
	sum := <-out
	wall := time.Since(start)
	if sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

// yield: 2 goroutines each call runtime.Gosched() n/2 times (compare runs
// it with GOMAXPROCS=1).
func yieldBench() (result, error) {
	const n = 2_000_000
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(2)
	for i := 0; i < 2; i++ {
		go func() {
			for j := 0; j < n/2; j++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return result{n: n, wall: time.Since(start)}, nil
}

// timers: n goroutines each sleep 10 ms then wg.Done(); the wall time runs
// from the first spawn to Wait() returning.
func timers() (result, error) {
	const n = 100_000
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	return result{n: n, wall: wall, extra: fmt.Sprintf(" overshoot_ms=%.3f", ms(wall)-10)}, nil
}

// idle: 1,000 goroutines parked on a channel while main sleeps 2 s;
// cpu_ms is the process's CPU time meanwhile (none, if nothing spins).
func idle() (result, error) {
	const g = 1000
	gate := make(chan struct{})
	var started, exited sync.WaitGroup
	started.Add(g)
	exited.Add(g)
	for i := 0; i < g; i++ {
		go func() {
			started.Done()
			<-gate
			exited.Done()
		}()
	}
	started.Wait()
	cpu0 := cpuTime()
	start := time.Now()
	time.Sleep(2 * time.Second)
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	close(gate)
	exited.Wait()
	return result{n: 1, wall: wall, extra: fmt.Sprintf(" cpu_ms=%.1f", ms(cpu))}, nil
}
