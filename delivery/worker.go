// Package delivery drives scheduled actions out through their connectors.
//
// The worker's contract, which keeps "never double-message a person":
//   - An action MUST be recorded as sending (and that commit MUST succeed)
//     before its connector is called: the write-ahead audit.
//   - A job whose action is already in sending when a worker claims it was
//     left by a worker that died mid-send: it is marked unknown and MUST NOT
//     be resent without an operator.
//   - The policy is decided again right before sending, under the same locks
//     as at submit time: consent can be withdrawn and quiet hours begin in
//     between.
package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/policyinput"
	"github.com/heraldhq/herald/render"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// Decider evaluates policy.
type Decider interface {
	Decide(ctx context.Context, in policies.Input) (policies.Decision, error)
}

// Defaults, each with the reason for its value.
const (
	// DefaultLease bounds how long a claimed job is invisible to other
	// workers; it must exceed the longest send (SendTimeout) by a margin so
	// a live worker never loses its job.
	DefaultLease = 2 * time.Minute
	// DefaultSendTimeout is the longest a single connector call may take.
	DefaultSendTimeout = 30 * time.Second
	// DefaultPoll is how often the queue is checked when nothing wakes the
	// worker (a replica's submits wake only its own worker).
	DefaultPoll = time.Second
	// DefaultBatch jobs are claimed at once.
	DefaultBatch = 32
	// DefaultMaxAttempts retryable failures turn into failed: with the
	// backoff below that is about an hour of trying.
	DefaultMaxAttempts = 12
	// DefaultPolicyRetry is how soon a send whose policy evaluation was
	// unavailable (deadline under load) is tried again.
	DefaultPolicyRetry = 5 * time.Second
	// counterPruneEvery is how often a worker deletes expired send
	// counter buckets (each replica does; the delete is idempotent).
	counterPruneEvery = time.Hour
	// DefaultBaseBackoff and DefaultMaxBackoff shape exponential backoff
	// (with jitter) when a connector gives no retry_after.
	DefaultBaseBackoff = 2 * time.Second
	DefaultMaxBackoff  = 10 * time.Minute
)

// Config tunes a worker; zero values take the defaults.
type Config struct {
	ID          string
	Lease       time.Duration
	SendTimeout time.Duration
	Poll        time.Duration
	Batch       int
	MaxAttempts int
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// PolicyRetry is the delay before retrying a send whose policy could
	// not be evaluated in time.
	PolicyRetry time.Duration
	// AccountLease, when set, makes this worker send for an account only while it
	// holds the account's lease, so rate limits hold across processes
	// (see connectors/ratelimit and docs/connectors.md).
	AccountLease ratelimit.Lease
	// Done, when set, is called with the action id after each job was
	// processed (delivered, failed, rescheduled or denied at send time;
	// the outcome is committed). It must not block: the Bot API facade
	// wakes the call waiting for that action with it (facade.Waiters).
	Done func(actionID string)
}

