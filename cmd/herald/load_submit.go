package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// submitLoadOptions configure a submit-only run: closed-loop clients, each
// submitting its next action as soon as the last one answered, with no
// delivery worker, so the run measures what the gateway commits.
type submitLoadOptions struct {
	clients     int
	duration    time.Duration
	url         string // a running server; empty = a gateway in this process
	keys        loadKeys
	databaseURL string // in-process only
	policy      string // in-process only: "default" or "allow"
	accounts    int
	recipients  int
	purpose     string
	serverPID   int
	// seedActions (in-process only) bulk-inserts this many delivered
	// actions of another account of the load organisation before the run,
	// to measure the submit path against a large actions table.
	seedActions int
	// cpuProfile, when set, receives a CPU profile of the measured window
	// (after setup).
	cpuProfile string
}

// loadKeys are the API keys a submit-only run uses: Herald separates duties,
// so creating accounts (admin), importing contacts (compliance officer) and
// submitting (operator) are three roles. Unset setup keys default to submit.
type loadKeys struct {
	submit, admin, officer string
}

func (k loadKeys) withDefaults() loadKeys {
	if k.admin == "" {
		k.admin = k.submit
	}
	if k.officer == "" {
		k.officer = k.submit
	}
	return k
}

// submitLoadReport is what a submit-only run measured. committed counts
// 201 answers; every attempt is either committed or an error, so
// committed + errors == attempts, and the outcome mix adds up to committed.
type submitLoadReport struct {
	opts          submitLoadOptions
	target        string // "in-process (sqlite)", "http://…"
	org           string // the organisation of an in-process run
	attempts      int
	committed     int
	errors        map[string]int // status or transport error → count
	outcomes      map[string]int // decision outcome (and first reason) → count
	elapsed       time.Duration
	p50, p95, p99 time.Duration
	peakRSS       int64         // bytes; 0 when unknown
	cpu           time.Duration // CPU time (user + system) of the measured process during the run; 0 when unknown
	rssOf         string        // whose peak RSS and CPU they are
}

func (r submitLoadReport) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.committed) / r.elapsed.Seconds()
}

func (r submitLoadReport) errorCount() int {
	n := 0
	for _, v := range r.errors {
		n += v
	}
	return n
}

func (r submitLoadReport) print(w io.Writer) {
	fmt.Fprintf(w, "submit-only against %s: %d clients, %s, %d accounts, %d recipients, purpose %s\n",
		r.target, r.opts.clients, r.opts.duration, r.opts.accounts, r.opts.recipients, r.opts.purpose)
	if r.opts.seedActions > 0 {
		fmt.Fprintf(w, "seeded %d delivered actions of another account of the organisation (bulk SQL) before the run\n", r.opts.seedActions)
	}
	fmt.Fprintf(w, "committed %d in %s: %.1f submits/s\n", r.committed, r.elapsed.Round(time.Millisecond), r.rate())
	fmt.Fprintf(w, "latency: p50 %s, p95 %s, p99 %s\n", roundLatency(r.p50), roundLatency(r.p95), roundLatency(r.p99))
	fmt.Fprintf(w, "outcomes: %s\n", formatCounts(r.outcomes))
	fmt.Fprintf(w, "errors: %d %s\n", r.errorCount(), formatCounts(r.errors))
	if r.cpu > 0 && r.committed > 0 {
		per := r.cpu / time.Duration(r.committed)
		fmt.Fprintf(w, "CPU: %s per committed submit (%s), i.e. %.0f submits/s per fully used core\n",
			roundLatency(per), r.rssOf, float64(time.Second)/float64(per))
	}
	if r.peakRSS > 0 {
		fmt.Fprintf(w, "peak RSS: %.1f MiB (%s)\n", float64(r.peakRSS)/(1<<20), r.rssOf)
	} else {
		fmt.Fprintf(w, "peak RSS: not measured (%s)\n", r.rssOf)
	}
}

func roundLatency(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Microsecond)
}

func formatCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (o submitLoadOptions) validate() error {
	switch {
	case o.clients < 1:
		return errors.New("--clients must be at least 1")
	case o.duration <= 0:
		return errors.New("--duration must be positive")
	case o.accounts < 1:
		return errors.New("--accounts must be at least 1")
	case o.recipients < 1:
		return errors.New("--recipients must be at least 1")
	case o.url != "" && o.keys.submit == "":
		return errors.New("--url needs --key (an operator's API key; --admin-key and --officer-key create the accounts and contacts)")
	case o.url != "" && o.databaseURL != "":
		return errors.New("--database-url is for in-process runs; a running server has its own database")
	case o.seedActions < 0:
		return errors.New("--seed-actions must not be negative")
	case o.url != "" && o.seedActions > 0:
		return errors.New("--seed-actions is for in-process runs: it writes to the database directly")
	case o.policy != "default" && o.policy != "allow":
		return fmt.Errorf("--policy must be default or allow, not %q", o.policy)
	}
	return nil
}

