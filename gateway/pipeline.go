package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/policyinput"
	"github.com/heraldhq/herald/render"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// Authorizer decides whether a principal may act on a resource.
type Authorizer interface {
	Authorize(ctx context.Context, p herald.Principal, resource, verb string) error
}

// Decider evaluates policy.
type Decider interface {
	Decide(ctx context.Context, in policies.Input) (policies.Decision, error)
}

// Pipeline runs one action through Herald's stages:
//
//	authorize → render/validate → decide → commit
//
// Authentication happens before (HTTP middleware) and delivery after (the
// delivery worker, woken by Notify). A dry run runs the same stages and
// stops before the commit: same render, same policy, same reasons.
type Pipeline struct {
	Store   *store.Store
	Authz   Authorizer
	Decider Decider
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	// Notify wakes the local delivery worker after a commit (may be nil).
	Notify func()
	// MaxApprovalWait bounds how long an action waits for approval
	// (DefaultMaxApprovalWait when zero).
	MaxApprovalWait time.Duration
}

// ActionRequest is the body of POST /v1/actions.
type ActionRequest struct {
	Kind    string `json:"kind"`
	Account string `json:"account"`
	Target  string `json:"target"`
	Purpose string `json:"purpose"`
	herald.Content
	ScheduleAt *time.Time `json:"schedule_at,omitempty"`
}

// SubmitOptions qualify one submission.
type SubmitOptions struct {
	IdempotencyKey string
	DryRun         bool
	// Explain adds the failing lines of the policy trace to a dry run
	// (?explain=full), for compliance officers debugging a bundle.
	Explain bool
	// PriorAccountSends (dry run only) decides as if this many more sends
	// of the account were already in its 24-hour window: a campaign's
	// prediction counts the campaign's own earlier recipients on the
	// account, which the real fan-out will have sent by then (volume and
	// burst rules see them).
	PriorAccountSends int
}

// Explainer is a Decider that can also trace a decision.
type Explainer interface {
	Explain(ctx context.Context, in policies.Input) (policies.Decision, []string, error)
}

// SubmitResult is what a submission produced.
type SubmitResult struct {
	Action   herald.Action
	Decision policies.Decision
	Preview  render.Rendered
	// Replayed is true when an earlier submission with the same
	// Idempotency-Key and body is returned instead of a new action.
	Replayed bool
	// Explanation holds the trace lines of an explained dry run.
	Explanation []string
}

// maxScheduleAhead bounds schedule_at: consent and policy change; a send
// queued for years is a mistake, not a plan.
const maxScheduleAhead = 365 * 24 * time.Hour

