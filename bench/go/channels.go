package main

import (
	"errors"
	"sync"
	"time"
)

// pingpong: two goroutines bounce an int over two unbuffered channels.
func pingpong() (result, error) {
	const n = 200_000
	ping, pong := make(chan int64), make(chan int64)
	var wg sync.WaitGroup
	var last int64
	start := time.Now()
	wg.Add(2)
	go func() {
		for i := int64(0); i < n; i++ {
			ping <- i
			last = <-pong
		}
		close(ping)
		wg.Done()
	}()
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		wg.Done()
	}()
	wg.Wait()
	wall := time.Since(start)
	if last != n {
		return result{}, mismatch("last", last, int64(n))
	}
	return result{n: n, wall: wall}, nil
}

// chan_spsc: a producer sends 0..n-1 on a channel of capacity 1024; main sums.
func chanSPSC() (result, error) {
	const n = 10_000_000
	ch := make(chan int64, 1024)
	start := time.Now()
	go func() {
		for i := int64(0); i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	var sum int64
	for v := range ch {
		sum += v
	}
	wall := time.Since(start)
	if want := int64(n) * (n - 1) / 2; sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

// chan_mpmc: 4 producers x 2,500,000 ints into one channel of capacity
// 1024, 4 consumers.
func chanMPMC() (result, error) {
	const producers, consumers, per = 4, 4, 2_500_000
	const n = producers * per
	ch := make(chan int64, 1024)
	sums := make([]int64, consumers)
	var prod, cons sync.WaitGroup
	start := time.Now()
	prod.Add(producers)
	for p := 0; p < producers; p++ {
		base := int64(p) * per
		go func() {
			for i := int64(0); i < per; i++ {
				ch <- base + i
			}
			prod.Done()
		}()
	}
	cons.Add(consumers)
	for c := 0; c < consumers; c++ {
		c := c
		go func() {
			var s int64
			for v := range ch {
				s += v
			}
			sums[c] = s
			cons.Done()
		}()
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	wall := time.Since(start)
	var sum int64
	for _, s := range sums {
		sum += s
	}
	if want := int64(n) * (n - 1) / 2; sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

// select2: 2 producers send n/2 ints each on their own unbuffered channel;
// main selects over both until both are closed (a closed one is set to
// nil, Go's idiom for disabling a case).
func select2() (result, error) {
	const n = 1_000_000
	a, b := make(chan int64), make(chan int64)
	produce := func(ch chan<- int64, base int64) {
		for i := int64(0); i < n/2; i++ {
			ch <- base + i
		}
		close(ch)
	}
	start := time.Now()
	go produce(a, 0)
	go produce(b, n/2)
	var sum int64
	for a != nil || b != nil {
		select {
		case v, ok := <-a:
			if ok {
				sum += v
			} else {
				a = nil
			}
		case v, ok := <-b:
			if ok {
				sum += v
			} else {
				b = nil
			}
		}
	}
	wall := time.Since(start)
	if want := int64(n) * (n - 1) / 2; sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

func xorshift100(x uint64) uint64 {
	for r := 0; r < 100; r++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// worker_pool: a feeder sends the job indices (channel of capacity 1024)
// to 8 workers; each job is 100 rounds of xorshift64; results (capacity
// 1024) are summed by main, wrapping.
func workerPool() (result, error) {
	const workers, n = 8, 1_000_000
	jobs, results := make(chan uint64, 1024), make(chan uint64, 1024)
	var wg sync.WaitGroup
	start := time.Now()
	go func() {
		for i := uint64(0); i < n; i++ {
			jobs <- i
		}
		close(jobs)
	}()
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				results <- xorshift100(j)
			}
			wg.Done()
		}()
	}
	var sum uint64
	for i := 0; i < n; i++ {
		sum += <-results
	}
	wg.Wait()
	wall := time.Since(start)
	var want uint64
	for i := uint64(0); i < n; i++ {
		want += xorshift100(i)
	}
	if sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

// pipeline: Go's pipelines pattern with unbuffered channels: a generator
// sends 0..n-1; 8 workers (fan-out) each read the generator and send v*v
// on their own output, closed when the input is; a merge stage (fan-in: a
// goroutine per output forwarding to one channel, closed when all are
// done); main sums, wrapping.
func pipeline() (result, error) {
	const workers, n = 8, 1_000_000
	start := time.Now()
	gen := make(chan uint64)
	go func() {
		for i := uint64(0); i < n; i++ {
			gen <- i
		}
		close(gen)
	}()
	outs := make([]chan uint64, workers)
	for w := range outs {
		out := make(chan uint64)
		outs[w] = out
		go func() {
			for v := range gen {
				out <- v * v
			}
			close(out)
		}()
	}
	merged := make(chan uint64)
	var wg sync.WaitGroup
	wg.Add(workers)
	for _, out := range outs {
		out := out
		go func() {
			for v := range out {
				merged <- v
			}
			wg.Done()
		}()
	}
	go func() {
		wg.Wait()
		close(merged)
	}()
	var sum uint64
	for v := range merged {
		sum += v
	}
	wall := time.Since(start)
	var want uint64
	for i := uint64(0); i < n; i++ {
		want += i * i
	}
	if sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}

// select_timeout: a producer sends 0..n-1 on an unbuffered channel; the
// consumer loops select { case v := <-c: sum += v; case <-time.After(1s):
// fail }, a new timer every iteration, left to expire.
func selectTimeout() (result, error) {
	const n = 1_000_000
	c := make(chan int64)
	start := time.Now()
	go func() {
		for i := int64(0); i < n; i++ {
			c <- i
		}
	}()
	var sum int64
	for i := 0; i < n; i++ {
		select {
		case v := <-c:
			sum += v
		case <-time.After(time.Second):
			return result{}, errors.New("timed_out")
		}
	}
	wall := time.Since(start)
	if want := int64(n) * (n - 1) / 2; sum != want {
		return result{}, mismatch("sum", sum, want)
	}
	return result{n: n, wall: wall}, nil
}
