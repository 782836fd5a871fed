package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// echoServer accepts on ln and echoes each connection's bytes back with a
// buffer of bufSize bytes, one goroutine per connection; live counts the
// connection goroutines alive. It returns when ln is closed.
func echoServer(ln net.Listener, bufSize int, live *int64, handlers *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handlers.Add(1)
		atomic.AddInt64(live, 1)
		go func() {
			defer handlers.Done()
			defer atomic.AddInt64(live, -1)
			defer c.Close()
			buf := make([]byte, bufSize)
			for {
				k, err := c.Read(buf)
				if k > 0 {
					if _, werr := c.Write(buf[:k]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// echo: TCP echo on 127.0.0.1: 100 clients each dial once and make 2,000
// round trips of 64 bytes (write them, read until all 64 are back,
// compare). TCP_NODELAY is Go's default. p50_us and p99_us are round-trip
// latency percentiles over all round trips.
func echo() (result, error) {
	const clients, trips = 100, 2_000
	const n = clients * trips
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	var live int64
	var handlers sync.WaitGroup
	go echoServer(ln, 4096, &live, &handlers)
	lat := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(clients)
	for i := 0; i < clients; i++ {
		i := i
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			out, in := make([]byte, 64), make([]byte, 64)
			mine := make([]time.Duration, 0, trips)
			for t := 0; t < trips; t++ {
				for k := range out {
					out[k] = byte(i + t + k)
				}
				t0 := time.Now()
				if _, err := c.Write(out); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(c, in); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
				if !bytes.Equal(in, out) {
					errs <- errors.New("echo_mismatch")
					return
				}
			}
			lat[i] = mine
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	ln.Close()
	handlers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return result{}, err
	}
	all := make([]time.Duration, 0, n)
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Nanoseconds()) / 1e3 }
	return result{n: n, wall: wall, extra: fmt.Sprintf(" p50_us=%.1f p99_us=%.1f", pct(0.50), pct(0.99))}, nil
}

// echo_conns: many idle connections. The same echo server with a 512-byte
// buffer per connection; main dials n connections and keeps them open;
// once n server goroutines exist RSS is read; then one byte is echoed on
// every connection, all are closed, the listener is closed, and every
// server goroutine must exit. bytes_per_conn = (RSS with all connected -
// RSS before dialing) / n; the wall time runs from the first dial to the
// last server goroutine's exit.
func echoConns() (result, error) {
	const n = 5_000
	// 2n+1 descriptors: raise the soft limit to the hard one, as Go (1.19+)
	// does at start-up anyway.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	before := runtime.NumGoroutine()
	var live int64
	var handlers sync.WaitGroup
	serverDone := make(chan struct{})
	go func() {
		echoServer(ln, 512, &live, &handlers)
		close(serverDone)
	}()
	rss0 := statusKB("VmRSS")
	start := time.Now()
	conns := make([]net.Conn, 0, n)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			closeAll()
			ln.Close()
			return result{}, err
		}
		conns = append(conns, c)
	}
	for deadline := time.Now().Add(30 * time.Second); atomic.LoadInt64(&live) < n; {
		if time.Now().After(deadline) {
			closeAll()
			ln.Close()
			return result{}, mismatch("server_goroutines", atomic.LoadInt64(&live), int64(n))
		}
		time.Sleep(time.Millisecond)
	}
	rss1 := statusKB("VmRSS")
	one, back := []byte{'x'}, make([]byte, 1)
	for _, c := range conns {
		if _, err := c.Write(one); err != nil {
			closeAll()
			ln.Close()
			return result{}, err
		}
		if _, err := io.ReadFull(c, back); err != nil || back[0] != 'x' {
			closeAll()
			ln.Close()
			return result{}, errors.New("echo_mismatch")
		}
	}
	closeAll()
	ln.Close()
	<-serverDone
	handlers.Wait()
	wall := time.Since(start)
	// Goroutines run their last instructions after Done(): give them up to 1 s.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	leaked := runtime.NumGoroutine() - before
	if leaked != 0 {
		return result{}, mismatch("leaked", leaked, 0)
	}
	extra := fmt.Sprintf(" bytes_per_conn=%.1f leaked=%d", float64(rss1-rss0)*1024/float64(n), leaked)
	return result{n: n, wall: wall, extra: extra}, nil
}