var idempotencyKeyPattern = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// Submit runs the pipeline for req on behalf of p.
func (pl *Pipeline) Submit(ctx context.Context, p herald.Principal, req ActionRequest, opt SubmitOptions) (SubmitResult, error) {
	var res SubmitResult
	// authorize
	done := pl.stage(ctx, "authorize")
	err := pl.Authz.Authorize(ctx, p, "accounts/"+req.Account, "submit")
	done()
	if err != nil {
		return res, err
	}
	// render / validate
	done = pl.stage(ctx, "render")
	now := pl.Store.Now()
	rendered, fields := validateRequest(req, opt, now)
	done()
	if len(fields) > 0 {
		return res, herald.Invalid(fields...)
	}
	res.Preview = rendered
	reqHash := requestHash(req)

	if opt.IdempotencyKey != "" && !opt.DryRun {
		if prior, err := pl.Store.ActionByIdempotencyKey(ctx, p.Org, opt.IdempotencyKey); err == nil {
			return replay(prior, reqHash, res)
		} else if !herald.IsNotFound(err) {
			return res, err
		}
	}
	subj, err := pl.subject(ctx, p, req, rendered)
	if err != nil {
		return res, err
	}
	at := now
	if req.ScheduleAt != nil && req.ScheduleAt.After(now) {
		at = req.ScheduleAt.UTC().Truncate(time.Microsecond)
	}
	if opt.DryRun {
		done = pl.stage(ctx, "decide")
		in, err := policyinput.Gather(ctx, pl.Store, subj, at, policyinput.StageSubmit)
		if err != nil {
			done()
			return res, err
		}
		in.Account.Sends24h += opt.PriorAccountSends
		res.Decision, err = pl.decide(ctx, in)
		done()
		if err != nil {
			return res, err
		}
		if opt.Explain {
			ex, ok := pl.Decider.(Explainer)
			if !ok {
				return res, herald.Errorf(herald.CodeUnavailable, "this policy engine cannot explain decisions")
			}
			if _, res.Explanation, err = ex.Explain(ctx, in); err != nil {
				return res, herald.Errorf(herald.CodeUnavailable, "explain: %v", err)
			}
		}
		res.Action = herald.Action{Org: p.Org, Account: req.Account, Kind: req.Kind, Purpose: req.Purpose,
			Target: subj.Target, ContactID: contactID(subj), Recipient: subj.Recipient, Content: req.Content, Status: statusFor(res.Decision),
			SendAt: sendAt(at, res.Decision), ScheduleAt: req.ScheduleAt, SubmittedBy: p.ID}
		return res, nil
	}
	done = pl.stage(ctx, "commit")
	err = pl.Store.InTx(ctx, func(tx *store.Tx) error {
		keys := policyinput.LockKeys(p.Org, req.Account, subj.Recipient)
		if opt.IdempotencyKey != "" {
			keys = append([]string{"herald/idem/" + p.Org + "/" + opt.IdempotencyKey}, keys...)
		}
		if err := tx.Lock(ctx, keys...); err != nil {
			return err
		}
		if opt.IdempotencyKey != "" {
			if prior, err := tx.ActionByIdempotencyKey(ctx, p.Org, opt.IdempotencyKey); err == nil {
				res, err = replay(prior, reqHash, res)
				return err
			} else if !herald.IsNotFound(err) {
				return err
			}
		}
		in, err := policyinput.Gather(ctx, tx, subj, at, policyinput.StageSubmit)
		if err != nil {
			return err
		}
		if res.Decision, err = pl.decide(ctx, in); err != nil {
			return err // nothing is stored: the transaction rolls back
		}
		a := herald.Action{Org: p.Org, Account: req.Account, Kind: req.Kind, Purpose: req.Purpose, Target: subj.Target,
			ContactID: contactID(subj), Recipient: subj.Recipient, Content: req.Content, SendAt: at, ScheduleAt: req.ScheduleAt,
			IdempotencyKey: opt.IdempotencyKey, RequestHash: reqHash, SubmittedBy: p.ID}
		if err := pl.commit(ctx, tx, &a, res.Decision, at); err != nil {
			return err
		}
		res.Action = a
		return tx.RecordDecision(ctx, a.Org, a.ID, in.Stage, in, res.Decision)
	})
	done()
	if err != nil {
		if herald.ErrorCode(err) == herald.CodeIdempotencyReuse && opt.IdempotencyKey != "" {
			// A concurrent submit with the same key won (the unique index
			// caught it): return the winner.
			if prior, gerr := pl.Store.ActionByIdempotencyKey(ctx, p.Org, opt.IdempotencyKey); gerr == nil {
				return replay(prior, reqHash, res)
			}
		}
		return res, err
	}
	if !res.Replayed {
		if pl.Metrics != nil && res.Action.Status.Terminal() {
			pl.Metrics.ActionsFinal.WithLabelValues(string(res.Action.Status)).Inc()
		}
		if res.Action.Status == herald.StatusScheduled && pl.Notify != nil {
			pl.Notify()
		}
	}
	return res, nil
}

// commit stores the action with its decision and moves it to where the
// decision leads (received → decided → scheduled | pending_approval |
// denied), in the caller's transaction: one insert, one batch of events and
// ledger entries, and the delivery job or the approval stages.
func (pl *Pipeline) commit(ctx context.Context, tx *store.Tx, a *herald.Action, d policies.Decision, at time.Time) error {
	return pl.commitDecided(ctx, tx, a, d, at, delivery.DecisionAttrs(d), "")
}

// commitDecided is commit with the decided entry's attributes and detail
// given (a campaign recipient's carry the campaign and its approval).
func (pl *Pipeline) commitDecided(ctx context.Context, tx *store.Tx, a *herald.Action, d policies.Decision, at time.Time, attrs map[string]any, detail string) error {
	dj, err := json.Marshal(d)
	if err != nil {
		return err
	}
	decided := store.Transition{To: herald.StatusDecided, Actor: "policy", Decision: dj, Attrs: attrs, Detail: detail}
	to := statusFor(d)
	next := store.Transition{To: to, Actor: "policy"}
	switch to {
	case herald.StatusScheduled:
		sa := sendAt(at, d)
		next.Actor, next.SendAt = "system", &sa
	case herald.StatusDenied:
		code := "denied"
		next.ErrorCode = &code
	}
	if err := tx.InsertAction(ctx, a, decided, next); err != nil {
		return err
	}
	switch to {
	case herald.StatusScheduled:
		return tx.Enqueue(ctx, *a, a.SendAt)
	case herald.StatusPendingApproval:
		return pl.openStages(ctx, tx, *a, d)
	}
	return nil
}

