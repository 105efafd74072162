package gateway

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/policyinput"
	"github.com/heraldhq/herald/store"
)

// BatchItem is one action of a multi-recipient submit (a campaign's
// recipients): the same request and idempotency key a single submit takes.
type BatchItem struct {
	Req            ActionRequest
	IdempotencyKey string
	// Attrs are added to the ledger entry of the action's decision
	// (small non-personal facts: the campaign's id).
	Attrs map[string]any
	// Approval, when non-zero, is the seq of a ledger entry approving this
	// action in advance (a campaign's campaign.approved): a policy
	// "approve" is then covered by it and the action is scheduled instead
	// of held for a per-action approval. Every other verdict stands.
	Approval uint64
	// NotAfter, when set, is the latest send time: an item the policy
	// defers to NotAfter or later is not stored at all (Skipped), rather
	// than sent late.
	NotAfter *time.Time
}

// BatchOutcome is what became of one item. Done is false for the items a
// batch did not reach because an infrastructure error stopped it.
type BatchOutcome struct {
	Done   bool
	Result SubmitResult
	Err    error
	// Skipped is why no action was stored for a decided item (the policy
	// deferred it past NotAfter: "campaign.window_closed").
	Skipped string
}

// DefaultBatchChunk is the most actions of one account SubmitBatch commits
// per transaction, and chunkBudget how long one such transaction may keep
// deciding before it commits what it has. The transaction holds the
// account's lock (and on SQLite the database's single writer), so a single
// transactional submit from the same account waits at most about the
// budget; within it, the commit's cost is shared by many actions.
const (
	DefaultBatchChunk = 64
	chunkBudget       = 40 * time.Millisecond
)

// RuleCampaignApproved is the reason added to a decision whose "approve"
// was covered by an approval given in advance (BatchItem.Approval).
const RuleCampaignApproved = "campaign.approved"

