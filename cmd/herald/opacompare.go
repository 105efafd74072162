package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/policies"
)

func newOPACompareCmd() *cobra.Command {
	var (
		opaBin string
		n      int
	)
	cmd := &cobra.Command{
		Use:   "opa-compare",
		Short: "Compare the embedded policy engine with the same bundle served by an OPA server over HTTP",
		Long: `Write the default bundle to a temporary directory, start "opa run --server" on it (loopback),
and time the same realistic decision N times in-process and N times over HTTP, interleaved (one of
each in turn, alternating which goes first) so both sides see the same machine load. Build the OPA
binary from the module Herald already uses:

  go build -o /tmp/opa github.com/open-policy-agent/opa
  herald dev opa-compare --opa /tmp/opa`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opaCompare(cmd.Context(), cmd.OutOrStdout(), opaBin, n)
		},
	}
	cmd.Flags().StringVar(&opaBin, "opa", "opa", "path of the opa binary")
	cmd.Flags().IntVar(&n, "n", 5000, "decisions per side")
	return cmd
}

// sampleInput is a realistic decision: marketing to a consenting contact
// in Berlin at midday, a link in the text, a bot account with some history.
func sampleInput() policies.Input {
	now := time.Date(2026, 3, 10, 11, 0, 0, 0, time.UTC)
	consented := now.Add(-30 * 24 * time.Hour)
	inbound := now.Add(-2 * time.Hour)
	return policies.Input{
		Now: now, Stage: "submit",
		Action: policies.ActionInput{ID: "a1", Kind: "send_message", Purpose: "marketing", Recipients: 1,
			Content: policies.ContentStats{Length: 180, Links: 1, Domains: []string{"example.com"}, CapsRatio: 0.05, Exclaims: 1}},
		Actor:   policies.ActorInput{Principal: "op-1", Roles: []string{"operator"}},
		Account: policies.AccountInput{ID: "acc1", Kind: "bot", Connector: "botapi", AgeDays: 120, Status: "active", Sends24h: 800, BaselineDaily7d: 750},
		Target: policies.TargetInput{ChatID: "4242", Type: "user", Contact: &policies.ContactInput{ID: "c1", Timezone: "Europe/Berlin", Language: "de",
			LastInboundAt: &inbound, Consents: map[string]policies.ConsentInput{"marketing": {Basis: "consent", Source: "web form", At: consented}}}},
		Frequency: policies.FrequencyInput{Recipient: []policies.SendRecord{{At: now.Add(-3 * 24 * time.Hour), Purpose: "marketing"}},
			AccountLastSecond: 3, AccountLastMinute: 40},
		Org: policies.OrgInput{ID: "org1", Timezone: "Europe/Berlin"},
	}
}

func opaCompare(ctx context.Context, out io.Writer, opaBin string, n int) error {
	b := policies.DefaultBundle()
	// A deadline far above any decision: on a loaded machine a descheduled
	// decision can miss the serving deadline, and a comparison must measure
	// that latency rather than abort on it.
	eng, err := policies.Compile(ctx, b, policies.EvalTimeout(10*time.Second))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "herald-opa-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, content := range b.Files {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o600); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.CommandContext(ctx, opaBin, "run", "--server", "--addr", addr, "--log-level", "error", dir)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start opa: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := "http://" + addr + "/v1/data/herald/decision"
	in := sampleInput()
	body, _ := json.Marshal(map[string]any{"input": in})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func() (string, error) {
		res, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		var r struct {
			Result policies.Decision `json:"result"`
		}
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			return "", err
		}
		return r.Result.Outcome, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := post(); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("opa server did not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	local, err := eng.Decide(ctx, in)
	if err != nil {
		return err
	}
	remote, err := post()
	if err != nil {
		return err
	}
	if remote != local.Outcome {
		return fmt.Errorf("the OPA server decided %q, the embedded engine %q", remote, local.Outcome)
	}
	emb, opa, err := interleave(n,
		func() error { _, err := eng.Decide(ctx, in); return err },
		func() error { _, err := post(); return err })
	if err != nil {
		return err
	}
	pct := func(d []time.Duration, p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Fprintf(out, "decision %q, %d runs each, interleaved; load average %s\n", local.Outcome, n, loadAverage())
	fmt.Fprintf(out, "embedded:    p50 %8s  p99 %8s\n", pct(emb, .5).Round(time.Microsecond), pct(emb, .99).Round(time.Microsecond))
	fmt.Fprintf(out, "opa server:  p50 %8s  p99 %8s\n", pct(opa, .5).Round(time.Microsecond), pct(opa, .99).Round(time.Microsecond))
	fmt.Fprintf(out, "ratio (server / embedded): p50 %.1f×, p99 %.1f×\n",
		float64(pct(opa, .5))/float64(pct(emb, .5)), float64(pct(opa, .99))/float64(pct(emb, .99)))
	return nil
}

// interleave times a and b n times each, one of each in turn and
// alternating which goes first, so a burst of load elsewhere on the machine
// lands on both sides alike instead of on whichever ran during it. It
// returns each side's durations sorted.
func interleave(n int, a, b func() error) (da, db []time.Duration, err error) {
	da, db = make([]time.Duration, n), make([]time.Duration, n)
	timed := func(f func() error, d *time.Duration) error {
		start := time.Now()
		err := f()
		*d = time.Since(start)
		return err
	}
	for i := range n {
		first, second := a, b
		dFirst, dSecond := &da[i], &db[i]
		if i%2 == 1 {
			first, second, dFirst, dSecond = b, a, &db[i], &da[i]
		}
		if err := timed(first, dFirst); err != nil {
			return nil, nil, err
		}
		if err := timed(second, dSecond); err != nil {
			return nil, nil, err
		}
	}
	sort.Slice(da, func(i, j int) bool { return da[i] < da[j] })
	sort.Slice(db, func(i, j int) bool { return db[i] < db[j] })
	return da, db, nil
}

// loadAverage is the 1/5/15-minute load average (Linux), printed with the
// figures: on a shared machine they mean little without it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
