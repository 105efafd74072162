// Command httpload drives one Herald HTTP endpoint with many concurrent
// connections for a fixed time and reports the answers by status: the
// figures in docs/operations.md ("Rate limits") come from it. It is for
// loopback measurements of one replica, not a general load generator.
//
//	go run ./tools/httpload -url http://127.0.0.1:8080/v1/me -key hk_… -c 200 -d 10s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"
)

func main() {
	var (
		url      = flag.String("url", "http://127.0.0.1:8080/v1/me", "endpoint")
		method   = flag.String("method", "GET", "HTTP method")
		body     = flag.String("body", "", "request body (JSON)")
		key      = flag.String("key", "", "API key sent as Authorization: Bearer (empty: none)")
		badKeys  = flag.Bool("bad-keys", false, "send a different invalid key on every request")
		conns    = flag.Int("c", 200, "concurrent connections")
		duration = flag.Duration("d", 10*time.Second, "how long to run")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		errs     int
		wg       sync.WaitGroup
	)
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				req, err := http.NewRequestWithContext(ctx, *method, *url, bytes.NewReader([]byte(*body)))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				if *body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				switch {
				case *badKeys:
					req.Header.Set("Authorization", fmt.Sprintf("Bearer hk_bad%d_%d", c, n))
				case *key != "":
					req.Header.Set("Authorization", "Bearer "+*key)
				}
				res, err := client.Do(req)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
				} else {
					statuses[res.StatusCode]++
				}
				mu.Unlock()
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	var codes []int
	for code, n := range statuses {
		total += n
		codes = append(codes, code)
	}
	sort.Ints(codes)
	fmt.Printf("%d requests in %s over %d connections (%.0f/s)", total, elapsed.Round(time.Millisecond), *conns, float64(total)/elapsed.Seconds())
	for _, code := range codes {
		fmt.Printf(", %d× %d", statuses[code], code)
	}
	if errs > 0 {
		fmt.Printf(", %d transport errors", errs)
	}
	fmt.Println()
}