// SubmitBatch runs the pipeline for many actions of one principal:
// authorized once per account, each rendered and validated, idempotency
// keys looked up in one query, and each decided under its own locks and
// committed with many others of the same account per transaction. Every
// per-action guarantee of Submit holds for each item: the same render, the
// same policy input gathered inside the transaction after the locks (so
// caps count what the batch itself reserved), the same ledger entries,
// the same idempotency. A per-item refusal (a field error, a paused
// account) is that item's Err; an infrastructure error stops the batch and
// is returned, with what was committed before it marked Done.
func (pl *Pipeline) SubmitBatch(ctx context.Context, p herald.Principal, items []BatchItem) ([]BatchOutcome, error) {
	out := make([]BatchOutcome, len(items))
	if len(items) == 0 {
		return out, nil
	}
	done := pl.stage(ctx, "authorize")
	authz := map[string]error{}
	for _, it := range items {
		if _, ok := authz[it.Req.Account]; !ok {
			authz[it.Req.Account] = pl.Authz.Authorize(ctx, p, "accounts/"+it.Req.Account, "submit")
		}
	}
	done()
	org, err := pl.Store.GetOrg(ctx, p.Org)
	if err != nil {
		return out, err
	}
	params, err := pl.Store.PolicyParams(ctx, p.Org)
	if err != nil {
		return out, err
	}
	keys := make([]string, 0, len(items))
	for _, it := range items {
		if it.IdempotencyKey != "" {
			keys = append(keys, it.IdempotencyKey)
		}
	}
	priors, err := pl.Store.ActionsByIdempotencyKeys(ctx, p.Org, keys)
	if err != nil {
		return out, err
	}
	accounts := map[string]*herald.Account{}
	type prepared struct {
		i       int
		subj    policyinput.Subject
		at      time.Time
		reqHash string
	}
	groups := map[string][]prepared{}
	now := pl.Store.Now()
	for i, it := range items {
		if err := authz[it.Req.Account]; err != nil {
			out[i] = BatchOutcome{Done: true, Err: err}
			continue
		}
		done = pl.stage(ctx, "render")
		opt := SubmitOptions{IdempotencyKey: it.IdempotencyKey}
		rendered, fields := validateRequest(it.Req, opt, now)
		done()
		if len(fields) > 0 {
			out[i] = BatchOutcome{Done: true, Err: herald.Invalid(fields...)}
			continue
		}
		res := SubmitResult{Preview: rendered}
		reqHash := requestHash(it.Req)
		if prior, ok := priors[it.IdempotencyKey]; ok && it.IdempotencyKey != "" {
			r, err := replay(prior, reqHash, res)
			out[i] = BatchOutcome{Done: true, Result: r, Err: err}
			continue
		}
		acct, ok := accounts[it.Req.Account]
		if !ok {
			a, err := pl.Store.GetAccount(ctx, p.Org, it.Req.Account)
			switch {
			case herald.IsNotFound(err):
				acct = nil
			case err != nil:
				return out, err
			default:
				acct = &a
			}
			accounts[it.Req.Account] = acct
		}
		if acct == nil {
			out[i] = BatchOutcome{Done: true, Err: herald.Invalid(herald.FieldError{Field: "account", Message: "no such account in this organisation"})}
			continue
		}
		if acct.Status == herald.AccountPaused || acct.Status == herald.AccountDisabled {
			out[i] = BatchOutcome{Done: true, Err: herald.Errorf(herald.CodeAccountUnavailable, "account is %s; resume it before submitting", acct.Status)}
			continue
		}
		subj := policyinput.Subject{Target: it.Req.Target, Kind: it.Req.Kind, Purpose: it.Req.Purpose, Stats: rendered.Stats,
			ScheduleAt: it.Req.ScheduleAt, Actor: p, Org: org, Params: params, Account: *acct}
		rc, err := policyinput.Resolve(ctx, pl.Store, p.Org, it.Req.Target, looksLikeID(it.Req.Target))
		if herald.IsNotFound(err) {
			out[i] = BatchOutcome{Done: true, Err: herald.Invalid(herald.FieldError{Field: "target", Message: "no such contact in this organisation"})}
			continue
		}
		if err != nil {
			return out, err
		}
		subj.Contact, subj.Target, subj.Recipient = rc.Contact, rc.Chat, rc.Key
		at := now
		if it.Req.ScheduleAt != nil && it.Req.ScheduleAt.After(now) {
			at = it.Req.ScheduleAt.UTC().Truncate(time.Microsecond)
		}
		out[i].Result = res
		groups[it.Req.Account] = append(groups[it.Req.Account], prepared{i: i, subj: subj, at: at, reqHash: reqHash})
	}
	accountIDs := make([]string, 0, len(groups))
	for id := range groups {
		accountIDs = append(accountIDs, id)
	}
	sort.Strings(accountIDs)
	notify := false
	for _, acct := range accountIDs {
		g := groups[acct]
		for start := 0; start < len(g); {
			chunk := g[start:min(start+DefaultBatchChunk, len(g))]
			results := make([]SubmitResult, len(chunk))
			skipped := make([]string, len(chunk))
			n := 0 // items of chunk committed by this transaction
			done = pl.stage(ctx, "commit")
			err := pl.Store.InTx(ctx, func(tx *store.Tx) error {
				n = 0
				began := time.Now()
				// The order of Submit's locks (idempotency keys, then the
				// account, then recipients), each group sorted: two batches
				// and a single submit never wait on each other in a cycle.
				var idem, chats, keys []string
				for _, pr := range chunk {
					if k := items[pr.i].IdempotencyKey; k != "" {
						idem = append(idem, "herald/idem/"+p.Org+"/"+k)
						keys = append(keys, k)
					}
					chats = append(chats, policyinput.LockKeys(p.Org, acct, pr.subj.Recipient)[1])
				}
				sort.Strings(idem)
				chats = sortedUnique(chats)
				lock := append(append(idem, "herald/account/"+acct), chats...)
				if err := tx.Lock(ctx, lock...); err != nil {
					return err
				}
				// Submitted meanwhile (a concurrent runner)? The same action.
				priors, err := tx.ActionsByIdempotencyKeys(ctx, p.Org, keys)
				if err != nil {
					return err
				}
				for j, pr := range chunk {
					if j > 0 && time.Since(began) > chunkBudget {
						break // commit what is done: the locks are not held longer
					}
					n = j + 1
					it := items[pr.i]
					res := out[pr.i].Result
					if prior, ok := priors[it.IdempotencyKey]; ok && it.IdempotencyKey != "" {
						if results[j], err = replay(prior, pr.reqHash, res); err != nil {
							return err
						}
						continue
					}
					in, err := policyinput.Gather(ctx, tx, pr.subj, pr.at, policyinput.StageSubmit)
					if err != nil {
						return err
					}
					if res.Decision, err = pl.decide(ctx, in); err != nil {
						return err
					}
					if it.NotAfter != nil && res.Decision.Outcome == policies.OutcomeDefer && !sendAt(pr.at, res.Decision).Before(*it.NotAfter) {
						// Deferred past the end: nothing is stored or reserved.
						skipped[j] = "campaign.window_closed"
						results[j] = res
						continue
					}
					policyDecision := res.Decision
					a := herald.Action{Org: p.Org, Account: acct, Kind: it.Req.Kind, Purpose: it.Req.Purpose, Target: pr.subj.Target,
						ContactID: contactID(pr.subj), Recipient: pr.subj.Recipient, Content: it.Req.Content, SendAt: pr.at, ScheduleAt: it.Req.ScheduleAt,
						IdempotencyKey: it.IdempotencyKey, RequestHash: pr.reqHash, SubmittedBy: p.ID}
					if err := pl.commitItem(ctx, tx, &a, &res.Decision, pr.at, it); err != nil {
						return err
					}
					res.Action = a
					// The policy's own verdict is recorded for replay; the action
					// carries the one it was committed with.
					if err := tx.RecordDecision(ctx, a.Org, a.ID, in.Stage, in, policyDecision); err != nil {
						return err
					}
					results[j] = res
				}
				return nil
			})
			done()
			if err != nil {
				if notify && pl.Notify != nil {
					pl.Notify()
				}
				return out, err
			}
			for j, pr := range chunk[:n] {
				out[pr.i] = BatchOutcome{Done: true, Result: results[j], Skipped: skipped[j]}
				if r := results[j]; !r.Replayed && skipped[j] == "" {
					if pl.Metrics != nil && r.Action.Status.Terminal() {
						pl.Metrics.ActionsFinal.WithLabelValues(string(r.Action.Status)).Inc()
					}
					notify = notify || r.Action.Status == herald.StatusScheduled
				}
			}
			start += n
		}
	}
	if notify && pl.Notify != nil {
		pl.Notify()
	}
	return out, nil
}