// runSubmitLoad sets up accounts and consenting contacts through the API,
// then runs the clients for the duration.
func runSubmitLoad(ctx context.Context, o submitLoadOptions) (submitLoadReport, error) {
	rep := submitLoadReport{opts: o, errors: map[string]int{}, outcomes: map[string]int{}}
	if err := o.validate(); err != nil {
		return rep, err
	}
	apiURL, keys := strings.TrimRight(o.url, "/"), o.keys.withDefaults()
	rep.target = apiURL
	if apiURL == "" {
		var stop func()
		var err error
		apiURL, keys, rep.target, rep.org, stop, err = startInProcessGateway(ctx, o)
		if err != nil {
			return rep, err
		}
		defer stop()
		rep.rssOf = "this process: the in-process server and the load clients together"
	} else if o.serverPID > 0 {
		rep.rssOf = fmt.Sprintf("server process %d", o.serverPID)
	} else {
		rep.rssOf = "remote server; pass --server-pid to measure its peak RSS and CPU"
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients + 4}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	accounts, chats, err := setupSubmitLoad(ctx, client, apiURL, keys, o)
	if err != nil {
		return rep, err
	}

	type clientResult struct {
		latencies []time.Duration
		outcomes  map[string]int
		errors    map[string]int
	}
	results := make([]clientResult, o.clients)
	pid := os.Getpid()
	if o.url != "" {
		pid = o.serverPID
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return rep, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return rep, err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0, cpuErr := processCPU(pid)
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := clientResult{outcomes: map[string]int{}, errors: map[string]int{}}
			// Each client walks the recipients from its own offset, so
			// concurrent clients address different people.
			for n := 0; runCtx.Err() == nil; n++ {
				i := c + n*o.clients
				body := map[string]any{"kind": "send_message", "account": accounts[i%len(accounts)],
					"target": chats[i%len(chats)], "purpose": o.purpose, "text": "Your order has shipped"}
				t0 := time.Now()
				outcome, err := submitOne(ctx, client, apiURL, keys.submit, body)
				if err != nil {
					res.errors[err.Error()]++
					continue
				}
				res.latencies = append(res.latencies, time.Since(t0))
				res.outcomes[outcome]++
			}
			results[c] = res
		}()
	}
	wg.Wait()
	rep.elapsed = time.Since(start)
	if cpu1, err := processCPU(pid); err == nil && cpuErr == nil {
		rep.cpu = cpu1 - cpu0
	}
	var lat []time.Duration
	for _, r := range results {
		lat = append(lat, r.latencies...)
		for k, v := range r.outcomes {
			rep.outcomes[k] += v
			rep.committed += v
		}
		for k, v := range r.errors {
			rep.errors[k] += v
		}
	}
	rep.attempts = rep.committed + rep.errorCount()
	rep.p50, rep.p95, rep.p99 = percentile(lat, .50), percentile(lat, .95), percentile(lat, .99)
	if pid > 0 {
		rep.peakRSS, _ = peakRSS(pid)
	}
	return rep, nil
}

// percentile is the nearest-rank percentile of d (sorted in place).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// peakRSS reads the high-water mark of a process's resident set (VmHWM).
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS of process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM of process %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("process %d reports no VmHWM", pid)
}