func (c *Config) defaults() {
	if c.ID == "" {
		c.ID = "worker-" + store.NewID()
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.Poll <= 0 {
		c.Poll = DefaultPoll
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.PolicyRetry <= 0 {
		c.PolicyRetry = DefaultPolicyRetry
	}
}

// Worker claims due jobs and delivers them.
type Worker struct {
	store      *store.Store
	connectors map[string]connectors.Connector
	decider    Decider
	cfg        Config
	log        *slog.Logger
	metrics    *telemetry.Metrics
	wake       chan struct{}

	holdsMu sync.Mutex
	holds   map[string]ratelimit.Hold // account → held send lease
}

// New returns a worker. connectors maps an account's connector name
// ("sandbox", "botapi", "mtproto") to its implementation.
func New(s *store.Store, conns map[string]connectors.Connector, d Decider, cfg Config, log *slog.Logger, m *telemetry.Metrics) *Worker {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{store: s, connectors: conns, decider: d, cfg: cfg, log: log.With("worker", cfg.ID), metrics: m,
		wake: make(chan struct{}, 1), holds: map[string]ratelimit.Hold{}}
}

// holdAccount makes sure this worker holds account's send lease; false
// means another process sends for it now.
func (w *Worker) holdAccount(ctx context.Context, account string) (bool, error) {
	if w.cfg.AccountLease == nil {
		return true, nil
	}
	w.holdsMu.Lock()
	defer w.holdsMu.Unlock()
	if h, ok := w.holds[account]; ok {
		select {
		case <-h.Lost():
			delete(w.holds, account)
		default:
			return true, nil
		}
	}
	h, ok, err := w.cfg.AccountLease.TryAcquire(ctx, account)
	if err != nil || !ok {
		return false, err
	}
	w.holds[account] = h
	return true, nil
}

// releaseHolds gives every held account lease back (shutdown).
func (w *Worker) releaseHolds(ctx context.Context) {
	w.holdsMu.Lock()
	defer w.holdsMu.Unlock()
	for account, h := range w.holds {
		if err := h.Release(ctx); err != nil {
			w.log.Error("release account lease", "account", account, "err", err)
		}
		delete(w.holds, account)
	}
}

// ID returns the worker's lease owner name.
func (w *Worker) ID() string { return w.cfg.ID }

// Notify wakes the worker (new work was committed). It never blocks.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then finishes the sends in flight and hands
// unstarted jobs back to the queue. Up to Config.Batch jobs are in flight
// at once; a slot freed by one send is refilled at once, so a job waiting on
// its chat's rate limit never holds back jobs of other chats.
func (w *Worker) Run(ctx context.Context) error {
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		defer w.releaseHolds(context.WithoutCancel(ctx))
		n, err := w.store.ReleaseJobs(context.WithoutCancel(ctx), w.cfg.ID)
		if err != nil {
			w.log.Error("hand back queued jobs", "err", err)
		} else if n > 0 {
			w.log.Info("handed back queued jobs", "jobs", n)
		}
	}()
	slots := make(chan struct{}, w.cfg.Batch)
	freed := make(chan struct{}, 1)
	var pruned time.Time
	for {
		if now := w.store.Now(); now.Sub(pruned) >= counterPruneEvery {
			// Counter buckets no window reads any more are dead weight.
			if n, err := w.store.PruneSendCounters(ctx, now); err != nil && ctx.Err() == nil {
				w.log.Error("prune send counters", "err", err)
			} else if n > 0 {
				w.log.Debug("pruned send counters", "rows", n)
			}
			if n, err := w.store.PruneFacadeCalls(ctx, now); err != nil && ctx.Err() == nil {
				w.log.Error("prune facade calls", "err", err)
			} else if n > 0 {
				w.log.Debug("pruned facade calls", "rows", n)
			}
			pruned = now
		}
		free := cap(slots) - len(slots)
		n := 0
		if free > 0 {
			jobs, err := w.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				w.log.Error("claim jobs", "err", err)
			}
			for _, j := range jobs {
				slots <- struct{}{}
				inflight.Add(1)
				go func(j store.Job) {
					defer func() {
						<-slots
						inflight.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					w.processLogged(ctx, j)
				}(j)
			}
			n = len(jobs)
		}
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 && n == free {
			continue // there may be more due work
		}
		t := time.NewTimer(w.cfg.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-w.wake:
		case <-freed:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce claims one batch of due jobs and processes them, returning how
// many it claimed once all are done (tests and tools drive the worker
// with it; Run keeps a continuous pipeline instead).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	jobs, err := w.claim(ctx, w.cfg.Batch)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func(j store.Job) {
			defer wg.Done()
			w.processLogged(ctx, j)
		}(j)
	}
	wg.Wait()
	return len(jobs), nil
}

// claim leases up to limit due jobs and keeps only those of accounts this
// worker holds (or can take) the send lease of; the others go back.
func (w *Worker) claim(ctx context.Context, limit int) ([]store.Job, error) {
	jobs, err := w.store.ClaimJobs(ctx, w.cfg.ID, w.cfg.Lease, limit)
	if err != nil {
		return nil, err
	}
	kept := jobs[:0]
	for _, j := range jobs {
		held, err := w.holdAccount(ctx, j.Account)
		if err == nil && held {
			kept = append(kept, j)
			continue
		}
		if err != nil {
			w.log.Error("account lease", "account", j.Account, "err", err)
		}
		// Another process sends for this account: hand the job back.
		if err := w.store.ReleaseJob(context.WithoutCancel(ctx), j.ActionID, w.cfg.ID); err != nil {
			w.log.Error("hand back job", "action", j.ActionID, "err", err)
		}
	}
	return kept, nil
}

func (w *Worker) processLogged(ctx context.Context, j store.Job) {
	ctx, span := telemetry.StartJobSpan(ctx, j.TraceParent, j.ActionID, j.Attempts, j.RunAt)
	err := w.process(ctx, j)
	telemetry.EndSpan(span, err)
	if w.cfg.Done != nil {
		w.cfg.Done(j.ActionID)
	}
	if err != nil {
		w.log.Error("deliver action", "action", j.ActionID, "err", err)
		// Leave the lease to expire: an error that is not a database fault
		// (those were retried in process) must not spin; the next claim
		// re-examines the action's status.
	}
}

// Retrying a transaction that failed on a database fault (a restart, a
// dropped connection). The job stays leased to this worker meanwhile, so
// no other worker takes it; retries stop before the lease ends.
const (
	faultRetryFirst = 100 * time.Millisecond
	// faultRetryMax bounds the pause between tries, so a delivery resumes
	// within about a second of the database answering again.
	faultRetryMax = time.Second
	// leaseMargin is kept between the last retry and the lease's end.
	leaseMargin = 10 * time.Second
)

// retryFaults runs fn until it succeeds, fails with an error that is not a
// database fault, stop closes, or deadline passes. fn is one whole
// transaction: a failed one changed nothing, so running it again is safe.
func (w *Worker) retryFaults(stop <-chan struct{}, deadline time.Time, action, step string, fn func() error) error {
	pause := faultRetryFirst
	for tries := 1; ; tries++ {
		err := fn()
		if err == nil || !store.IsUnavailable(err) {
			return err
		}
		if time.Now().Add(pause).After(deadline) {
			return err
		}
		if tries == 1 {
			w.log.Warn("database unavailable; retrying", "action", action, "step", step, "err", err)
		}
		t := time.NewTimer(pause + rand.N(pause/2))
		select {
		case <-stop:
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, faultRetryMax)
	}
}

// prepared is what the first transaction hands to the send.
type prepared struct {
	action   herald.Action
	account  herald.Account
	decision policies.Decision
	send     bool
}

func (w *Worker) process(ctx context.Context, j store.Job) error {
	// Database faults are retried here, within the job's lease, instead of
	// waiting for the lease to expire: before the send nothing was
	// committed (the action is still scheduled), and after it the outcome
	// is recorded by retrying the same transaction. Neither retry can send
	// twice: the send happens once, between the two.
	deadline := time.Now().Add(w.cfg.Lease - leaseMargin)
	var p prepared
	err := w.retryFaults(ctx.Done(), deadline, j.ActionID, "prepare", func() error {
		var err error
		p, err = w.prepare(ctx, j)
		return err
	})
	if err != nil || !p.send {
		return err
	}
	conn, ok := w.connectors[p.account.Connector]
	var (
		receipt connectors.Receipt
		sendErr error
	)
	if !ok {
		sendErr = &connectors.RetryableError{Scope: "connector", Err: fmt.Errorf("connector %q is not configured on this worker", p.account.Connector)}
	} else {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.SendTimeout)
		receipt, sendErr = conn.Send(sctx, deliveryOf(p.action, p.account))
		cancel()
	}
	class := connectors.Classify(sendErr)
	w.metrics.ObserveDelivery(p.account.ID, p.account.Connector, class.String(), sendErr)
	// The outcome is recorded even when shutdown has begun: a send that
	// happened must never be left looking unsent. If the database stays
	// down past shutdown or the lease, the action stays sending and the
	// next claim marks it unknown: never resent.
	rctx, rspan := telemetry.StartSpan(ctx, "delivery.record", attribute.String("herald.delivery.class", class.String()))
	err = w.retryFaults(ctx.Done(), deadline, j.ActionID, "record", func() error {
		return w.record(context.WithoutCancel(rctx), j, p, receipt, sendErr, class)
	})
	telemetry.EndSpan(rspan, err)
	return err
}

