package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/botapi"
	"github.com/heraldhq/herald/connectors/mtproto"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/connectors/sandbox"
	"github.com/heraldhq/herald/console"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/facade"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

func newServeCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API and the delivery worker",
		Long: `Run the HTTP API and (unless --worker=false) the delivery worker.

With no configuration Herald listens on 127.0.0.1:8080, keeps an embedded SQLite database in
./herald-data/, delivers through the sandbox connector (which records instead of sending), and on
first start prints a one-time admin API key for a default organisation.
` + configHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := resolve(cmd); err != nil {
				return err
			}
			return serve(cmd.Context(), &c, cmd.OutOrStdout())
		},
	}
	serveFlags(cmd.Flags(), &c)
	return cmd
}

// openStore opens and migrates the configured database.
func openStore(ctx context.Context, c *config, log *slog.Logger) (*store.Store, error) {
	if c.DatabaseURL == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	s, err := store.Open(ctx, c.databaseURL())
	if err != nil {
		return nil, err
	}
	v, err := s.Migrate(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	log.Info("database ready", "dialect", s.Dialect(), "schema_version", v)
	return s, nil
}

// defaultGCPercent trades memory for tail latency: policy evaluation
// allocates per decision, and at Go's default (100) collections dominate
// the decision's p99. Herald's live heap is small, so 4× headroom is cheap.
// GOGC in the environment still wins.
const defaultGCPercent = 400

func serve(ctx context.Context, c *config, out interface{ Write([]byte) (int, error) }) error {
	log, err := c.logger()
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	// Tracing is off unless OTEL_* configures an exporter (docs/operations.md).
	stopTracing, tracingOn, err := telemetry.SetupTracing(ctx, version)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stopTracing(fctx) // flushes the last spans
	}()
	tr := traced{on: tracingOn}
	if tracingOn {
		log.Info("tracing enabled")
	}
	s, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer s.Close()
	// Listen before bootstrap: a port already in use must fail before the
	// one-time key is printed (and before the database is set up around a
	// key nobody will see working).
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (choose another address with --listen, e.g. --listen 127.0.0.1:8081)", c.Listen, err)
	}
	defer ln.Close()
	if err := bootstrap(ctx, s, out, ln.Addr().String()); err != nil {
		return err
	}
	bundle := policies.DefaultBundle()
	if c.PolicyDir != "" {
		if bundle, err = policies.LoadBundleDir(c.PolicyDir); err != nil {
			return err
		}
	}
	engine, err := policies.Compile(ctx, bundle, policies.EvalTimeout(c.PolicyTimeout))
	if err != nil {
		return fmt.Errorf("compile policy bundle: %w", err)
	}
	log.Info("policy bundle active", "bundle_hash", engine.Hash())
	registry := policies.NewRegistry(engine, s, policies.EvalTimeout(c.PolicyTimeout))
	registry.SetLogger(log)
	if err := registry.Refresh(ctx); err != nil {
		log.Error("policy: an active bundle could not be loaded", "err", err)
	}
	go registry.Run(ctx, policies.DefaultRefreshInterval)

	metrics := telemetry.New(func() float64 {
		qctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := s.CountJobs(qctx)
		return float64(n)
	})
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	sb, err := openSecretBackend(ctx, c, log)
	if err != nil {
		return err
	}
	defer sb.close()
	metrics.RegisterProbes(probes(s, sb.ready))
	secretStore := sb.Store
	// The ledger names people by keyed references (HMAC with the org's
	// pepper from the secret store), never by ids.
	s.SetPseudonymizer(sb.Pepper)
	conns, err := connectorSet(c, secretStore, tr)
	if err != nil {
		return err
	}
	workerID := c.WorkerID
	if workerID == "" {
		host, _ := os.Hostname()
		workerID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.SendTimeout >= c.JobLease {
		return fmt.Errorf("--send-timeout (%s) must be shorter than --job-lease (%s)", c.SendTimeout, c.JobLease)
	}
	waiters := &facade.Waiters{} // the worker wakes facade calls waiting for a delivery
	worker := delivery.New(s, conns, tr.decider(registry), delivery.Config{ID: workerID, Lease: c.JobLease, SendTimeout: c.SendTimeout,
		AccountLease: &delivery.StoreLease{Store: s, Owner: workerID, TTL: c.AccountLease}, Done: waiters.Done}, log, metrics)
	authz, err := access.NewEnforcer(ctx, s)
	if err != nil {
		return err
	}
	authz.Log = log
	pipeline := &gateway.Pipeline{Store: s, Authz: authz, Decider: registry, Metrics: metrics, Log: log,
		MaxApprovalWait: c.MaxApprovalWait}
	if c.Worker {
		pipeline.Notify = worker.Notify
	}
	srv := &gateway.Server{Policies: &gateway.Policies{Store: s, Registry: registry}, Pipeline: pipeline, Store: s, Metrics: metrics, Log: log, Secrets: secretStore,
		Inbound: gateway.Inbound{Keywords: c.OptOutKeywords, Reply: c.OptOutReply}}
	srv.Ready = sb.ready
	if srv.RateLimits, err = c.RateLimits.limits(); err != nil {
		return err
	}
	srv.Sessions = &gateway.Sessions{Secrets: secretStore, LoginBotPath: "herald/login-bot", TTL: c.SessionTTL, MaxAge: c.LoginMaxAge}
	logs := store.NewLedgerLogs(s, "", sb.Signer)
	srv.Ledger = &gateway.Ledger{Logs: logs, Keys: sb.Signer.VerifierKeys}
	srv.DPIA = dpiaGenerator(s, logs, sb.Signer.VerifierKeys, c)
	log.Info("ledger checkpoints signed", "key", sb.Signer.VerifierKeys()[0])
	rotator, err := sb.rotator(ctx, c, s, log)
	if err != nil {
		return err
	}
	// The Bot API facade (/bot<token>/<method>) shares the listener.
	facadeCalls, err := facade.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	bots := &facade.Handler{Store: s, Pipeline: pipeline, BaseURL: c.BotAPIURL, Log: log, Calls: facadeCalls,
		Tokens: botapi.SecretTokens{Store: secretStore, Invalidate: secretStore.Invalidate}, Config: facade.Config{Wait: c.FacadeWait}}
	// Facade bots' updates (getUpdates, their own webhook), after opt-out processing.
	bots.Inbound = &facade.Inbound{Store: s, Log: log}
	if c.Worker {
		bots.Waiters = waiters
	}
	srv.Inbound.Queued = bots.Inbound.Queued
	// The web console (/) is a client of the API handler, in process.
	api := srv.Handler()
	cons, err := console.New(console.Config{API: api, Store: s, Sessions: srv.Sessions, Log: log,
		Secrets: secretStore, LoginBotPath: "herald/login-bot"})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           tr.handler(console.Mount(facade.Mount(api, bots), cons)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Info("herald listening", "addr", "http://"+ln.Addr().String(), "version", version, "worker", c.Worker)

	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); authz.Watch(workerCtx, c.databaseURL()) }()
	wg.Add(1)
	go func() { defer wg.Done(); _ = bots.Inbound.Run(workerCtx) }()
	if c.Worker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = worker.Run(workerCtx)
		}()
		// Campaign fan-out (issue 13): due campaigns become actions through this pipeline.
		metrics.Registry.MustRegister(&fanout.Collector{Store: s})
		fan := &fanout.Runner{Store: s, Submit: gateway.CampaignSubmitter{Pipeline: pipeline}, ID: workerID, Log: log, Notify: worker.Notify,
			Approvals: gateway.CampaignApprovalExpirer{Pipeline: pipeline}}
		wg.Add(1)
		go func() { defer wg.Done(); fan.Run(workerCtx, fanout.DefaultPoll) }()
	}
	// Background jobs: signed checkpoints every 1,000 entries or 10 s, and
	// payload retention (previews 30 days).
	wg.Add(4)
	go func() { defer wg.Done(); pipeline.RunExpiry(workerCtx, time.Minute, log) }()
	go func() { defer wg.Done(); sb.watchSigner(workerCtx, c.Secrets.KeyRefresh, log) }()
	go func() { defer wg.Done(); _ = (&store.CheckpointJob{Logs: logs, Log: log}).Run(workerCtx) }()
	go func() {
		defer wg.Done()
		_ = (&store.RetentionJob{Store: s, Logs: logs, Log: log, Observe: func(err error) { metrics.ObserveJob("retention", err) }}).Run(workerCtx)
	}()
	if c.Secrets.Rotator && len(rotator.Rotations) > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = rotator.Run(workerCtx) }()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests and sends")
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	if e := httpSrv.Shutdown(sctx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		log.Error("http shutdown", "err", e)
	}
	// The worker finishes its current sends, records their outcomes and
	// hands unstarted jobs back to the queue.
	stopWorker()
	wg.Wait()
	log.Info("stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// connectorSet builds the connectors by name. Real connectors are wrapped
// in the rate limiter, which keeps each bot under Telegram's limits; the
// account lease makes those buckets the account's, across processes.
func connectorSet(c *config, sec *secrets.CachedStore, tr traced) (map[string]connectors.Connector, error) {
	limiter := ratelimit.New(ratelimit.Config{BotPerSecond: c.BotPerSecond})
	bot, err := botapi.New(botapi.Config{BaseURL: c.BotAPIURL, Tokens: botapi.SecretTokens{Store: sec, Invalidate: sec.Invalidate}})
	if err != nil {
		return nil, err
	}
	mt, err := mtproto.New(mtproto.Config{Credentials: mtproto.SecretStore{Secrets: sec}, Sessions: mtproto.SecretStore{Secrets: sec}})
	if err != nil {
		return nil, err
	}
	limit := func(c connectors.Connector) connectors.Connector { return ratelimit.Wrap(c, limiter) }
	unlimited := func(c connectors.Connector) connectors.Connector { return c }
	return map[string]connectors.Connector{
		herald.ConnectorSandbox: tr.connector(herald.ConnectorSandbox, &sandbox.Connector{Journal: filepath.Join(c.DataDir, "sandbox.jsonl")}, unlimited),
		herald.ConnectorBotAPI:  tr.connector(herald.ConnectorBotAPI, bot, limit),
		herald.ConnectorMTProto: tr.connector(herald.ConnectorMTProto, mt, limit),
	}, nil
}

// bootstrap creates, on an empty database, a default organisation, a
// sandbox bot account and an admin API key, and prints the key once. The
// key goes to standard output, never to the logs.
func bootstrap(ctx context.Context, s *store.Store, out interface{ Write([]byte) (int, error) }, listen string) error {
	n, err := s.CountOrgs(ctx)
	if err != nil || n > 0 {
		return err
	}
	var (
		token string
		acc   herald.Account
	)
	err = s.InTx(ctx, func(tx *store.Tx) error {
		org, err := tx.CreateOrg(ctx, "default", "UTC")
		if err != nil {
			return err
		}
		k, tok, err := tx.CreateAPIKey(ctx, org.ID, "bootstrap-admin", herald.RoleAdmin, "bootstrap", nil)
		if err != nil {
			return err
		}
		token = tok
		if _, err := tx.AppendLedger(ctx, org.ID, store.LedgerRecord{Kind: ledger.KindKeyCreated, Actor: "system",
			Refs: map[string]string{"key": k.ID}, Attrs: map[string]any{"role": k.Role, "principal": k.Principal}}); err != nil {
			return err
		}
		// The first-run key can do every step of the README's quick start
		// (accounts, contacts import, submitting, the ledger): admin plus
		// compliance_officer and operator; and it is the platform operator,
		// who creates further organisations (POST /v1/orgs).
		for _, role := range []string{k.Role, herald.RoleComplianceOfficer, herald.RoleOperator} {
			if _, err := tx.EnsureRole(ctx, org.ID, k.Principal, role, "system"); err != nil {
				return err
			}
		}
		if err := tx.AddPlatformOperator(ctx, org.ID, k.Principal, "system"); err != nil {
			return err
		}
		acc, err = tx.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "sandbox bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			return err
		}
		_, err = tx.AppendLedger(ctx, org.ID, store.LedgerRecord{Kind: ledger.KindAccountCreated, Actor: "system",
			Refs: map[string]string{"account": acc.ID}, Attrs: map[string]any{"kind": acc.Kind, "connector": acc.Connector}})
		return err
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	fmt.Fprintf(out, `
Herald is set up. This key (platform operator; admin, compliance_officer and operator of the
default organisation) is shown once and never again; store it now:

  %s

Sandbox account: %s
Console: http://%s/ (sign in with the key above)
Try:
  curl -s -X POST http://%s/v1/actions \
    -H "Authorization: Bearer %s" -H "Content-Type: application/json" \
    -d '{"kind":"send_message","account":"%s","target":"-1001234567890","purpose":"transactional","text":"Hello from Herald"}'

`, token, acc.ID, listen, listen, token, acc.ID)
	return nil
}
