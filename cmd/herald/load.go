package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/secrets/local"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// loadOptions configure one load run.
type loadOptions struct {
	bots        int
	rate        float64
	duration    time.Duration
	faults      float64
	workers     int
	drops       float64
	databaseURL string
	policy      string
	cpuProfile  string
}

func newLoadCmd() *cobra.Command {
	var (
		o          loadOptions
		so         submitLoadOptions
		submitOnly bool
	)
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Measure delivery, or submits alone, under load (loopback only by default)",
		Long: `Delivery mode (the default): start a fake Telegram Bot API, a Herald gateway and delivery
workers in this process, submit messages over HTTP at a fixed rate per bot for a while, and report
delivered throughput per bot, 429s received, final failures and submit-to-delivered latency. By
default decisions use an allow-all policy, so the run measures delivery; --policy default uses the
built-in bundle (whose per-bot cap of 25 msg/s defers the rest).

Submit-only mode (--submit-only): N closed-loop clients submit transactional messages to distinct
consenting contacts for --duration, with no delivery worker, and the run reports committed
submits/s, latency p50/p95/p99, the decision outcome mix, errors and peak RSS. It runs against a
server started with "herald serve --worker=false" (--url, --key; --server-pid to read the server's
peak RSS), or in this process on a fresh SQLite database or the EMPTY PostgreSQL database named by
--database-url, with the built-in bundle (--policy default) or none (--policy allow). Accounts and
contacts are created through the API first. --cpuprofile profiles this process during the measured
window, after setup (in-process runs profile the server). --seed-actions N first bulk-inserts N delivered actions of another account of
the load organisation in SQL, so two runs (1,000 and 1,000,000) show whether submit latency stays
flat as the actions table grows.

  herald dev load --submit-only --clients 32 --duration 20s
  herald dev load --submit-only --clients 32 --url http://127.0.0.1:8080 --key hk_operator… \
      --admin-key hk_admin… --officer-key hk_officer… --server-pid 1234`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if submitOnly {
				so.duration, so.databaseURL = o.duration, o.databaseURL
				so.policy = o.policy
				if so.policy == "" {
					so.policy = "default"
				}
				if err := so.validate(); err != nil {
					return err
				}
			} else if o.policy == "" {
				o.policy = "allow"
			}
			if submitOnly {
				// The submit-only run profiles its measured window only,
				// not the setup (accounts, contact import).
				so.cpuProfile = o.cpuProfile
			} else if o.cpuProfile != "" {
				f, err := os.Create(o.cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			if submitOnly {
				rep, err := runSubmitLoad(cmd.Context(), so)
				if err != nil {
					return err
				}
				rep.print(cmd.OutOrStdout())
				return nil
			}
			rep, err := runLoad(cmd.Context(), o)
			if err != nil {
				return err
			}
			rep.print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.bots, "bots", 1, "bot accounts sending in parallel")
	f.Float64Var(&o.rate, "rate", 29, "messages per second submitted per bot")
	f.DurationVar(&o.duration, "duration", 60*time.Second, "how long to submit")
	f.Float64Var(&o.faults, "faults", 0, "fraction of Bot API calls failing transiently (500 without execution): retried")
	f.Float64Var(&o.drops, "drops", 0, "fraction of calls executed whose connection then drops: outcome unknown, never resent")
	f.IntVar(&o.workers, "workers", 2, "delivery workers (each with its own account leases)")
	f.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of an EMPTY database (default: SQLite in a temporary directory)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	f.StringVar(&o.policy, "policy", "", `"allow" (allow everything; the delivery mode's default) or "default" (the built-in bundle; the submit-only mode's default)`)
	f.BoolVar(&submitOnly, "submit-only", false, "measure submits alone: closed-loop clients, no delivery worker")
	f.IntVar(&so.clients, "clients", 8, "submit-only: concurrent clients, each waiting for its answer before the next submit")
	f.StringVar(&so.url, "url", "", "submit-only: base URL of a running herald serve (default: a gateway in this process)")
	f.StringVar(&so.keys.submit, "key", "", "submit-only: an operator's API key for --url (submits)")
	f.StringVar(&so.keys.admin, "admin-key", "", "submit-only: an admin's API key for --url (creates the load accounts; default --key)")
	f.StringVar(&so.keys.officer, "officer-key", "", "submit-only: a compliance officer's API key for --url (imports the load contacts; default --key)")
	f.IntVar(&so.serverPID, "server-pid", 0, "submit-only: process id of the server at --url, to report its peak RSS")
	f.IntVar(&so.accounts, "accounts", 1, "submit-only: sandbox bot accounts the submits rotate over")
	f.IntVar(&so.recipients, "recipients", 10000, "submit-only: distinct consenting contacts the submits rotate over")
	f.StringVar(&so.purpose, "purpose", "transactional", "submit-only: purpose of every submit")
	f.IntVar(&so.seedActions, "seed-actions", 0, "submit-only, in process: bulk-insert this many delivered actions (another account, same organisation) before the run, to compare submit latency against a large actions table")
	return cmd
}

type allowAll struct{}

func (allowAll) Decide(context.Context, policies.Input) (policies.Decision, error) {
	return policies.Decision{Outcome: policies.OutcomeAllow, Reasons: []policies.Reason{}, Suggestions: []policies.Suggestion{}}, nil
}

type loadReport struct {
	opts                       loadOptions
	submitted, submitErrors    int64
	delivered, failed, unknown int
	pending                    int
	perBot                     []float64
	tooMany, injected          int
	p50, p95, p99              time.Duration
	elapsed                    time.Duration
}

func (r loadReport) print(w io.Writer) {
	total := 0.0
	for _, v := range r.perBot {
		total += v
	}
	sort.Float64s(r.perBot)
	fmt.Fprintf(w, "bots %d, submit rate %.1f msg/s per bot, %s, injected 5xx %.1f%%, drops %.1f%%, workers %d\n",
		r.opts.bots, r.opts.rate, r.opts.duration, r.opts.faults*100, r.opts.drops*100, r.opts.workers)
	fmt.Fprintf(w, "submitted %d (errors %d); delivered %d, failed %d, unknown %d, still queued %d\n",
		r.submitted, r.submitErrors, r.delivered, r.failed, r.unknown, r.pending)
	if len(r.perBot) > 0 {
		fmt.Fprintf(w, "delivered per bot: min %.2f msg/s, max %.2f msg/s; total %.2f msg/s\n", r.perBot[0], r.perBot[len(r.perBot)-1], total)
	}
	fmt.Fprintf(w, "429 answers from Telegram: %d; injected transient faults: %d\n", r.tooMany, r.injected)
	finalFail := 0.0
	if r.submitted > 0 {
		finalFail = float64(r.failed+r.unknown) / float64(r.submitted) * 100
	}
	fmt.Fprintf(w, "final failures (failed + unknown): %.3f%%\n", finalFail)
	fmt.Fprintf(w, "submit → delivered latency: p50 %s, p95 %s, p99 %s\n", r.p50.Round(time.Millisecond), r.p95.Round(time.Millisecond), r.p99.Round(time.Millisecond))
}

func runLoad(ctx context.Context, o loadOptions) (loadReport, error) {
	rep := loadReport{opts: o}
	tmp, err := os.MkdirTemp("", "herald-load-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	dbURL := o.databaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(tmp, "herald.db")
	}
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		return rep, err
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		return rep, err
	}
	if n, _ := s.CountOrgs(ctx); n > 0 {
		return rep, fmt.Errorf("the load database must be empty (it has %d organisations)", n)
	}
	sec, err := local.Open(tmp)
	if err != nil {
		return rep, err
	}
	cached := secrets.Cached(sec, time.Minute)
	fake := telegramtest.NewUnstarted(telegramtest.Options{AcceptAnyToken: true, ServerErrorRate: o.faults, DropAfterRate: o.drops, Seed: 7})
	fakeURL, stopFake, err := serveLoopback(fake.Handler())
	if err != nil {
		return rep, err
	}
	defer stopFake()

	org, err := s.CreateOrg(ctx, "load", "UTC")
	if err != nil {
		return rep, err
	}
	_, key, err := s.CreateAPIKey(ctx, org.ID, "load", herald.RoleAdmin, "load", nil)
	if err != nil {
		return rep, err
	}
	accounts := make([]herald.Account, o.bots)
	for i := range accounts {
		id := store.NewID()
		path := "herald/orgs/" + org.ID + "/accounts/" + id
		if _, err := sec.Put(ctx, path, map[string]string{"token": fmt.Sprintf("%d:load-token-%030d", 1000+i, i)}, secrets.NoCAS); err != nil {
			return rep, err
		}
		if accounts[i], err = s.CreateAccount(ctx, herald.Account{ID: id, Org: org.ID, Name: fmt.Sprintf("bot %d", i), Kind: herald.AccountBot,
			Connector: herald.ConnectorBotAPI, SecretRef: path}); err != nil {
			return rep, err
		}
	}

	var decider interface {
		Decide(context.Context, policies.Input) (policies.Decision, error)
	} = allowAll{}
	if o.policy == "default" {
		if decider, err = policies.Compile(ctx, policies.DefaultBundle()); err != nil {
			return rep, err
		}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	m := telemetry.New(nil)
	bot, err := botapi.New(botapi.Config{BaseURL: fakeURL, Tokens: botapi.SecretTokens{Store: cached, Invalidate: cached.Invalidate}})
	if err != nil {
		return rep, err
	}
	workerCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	var wg sync.WaitGroup
	workers := make([]*delivery.Worker, o.workers)
	for i := range workers {
		id := fmt.Sprintf("load-worker-%d", i)
		// Each worker process has its own limiter; the account lease makes
		// one worker the only sender per bot, so its buckets are the bot's.
		conns := map[string]connectors.Connector{herald.ConnectorBotAPI: ratelimit.Wrap(bot, ratelimit.New(ratelimit.Config{}))}
		workers[i] = delivery.New(s, conns, decider, delivery.Config{ID: id, Poll: 50 * time.Millisecond, Batch: 128,
			BaseBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second,
			AccountLease: &delivery.StoreLease{Store: s, Owner: id}}, log, m)
		wg.Add(1)
		go func(w *delivery.Worker) { defer wg.Done(); _ = w.Run(workerCtx) }(workers[i])
	}
	pl := &gateway.Pipeline{Store: s, Authz: access.RoleMatrix{}, Decider: decider, Metrics: m, Log: log,
		Notify: func() {
			for _, w := range workers {
				w.Notify()
			}
		}}
	apiURL, stopAPI, err := serveLoopback((&gateway.Server{Pipeline: pl, Store: s, Metrics: m, Log: log}).Handler())
	if err != nil {
		return rep, err
	}
	defer stopAPI()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	start := time.Now()
	var subWG sync.WaitGroup
	for i, acc := range accounts {
		subWG.Add(1)
		go func(i int, acc herald.Account) {
			defer subWG.Done()
			tick := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
			defer tick.Stop()
			deadline := time.After(o.duration)
			var inflight sync.WaitGroup
			for n := 0; ; n++ {
				select {
				case <-ctx.Done():
					inflight.Wait()
					return
				case <-deadline:
					inflight.Wait()
					return
				case <-tick.C:
				}
				// Private chats, rotating over enough people that no chat
				// sees more than its 1 msg/s.
				chat := fmt.Sprintf("%d", 100000+(i*10000)+n%5000)
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					if submit(ctx, client, apiURL, key, acc.ID, chat) != nil {
						atomic.AddInt64(&rep.submitErrors, 1)
						return
					}
					atomic.AddInt64(&rep.submitted, 1)
				}()
			}
		}(i, acc)
	}
	subWG.Wait()
	// Let the queue drain.
	drainUntil := time.Now().Add(o.duration/2 + 30*time.Second)
	for time.Now().Before(drainUntil) {
		if n, err := s.CountJobs(ctx); err == nil && n == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep.elapsed = time.Since(start)
	stopWorkers()
	wg.Wait()

	stats, err := s.DeliveryStats(ctx, org.ID)
	if err != nil {
		return rep, err
	}
	rep.delivered, rep.failed, rep.unknown, rep.pending = stats.Delivered, stats.Failed, stats.Unknown, stats.Pending
	lat := stats.Latencies
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rep.p50, rep.p95, rep.p99 = pct(0.50), pct(0.95), pct(0.99)
	for _, acc := range accounts {
		rep.perBot = append(rep.perBot, float64(stats.PerAccount[acc.ID])/o.duration.Seconds())
	}
	fs := fake.Stats()
	rep.tooMany, rep.injected = fs.TooManyRequests, fs.ServerErrors+fs.DroppedAfter
	return rep, nil
}

func submit(ctx context.Context, c *http.Client, apiURL, key, account, chat string) error {
	body, _ := json.Marshal(map[string]any{"kind": "send_message", "account": account, "target": chat,
		"purpose": "transactional", "text": "Your order has shipped"})
	req, err := http.NewRequestWithContext(ctx, "POST", apiURL+"/v1/actions", bytes.NewReader(body))
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
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("submit: %s", res.Status)
	}
	return nil
}

// serveLoopback serves h on a random 127.0.0.1 port.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}