func deliveryOf(a herald.Action, acc herald.Account) connectors.Delivery {
	return connectors.Delivery{
		ActionID: a.ID, Attempt: a.Attempts, Kind: a.Kind, ChatID: a.Target,
		Account: connectors.Account{ID: acc.ID, Org: acc.Org, Kind: acc.Kind, Connector: acc.Connector,
			SecretRef: acc.SecretRef, PaidBroadcast: acc.PaidBroadcast},
		Text: a.Content.Text, ParseMode: a.Content.ParseMode, PhotoURL: a.Content.PhotoURL,
		PhotoFileID: a.Content.PhotoFileID, Caption: a.Content.Caption, MessageID: a.Content.MessageID,
		DisableNotification: a.Content.DisableNotification,
	}
}

// prepare re-checks the action and policy and commits the move to sending.
func (w *Worker) prepare(ctx context.Context, j store.Job) (prepared, error) {
	var p prepared
	err := w.store.InTx(ctx, func(tx *store.Tx) error {
		p = prepared{}
		a, err := tx.GetAction(ctx, j.Org, j.ActionID)
		if err != nil {
			return err
		}
		switch a.Status {
		case herald.StatusSending:
			// A worker died between committing "sending" and recording the
			// outcome. The message may have gone out: never resend.
			_, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusUnknown, Actor: "system",
				Detail: "worker_lost", ErrorCode: ptr("worker_lost"),
				ErrorMessage: ptr("the worker delivering this action stopped before recording the outcome; check the chat before resending")})
			if err == nil {
				w.count(herald.StatusUnknown)
				err = tx.DeleteJob(ctx, a.ID)
			}
			return err
		case herald.StatusScheduled:
		default:
			return tx.DeleteJob(ctx, a.ID) // cancelled, expired…: nothing to send
		}
		recipient := a.Recipient
		if recipient == "" {
			recipient = policyinput.RecipientKey(a.Target)
		}
		if err := tx.Lock(ctx, policyinput.LockKeys(a.Org, a.Account, recipient)...); err != nil {
			return err
		}
		rendered, err := render.Render(a.Kind, a.Content)
		if err != nil {
			return fmt.Errorf("re-render action %s: %w", a.ID, err)
		}
		subj, err := policyinput.SubjectOf(ctx, tx, a, rendered.Stats)
		if err != nil {
			return err
		}
		now := w.store.Now()
		in, err := policyinput.Gather(ctx, tx, subj, now, policyinput.StageSend)
		if err != nil {
			return err
		}
		d, derr := w.decider.Decide(ctx, in)
		if derr != nil {
			if w.metrics != nil {
				w.metrics.PolicyErrors.Inc()
			}
			if policyinput.Unavailable(derr) {
				// Load, not a verdict: try again in seconds, decide nothing.
				w.log.Warn("policy evaluation unavailable; send retried", "action", a.ID, "err", derr)
				return tx.RescheduleJob(ctx, a.ID, now.Add(w.cfg.PolicyRetry), "policy_unavailable", false)
			}
			w.log.Error("policy evaluation failed; denying fail-closed", "action", a.ID, "err", derr)
		}
		w.metrics.ObserveDecision(policyinput.StageSend, d)
		if err := tx.RecordDecision(ctx, a.Org, a.ID, policyinput.StageSend, in, d); err != nil {
			return err
		}
		dj, _ := json.Marshal(d)
		attrs := DecisionAttrs(d)
		if d.Outcome == policies.OutcomeDeny {
			// A person overrode the submit-time denial: honour it for
			// exactly the rules they overrode, never for new ones.
			o, err := tx.OverrideOf(ctx, a.Org, a.ID)
			if err != nil {
				return err
			}
			if o != nil && coveredByOverride(d, o.Rules) {
				attrs["override_by"] = o.Principal
				d.Outcome = policies.OutcomeAllow
			}
		}
		switch d.Outcome {
		case policies.OutcomeDeny:
			_, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusDenied, Actor: "policy",
				Detail: "denied at send by " + ruleList(d), Decision: dj, Attrs: attrs, ErrorCode: ptr("denied_at_send")})
			if err == nil {
				w.count(herald.StatusDenied)
				err = tx.DeleteJob(ctx, a.ID)
			}
			return err
		case policies.OutcomeDefer:
			if d.DeferUntil != nil && d.DeferUntil.After(now) {
				// A deferral is a transition like any other: the action's
				// decision, send_at and events say what the ledger says.
				until := d.DeferUntil.UTC().Truncate(time.Microsecond)
				attrs["defer_until"] = until.Format(time.RFC3339Nano)
				if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: "policy",
					Detail: "deferred until " + until.Format(time.RFC3339Nano) + " by " + ruleList(d),
					SendAt: &until, Decision: dj, Attrs: attrs, LedgerKind: "action.deferred"}); err != nil {
					return err
				}
				return tx.RescheduleJob(ctx, a.ID, until, "deferred by policy", false)
			}
		}
		// allow (and approve: a scheduled action already passed approval)
		a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusSending, Actor: "system",
			CountAttempt: true, Attrs: attrs})
		if err != nil {
			return err
		}
		p = prepared{action: a, account: subj.Account, decision: d, send: true}
		return nil
	})
	return p, err
}