func statusFor(d policies.Decision) herald.Status {
	switch d.Outcome {
	case policies.OutcomeAllow, policies.OutcomeDefer:
		return herald.StatusScheduled
	case policies.OutcomeApprove:
		return herald.StatusPendingApproval
	}
	return herald.StatusDenied
}

func sendAt(at time.Time, d policies.Decision) time.Time {
	if d.Outcome == policies.OutcomeDefer && d.DeferUntil != nil && d.DeferUntil.After(at) {
		return d.DeferUntil.UTC().Truncate(time.Microsecond)
	}
	return at
}

// CodePolicyUnavailable: the policy could not be evaluated in time (load,
// not a verdict). Nothing was stored; retry after the Retry-After header.
const CodePolicyUnavailable herald.Code = "policy_unavailable"

// policyRetryAfter is the Retry-After of a policy_unavailable answer, in
// seconds: long enough for a burst to pass.
const policyRetryAfter = 1

// decide evaluates the policy. A passing failure (deadline, cancelled
// context; policyinput.Unavailable) is returned as policy_unavailable and
// MUST NOT become a decision; any other engine error is the engine's
// fail-closed deny.
func (pl *Pipeline) decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	ctx, span := telemetry.StartSpan(ctx, "policy.decide")
	d, err := pl.Decider.Decide(ctx, in)
	defer func() { telemetry.EndDecisionSpan(span, in.Stage, d.Outcome, d.BundleHash, err) }()
	if err != nil {
		if pl.Metrics != nil {
			pl.Metrics.PolicyErrors.Inc()
		}
		if policyinput.Unavailable(err) {
			pl.log().Warn("policy evaluation unavailable; answered 503", "err", err)
			return d, &herald.Error{Code: CodePolicyUnavailable, Err: err,
				Message: "the policy could not be evaluated in time; nothing was stored, retry after the Retry-After delay",
				Extra:   map[string]any{"retry_after": policyRetryAfter}}
		}
		// The engine returns a fail-closed deny with the error; it is logged
		// (without the input: it may hold consent facts) and counted.
		pl.log().Error("policy evaluation failed; denied fail-closed", "err", err)
		if d.Outcome == "" {
			d = policies.Decision{Outcome: policies.OutcomeDeny, Reasons: []policies.Reason{{Rule: "policy.error",
				Severity: "deny", Message: "the policy could not be evaluated; denied fail-closed"}}}
		}
	}
	pl.Metrics.ObserveDecision(in.Stage, d)
	return d, nil
}

func (pl *Pipeline) log() *slog.Logger {
	if pl.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return pl.Log
}

func replay(prior herald.Action, reqHash string, res SubmitResult) (SubmitResult, error) {
	if prior.RequestHash != reqHash {
		return res, herald.Errorf(herald.CodeIdempotencyReuse,
			"this Idempotency-Key was used for a different request (action %s); use a new key for a new action", prior.ID)
	}
	res.Action, res.Replayed = prior, true
	if len(prior.Decision) > 0 {
		_ = json.Unmarshal(prior.Decision, &res.Decision)
	}
	return res, nil
}

func contactID(s policyinput.Subject) string {
	if s.Contact != nil {
		return s.Contact.ID
	}
	return ""
}