// clockTicks is the kernel's USER_HZ, the unit of the CPU times in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU reads the user + system CPU time a process has used so far.
// Dividing a run's CPU by its committed submits gives the cost of one
// submit, which, unlike wall-clock throughput, hardly depends on what else
// the machine is running.
func processCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no process to measure")
	}
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are space-separated: state is field 3, utime 14, stime 15.
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// startInProcessGateway wires a gateway the way "herald serve --worker=false"
// does (policy registry over the default bundle, Casbin), on a fresh store,
// and serves it on loopback. It returns the API URL and one key per duty.
func startInProcessGateway(ctx context.Context, o submitLoadOptions) (apiURL string, keys loadKeys, label, orgID string, stop func(), err error) {
	var cleanup []func()
	stop = func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	// Measure what "herald serve" would do: it raises the GC target.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	dbURL := o.databaseURL
	if dbURL == "" {
		tmp, err := os.MkdirTemp("", "herald-load-")
		if err != nil {
			return "", keys, "", "", nil, err
		}
		cleanup = append(cleanup, func() { _ = os.RemoveAll(tmp) })
		dbURL = "sqlite:" + filepath.Join(tmp, "herald.db")
	}
	label = "in-process (sqlite)"
	if strings.HasPrefix(dbURL, "postgres") {
		label = "in-process (postgres)"
	}
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		return "", keys, "", "", nil, err
	}
	cleanup = append(cleanup, func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		return "", keys, "", "", nil, err
	}
	if n, err := s.CountOrgs(ctx); err != nil || n > 0 {
		return "", keys, "", "", nil, fmt.Errorf("the load database must be empty (it has %d organisations): %w", n, err)
	}
	org, err := s.CreateOrg(ctx, "load", "UTC")
	if err != nil {
		return "", keys, "", "", nil, err
	}
	if o.seedActions > 0 {
		acc, err := s.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "seeded history", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			return "", keys, "", "", nil, err
		}
		if err := s.SeedDeliveredActions(ctx, org.ID, acc.ID, o.seedActions, s.Now()); err != nil {
			return "", keys, "", "", nil, err
		}
	}
	for _, k := range []struct {
		dst  *string
		role string
	}{{&keys.admin, herald.RoleAdmin}, {&keys.officer, herald.RoleComplianceOfficer}, {&keys.submit, herald.RoleOperator}} {
		principal := "load-" + k.role
		if _, *k.dst, err = s.CreateAPIKey(ctx, org.ID, principal, k.role, "load", nil); err != nil {
			return "", keys, "", "", nil, err
		}
		if _, err := s.EnsureRole(ctx, org.ID, principal, k.role, "load"); err != nil {
			return "", keys, "", "", nil, err
		}
	}
	var decider gateway.Decider = allowAll{}
	if o.policy == "default" {
		engine, err := policies.Compile(ctx, policies.DefaultBundle())
		if err != nil {
			return "", keys, "", "", nil, err
		}
		decider = policies.NewRegistry(engine, s)
	}
	authz, err := access.NewEnforcer(ctx, s)
	if err != nil {
		return "", keys, "", "", nil, err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := telemetry.New(nil)
	pl := &gateway.Pipeline{Store: s, Authz: authz, Decider: decider, Metrics: m, Log: log}
	apiURL, stopAPI, err := serveLoopback((&gateway.Server{Pipeline: pl, Store: s, Metrics: m, Log: log}).Handler())
	if err != nil {
		return "", keys, "", "", nil, err
	}
	cleanup = append(cleanup, stopAPI)
	return apiURL, keys, label, org.ID, stop, nil
}

// setupSubmitLoad creates sandbox bot accounts and imports one consenting
// contact per recipient, all through the public API, under chat ids drawn
// at random so that runs against the same server do not share people.
func setupSubmitLoad(ctx context.Context, c *http.Client, apiURL string, keys loadKeys, o submitLoadOptions) (accounts, chats []string, err error) {
	for i := range o.accounts {
		var acc struct {
			ID string `json:"id"`
		}
		if err := callJSON(ctx, c, "POST", apiURL+"/v1/accounts", keys.admin, map[string]any{
			"name": fmt.Sprintf("load bot %d", i), "kind": herald.AccountBot, "connector": herald.ConnectorSandbox,
		}, http.StatusCreated, &acc); err != nil {
			return nil, nil, fmt.Errorf("create load account: %w", err)
		}
		accounts = append(accounts, acc.ID)
	}
	base := 1_000_000_000 + rand.Int64N(1_000_000_000)
	consented := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	const chunk = 1000
	for from := 0; from < o.recipients; from += chunk {
		rows := make([]herald.ContactImportRow, 0, chunk)
		for i := from; i < min(from+chunk, o.recipients); i++ {
			chat := strconv.FormatInt(base+int64(i), 10)
			chats = append(chats, chat)
			rows = append(rows, herald.ContactImportRow{ChatID: chat, Timezone: "UTC", Purpose: o.purpose,
				LegalBasis: "consent", Source: "herald dev load", ConsentedAt: &consented})
		}
		if err := callJSON(ctx, c, "POST", apiURL+"/v1/contacts:import", keys.officer, rows, http.StatusOK, nil); err != nil {
			return nil, nil, fmt.Errorf("import load contacts: %w", err)
		}
	}
	return accounts, chats, nil
}

func callJSON(ctx context.Context, c *http.Client, method, url, key string, body any, want int, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %s %s", method, url, res.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// submitOne submits one action and returns its decision outcome. Errors
// are short, stable labels (an HTTP status or the transport's failure) so
// the report can count them.
func submitOne(ctx context.Context, c *http.Client, apiURL, key string, body map[string]any) (string, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", apiURL+"/v1/actions", bytes.NewReader(raw))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return "", errors.New("transport error")
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return "", errors.New("transport error")
	}
	if res.StatusCode != http.StatusCreated {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(data, &p)
		if p.Code != "" {
			return "", fmt.Errorf("%d %s", res.StatusCode, p.Code)
		}
		return "", fmt.Errorf("%d", res.StatusCode)
	}
	var r struct {
		Decision struct {
			Outcome string `json:"outcome"`
			Reasons []struct {
				Rule string `json:"rule"`
			} `json:"reasons"`
		} `json:"decision"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.Decision.Outcome == "" {
		return "", errors.New("201 without a decision")
	}
	// The most severe reason names why: a defer by the account's rate cap
	// and a deny because the policy failed closed under overload read
	// very differently in a load report.
	if len(r.Decision.Reasons) > 0 {
		return r.Decision.Outcome + " (" + r.Decision.Reasons[0].Rule + ")", nil
	}
	return r.Decision.Outcome, nil
}