// record commits the outcome of a send.
func (w *Worker) record(ctx context.Context, j store.Job, p prepared, receipt connectors.Receipt, sendErr error, class connectors.Class) error {
	a := p.action
	log := w.log.With("action", a.ID, "connector", p.account.Connector, "attempt", a.Attempts)
	// Every attempt's classification goes into the ledger with its outcome.
	outcome := map[string]any{"class": class.String(), "attempt": a.Attempts, "connector": p.account.Connector}
	var re *connectors.RetryableError
	if errors.As(sendErr, &re) {
		outcome["retry_after_ms"] = re.After.Milliseconds()
		if re.Scope != "" {
			outcome["scope"] = re.Scope
		}
	}
	return w.store.InTx(ctx, func(tx *store.Tx) error {
		switch class {
		case connectors.ClassNone:
			rj, _ := json.Marshal(receipt)
			attrs := map[string]any{"message_id": receipt.MessageID}
			maps.Copy(attrs, outcome)
			if receipt.MigratedTo != "" {
				// The group became a supergroup; the connector followed
				// migrate_to_chat_id once. Later sends should use the new id.
				attrs["migrated_to"] = receipt.MigratedTo
				log.Warn("chat migrated to a supergroup; update the target", "migrated_to", receipt.MigratedTo)
			}
			if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusDelivered, Actor: "system",
				Receipt: rj, Attrs: attrs}); err != nil {
				return err
			}
			w.count(herald.StatusDelivered)
			if w.metrics != nil {
				w.metrics.DeliveryLatency.Observe(time.Since(a.SendAt).Seconds())
			}
			log.Info("delivered")
			return tx.DeleteJob(ctx, a.ID)
		case connectors.ClassUnknown:
			log.Warn("delivery outcome unknown", "err", sendErr)
			if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusUnknown, Actor: "system",
				Detail: "outcome_unknown", ErrorCode: ptr("outcome_unknown"), ErrorMessage: ptr(errText(sendErr)), Attrs: outcome}); err != nil {
				return err
			}
			w.count(herald.StatusUnknown)
			return tx.DeleteJob(ctx, a.ID)
		case connectors.ClassPermanent:
			var pe *connectors.PermanentError
			code := "permanent"
			if errors.As(sendErr, &pe) {
				code = pe.Code
			}
			log.Warn("delivery failed permanently", "code", code)
			if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusFailed, Actor: "system",
				Detail: code, ErrorCode: &code, ErrorMessage: ptr(errText(sendErr)), Attrs: outcome}); err != nil {
				return err
			}
			w.count(herald.StatusFailed)
			if pe != nil && pe.Suppress && a.ContactID != "" {
				// The person blocked the account (or is gone): suppress them,
				// as well-run senders do, and record why.
				if _, err := tx.OptOut(ctx, a.Org, a.ContactID, "telegram.blocked"); err != nil {
					return err
				}
				if _, err := tx.AppendLedger(ctx, a.Org, store.LedgerRecord{Kind: ledger.KindContactOptedOut, Actor: "system",
					Refs: map[string]string{"contact": a.ContactID, "account": a.Account}, Attrs: map[string]any{"source": "telegram.blocked"}}); err != nil {
					return err
				}
			}
			return tx.DeleteJob(ctx, a.ID)
		case connectors.ClassAccountStop:
			var se *connectors.AccountStopError
			errors.As(sendErr, &se)
			log.Error("account stopped by Telegram", "code", se.Code)
			frozen := herald.AccountFrozen
			patch := store.AccountPatch{Status: &frozen, SetFrozenUntil: true}
			if se.Freeze > 0 {
				until := w.store.Now().Add(se.Freeze)
				patch.FrozenUntil = &until
			}
			if _, err := tx.UpdateAccount(ctx, a.Org, a.Account, patch); err != nil {
				return err
			}
			if _, err := tx.AppendLedger(ctx, a.Org, store.LedgerRecord{Kind: ledger.KindAccountFrozen, Actor: "system",
				Refs: map[string]string{"account": a.Account, "action": a.ID}, Attrs: map[string]any{"code": se.Code, "freeze_seconds": int(se.Freeze.Seconds())}}); err != nil {
				return err
			}
			if se.Code == store.EventPeerFlood {
				if err := tx.CountAccountEvent(ctx, a.Org, a.Account, store.EventPeerFlood, w.store.Now()); err != nil {
					return err
				}
			}
			// The action waits with its account's queue; it was not sent.
			return w.retry(ctx, tx, a, w.store.Now(), "account_stop:"+se.Code, outcome)
		default: // retryable
			if re != nil && re.After > 0 {
				// Telegram told the account to slow down: risk counts it.
				ev := store.EventTooManyRequests
				if p.account.Connector == herald.ConnectorMTProto {
					ev = store.EventFloodWait
				}
				if err := tx.CountAccountEvent(ctx, a.Org, a.Account, ev, w.store.Now()); err != nil {
					return err
				}
			}
			after := connectors.RetryAfter(sendErr)
			if after <= 0 {
				after = w.backoff(a.Attempts)
			}
			if a.Attempts >= w.cfg.MaxAttempts {
				code := "retries_exhausted"
				if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusFailed, Actor: "system",
					Detail: code, ErrorCode: &code, ErrorMessage: ptr(errText(sendErr)), Attrs: outcome}); err != nil {
					return err
				}
				w.count(herald.StatusFailed)
				return tx.DeleteJob(ctx, a.ID)
			}
			log.Info("delivery will be retried", "after", after.String())
			return w.retry(ctx, tx, a, w.store.Now().Add(after), "retry", outcome)
		}
	})
}

