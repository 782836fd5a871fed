package main

import (
	"context"
	"sync"
	"time"
)

// mutex: 8 goroutines x n/8 of Lock(); counter++; Unlock().
func mutexBench() (result, error) {
	const g, n = 8, 10_000_000
	var mu sync.Mutex
	var wg sync.WaitGroup
	var counter int64
	start := time.Now()
	wg.Add(g)
	for i := 0; i < g; i++ {
		go func() {
			for j := 0; j < n/g; j++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if counter != n {
		return result{}, mismatch("counter", counter, int64(n))
	}
	return result{n: n, wall: wall}, nil
}

// rwmutex: 8 goroutines x n/8 ops on a RWMutex; every 10th op writes
// under Lock(), the rest read under RLock().
func rwmutexBench() (result, error) {
	const g, n = 8, 10_000_000
	var mu sync.RWMutex
	var wg sync.WaitGroup
	var shared int64
	seen := make([]int64, g) // keeps the reads observable
	start := time.Now()
	wg.Add(g)
	for i := 0; i < g; i++ {
		i := i
		go func() {
			var s int64
			for j := 0; j < n/g; j++ {
				if j%10 == 0 {
					mu.Lock()
					shared++
					mu.Unlock()
				} else {
					mu.RLock()
					s += shared
					mu.RUnlock()
				}
			}
			seen[i] = s
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if want := int64(g * ((n/g + 9) / 10)); shared != want {
		return result{}, mismatch("writes", shared, want)
	}
	return result{n: n, wall: wall}, nil
}

// ctx_timeout: the per-request deadline. 8 goroutines x n/8 of: a context
// with a 1 h timeout; it must not be done yet (a non-blocking look at
// Done()); cancel(); Err() must then be Canceled.
func ctxTimeout() (result, error) {
	const g, n = 8, 1_000_000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong int64
	start := time.Now()
	wg.Add(g)
	for i := 0; i < g; i++ {
		go func() {
			var miss int64
			for j := 0; j < n/g; j++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
				select {
				case <-ctx.Done():
					miss++
				default:
				}
				cancel()
				if ctx.Err() != context.Canceled {
					miss++
				}
			}
			mu.Lock()
			wrong += miss
			mu.Unlock()
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if wrong != 0 {
		return result{}, mismatch("wrong", wrong, int64(0))
	}
	return result{n: n, wall: wall}, nil
}