// subject loads the account, organisation and contact of a request. An
// unknown account or contact is a field error: the caller named it.
func (pl *Pipeline) subject(ctx context.Context, p herald.Principal, req ActionRequest, r render.Rendered) (policyinput.Subject, error) {
	s := policyinput.Subject{Target: req.Target, Kind: req.Kind, Purpose: req.Purpose, Stats: r.Stats,
		ScheduleAt: req.ScheduleAt, Actor: p}
	var err error
	if s.Org, err = pl.Store.GetOrg(ctx, p.Org); err != nil {
		return s, err
	}
	if s.Params, err = pl.Store.PolicyParams(ctx, p.Org); err != nil {
		return s, err
	}
	if s.Account, err = pl.Store.GetAccount(ctx, p.Org, req.Account); err != nil {
		if herald.IsNotFound(err) {
			return s, herald.Invalid(herald.FieldError{Field: "account", Message: "no such account in this organisation"})
		}
		return s, err
	}
	switch s.Account.Status {
	case herald.AccountPaused, herald.AccountDisabled:
		return s, herald.Errorf(herald.CodeAccountUnavailable, "account is %s; resume it before submitting", s.Account.Status)
	}
	rc, err := policyinput.Resolve(ctx, pl.Store, p.Org, req.Target, looksLikeID(req.Target))
	if err != nil {
		if herald.IsNotFound(err) {
			return s, herald.Invalid(herald.FieldError{Field: "target", Message: "no such contact in this organisation"})
		}
		return s, err
	}
	s.Contact, s.Target, s.Recipient = rc.Contact, rc.Chat, rc.Key
	return s, nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func looksLikeID(s string) bool { return uuidPattern.MatchString(s) }

// validateRequest checks every field and renders the content.
func validateRequest(req ActionRequest, opt SubmitOptions, now time.Time) (render.Rendered, []herald.FieldError) {
	var fe []herald.FieldError
	add := func(field, msg string) { fe = append(fe, herald.FieldError{Field: field, Message: msg}) }
	if req.Account == "" {
		add("account", "is required")
	}
	switch {
	case req.Target == "":
		add("target", "is required: a contact id or a Telegram chat id")
	case !looksLikeID(req.Target) && !herald.ValidChatID(req.Target):
		add("target", "must be a contact id or a Telegram chat (123, -100…, @channel, user:<id>:<hash>, channel:<id>:<hash>, chat:<id>)")
	}
	if !herald.ValidPurpose(req.Purpose) {
		add("purpose", "must be one of "+strings.Join(herald.Purposes, ", "))
	}
	if req.ScheduleAt != nil && req.ScheduleAt.After(now.Add(maxScheduleAhead)) {
		add("schedule_at", "must be within a year")
	}
	if opt.IdempotencyKey != "" && !idempotencyKeyPattern.MatchString(opt.IdempotencyKey) {
		add("Idempotency-Key", "must be 1–255 visible ASCII characters")
	}
	r, err := render.Render(req.Kind, req.Content)
	var he *herald.Error
	if errors.As(err, &he) {
		fe = append(fe, he.Fields...)
	}
	return r, fe
}

// requestHash identifies a request body for idempotency: the same key with
// a different body is refused.
func requestHash(req ActionRequest) string {
	b, _ := json.Marshal(req)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (pl *Pipeline) stage(ctx context.Context, name string) func() {
	start := time.Now()
	// A span per stage, a child of the request's (a no-op when tracing is off).
	_, span := telemetry.StartSpan(ctx, "pipeline."+name)
	return func() {
		span.End()
		if pl.Metrics != nil {
			pl.Metrics.StageDuration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		}
	}
}

// Cancel cancels one of p's org's actions that has not been sent. Who may
// cancel whose actions is the access model's: cancel on "actions/own"
// reaches the caller's own submissions (operators), cancel on "actions"
// every action (admins, compliance officers).
func (pl *Pipeline) Cancel(ctx context.Context, p herald.Principal, id string) (herald.Action, error) {
	if err := pl.Authz.Authorize(ctx, p, access.ResActionsOwn, access.VerbCancel); err != nil {
		return herald.Action{}, err
	}
	var a herald.Action
	err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.GetAction(ctx, p.Org, id)
		if err != nil {
			return err
		}
		if cur.SubmittedBy != p.ID {
			if err := pl.Authz.Authorize(ctx, p, access.ResActions+"/"+cur.ID, access.VerbCancel); err != nil {
				return herald.Errorf(herald.CodeForbidden, "your roles may cancel only your own actions")
			}
		}
		if a, err = tx.Transition(ctx, p.Org, id, store.Transition{To: herald.StatusCancelled, Actor: p.ID}); err != nil {
			return err
		}
		return tx.DeleteJob(ctx, id)
	})
	if err == nil && pl.Metrics != nil {
		pl.Metrics.ActionsFinal.WithLabelValues(string(herald.StatusCancelled)).Inc()
	}
	return a, err
}