func (w *Worker) retry(ctx context.Context, tx *store.Tx, a herald.Action, at time.Time, detail string, attrs map[string]any) error {
	code := "retry"
	if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: "system",
		Detail: detail, SendAt: &at, ErrorCode: &code, Attrs: attrs}); err != nil {
		return err
	}
	return tx.RescheduleJob(ctx, a.ID, at, detail, true)
}

// backoff is exponential with full jitter, capped.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.BaseBackoff << min(attempt, 20)
	if d <= 0 || d > w.cfg.MaxBackoff {
		d = w.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func (w *Worker) count(s herald.Status) {
	if w.metrics != nil {
		w.metrics.ActionsFinal.WithLabelValues(string(s)).Inc()
	}
}

// coveredByOverride reports whether every deny reason of d is overridable
// and among the overridden rules.
func coveredByOverride(d policies.Decision, rules []string) bool {
	n := 0
	for _, r := range d.Reasons {
		if r.Severity != "deny" {
			continue
		}
		n++
		if !r.Overridable || !slices.Contains(rules, r.Rule) {
			return false
		}
	}
	return n > 0
}

// DecisionAttrs are the ledger attributes of a decision: outcome, rule ids,
// bundle and input hashes — enough to replay it, nothing personal.
func DecisionAttrs(d policies.Decision) map[string]any {
	rules := make([]any, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		rules = append(rules, r.Rule)
	}
	attrs := map[string]any{"outcome": d.Outcome, "rules": rules, "bundle_hash": d.BundleHash,
		"input_hash": d.InputHash, "risk": d.Risk.Score}
	return attrs
}

func ptr[T any](v T) *T { return &v }

// ruleList is the comma-separated rule ids of d's reasons, for event details.
func ruleList(d policies.Decision) string {
	ids := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		ids = append(ids, r.Rule)
	}
	if len(ids) == 0 {
		return "policy"
	}
	return strings.Join(ids, ",")
}

// errText is an error's text for the action row: connectors keep secrets
// and content out of their errors.
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