// commitItem is commit for a batch item: the item's attributes on the
// decision's ledger entry, and an "approve" covered by the item's advance
// approval scheduled like an allow, the approval's entry named.
func (pl *Pipeline) commitItem(ctx context.Context, tx *store.Tx, a *herald.Action, d *policies.Decision, at time.Time, it BatchItem) error {
	attrs := delivery.DecisionAttrs(*d)
	for k, v := range it.Attrs {
		attrs[k] = v
	}
	detail := ""
	if it.Approval > 0 {
		attrs["campaign_approval"] = it.Approval
		if d.Outcome == policies.OutcomeApprove {
			d.Outcome, d.Approvals = policies.OutcomeAllow, nil
			d.Reasons = append(d.Reasons, policies.Reason{Rule: RuleCampaignApproved, Severity: "info",
				Message: fmt.Sprintf("held for approval by the policy; covered by the campaign's approval (ledger entry %d)", it.Approval)})
			attrs["outcome"], attrs["policy_outcome"] = d.Outcome, policies.OutcomeApprove
			attrs["rules"] = append(attrs["rules"].([]any), RuleCampaignApproved)
			detail = "campaign_approved"
		}
	}
	return pl.commitDecided(ctx, tx, a, *d, at, attrs, detail)
}

func sortedUnique(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
