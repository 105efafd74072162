// Package fanout turns a campaign into one action per recipient, through
// the same pipeline as a single submit, and predicts a campaign's outcome
// before it runs.
//
// Invariants (see package campaigns for the domain's):
//   - The fan-out MUST submit through Submitter, never write actions
//     itself: render, policy, ledger and idempotency are the pipeline's.
//   - A crash at any point MUST be resumable without duplicates: recipients
//     are materialised once (their account and send time fixed), each is
//     submitted with its idempotency key, and a recipient is marked only
//     after its action exists; a resubmission replays the same action.
//   - After every batch the runner re-reads the campaign: a pause or cancel
//     that landed during the batch is applied to the batch's actions too.
package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// Submission is one recipient's action, as the pipeline receives it.
type Submission struct {
	Campaign, Contact, Account string
	// Target is the contact's chat: the pipeline resolves it to the
	// contact again, so counting, consent and delivery see one person.
	Target        string
	Kind, Purpose string
	Content       herald.Content
	ScheduleAt    time.Time
	// Approval is the seq of the campaign's campaign.approved ledger entry
	// (0 when it needed none): the action refers to it, and a policy
	// "approve" is covered by it instead of held per recipient.
	Approval uint64
	// EndAt is the campaign's end: a recipient the policy defers past it
	// is skipped (campaign.window_closed), not sent late.
	EndAt *time.Time
	// PriorAccountSends (dry runs only) is how many of the campaign's
	// recipients before this one go out from the same account: the
	// prediction decides each recipient as if those were sent, as they
	// will be when the real fan-out reaches it.
	PriorAccountSends int
}

// Outcome is what the pipeline made of a submission.
type Outcome struct {
	Action   herald.Action
	Decision policies.Decision
}

// Submitter is the action pipeline as the fan-out uses it (implemented by
// gateway.CampaignSubmitter over gateway.Pipeline). It MUST use
// campaigns.IdempotencyKey(campaign, contact) as the idempotency key.
type Submitter interface {
	SubmitRecipient(ctx context.Context, p herald.Principal, s Submission, dryRun bool) (Outcome, error)
}

// Result is one submission's fate in a batch. Done is false for the
// submissions a batch did not reach (an infrastructure error stopped it:
// they stay pending and are retried). Skipped names why a decided
// recipient got no action (campaign.window_closed).
type Result struct {
	Done    bool
	Outcome Outcome
	Err     error
	Skipped string
}

// BatchSubmitter submits many recipients at once (gateway.CampaignSubmitter
// over Pipeline.SubmitBatch): same guarantees per recipient, the commit
// shared. The runner uses it when its Submitter implements it.
type BatchSubmitter interface {
	SubmitRecipients(ctx context.Context, p herald.Principal, subs []Submission) ([]Result, error)
}

// Defaults. Each is a trade-off written down.
const (
	// DefaultBatch recipients are submitted between two re-reads of the
	// campaign's status: a pause takes effect within one batch.
	DefaultBatch = 200
	// DefaultLease is how long a runner owns a campaign's fan-out without
	// renewing; a crashed runner's campaign is picked up after it.
	DefaultLease = 30 * time.Second
	// DefaultPoll is how often Run looks for due campaigns.
	DefaultPoll = time.Second
	// DefaultYield is the pause between batches: the fan-out shares the
	// database and the policy engine with single transactional submits,
	// which must keep their latency while a campaign runs.
	DefaultYield = 2 * time.Millisecond
)

// Runner fans out due campaigns. Several runners (replicas) may run at
// once: a lease per campaign keeps them apart.
type Runner struct {
	Store  *store.Store
	Submit Submitter
	// ID names this runner in campaign leases.
	ID    string
	Batch int
	Yield time.Duration
	Log   *slog.Logger
	// Notify is called after a batch queued sends (wakes the worker; may be nil).
	Notify func()
	// Approvals expires overdue campaign approval requests at each pass
	// (may be nil: a vote then finds the request expired).
	Approvals ApprovalExpirer
}

// ApprovalExpirer expires campaign approval requests that waited too long
// (implemented by gateway.CampaignApprovalExpirer).
type ApprovalExpirer interface {
	ExpireApprovals(ctx context.Context) (int, error)
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Run fans out campaigns until ctx ends.
func (r *Runner) Run(ctx context.Context, poll time.Duration) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.log().Error("campaign fan-out failed; retrying", "event", "campaign.fanout_error", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce advances every due campaign as far as it goes now and returns
// how many recipients it submitted.
func (r *Runner) RunOnce(ctx context.Context) (int, error) {
	if r.Approvals != nil {
		if n, err := r.Approvals.ExpireApprovals(ctx); err != nil {
			return 0, err
		} else if n > 0 {
			r.log().Info("campaign approvals expired", "event", "campaign.approval_expired", "campaigns", n)
		}
	}
	due, err := r.Store.DueCampaigns(ctx, r.Store.Now(), 100)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, c := range due {
		ok, err := r.Store.ClaimCampaign(ctx, c.ID, r.ID, DefaultLease)
		if err != nil {
			return total, err
		}
		if !ok {
			continue
		}
		// Re-read under the lease: another runner may have moved it since
		// the list was read (started it, or finished it).
		c, err = r.Store.GetCampaign(ctx, c.Org, c.ID)
		if err != nil {
			return total, err
		}
		n := 0
		if c.Status == campaigns.StatusScheduled || c.Status == campaigns.StatusRunning {
			n, err = r.advance(ctx, c)
		}
		total += n
		if rerr := r.Store.ReleaseCampaign(context.WithoutCancel(ctx), c.ID, r.ID); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return total, fmt.Errorf("campaign %s: %w", c.ID, err)
		}
	}
	return total, nil
}

func (r *Runner) advance(ctx context.Context, c campaigns.Campaign) (int, error) {
	var err error
	if c.Status == campaigns.StatusScheduled {
		err = r.Store.InTx(ctx, func(tx *store.Tx) error {
			c, err = tx.SetCampaignStatus(ctx, c.Org, c.ID, campaigns.StatusRunning, "system", "")
			return err
		})
		if err != nil {
			return 0, err
		}
		r.log().Info("campaign started", "event", "campaign.started", "org", c.Org, "campaign", c.ID)
	}
	if !c.Materialized {
		if err := r.materialize(ctx, c); err != nil {
			return 0, err
		}
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	var approval uint64
	if ap, err := r.Store.CampaignApprovalOf(ctx, c.Org, c.ID); err != nil {
		return 0, err
	} else if ap != nil && ap.Status == store.ApprovalApproved {
		approval = uint64(ap.LedgerSeq)
	}
	total := 0
	for {
		if _, err := r.Store.ClaimCampaign(ctx, c.ID, r.ID, DefaultLease); err != nil {
			return total, err
		}
		pending, err := r.Store.PendingRecipients(ctx, c.Org, c.ID, batch)
		if err != nil {
			return total, err
		}
		if len(pending) == 0 {
			break
		}
		if err := r.reassign(ctx, c, pending); err == errNoHealthyAccount {
			r.log().Warn("campaign has no healthy account; waiting", "event", "campaign.no_healthy_account", "org", c.Org, "campaign", c.ID)
			return total, nil
		} else if err != nil {
			return total, err
		}
		n, err := r.submitBatch(ctx, c, approval, pending)
		total += n
		if err != nil {
			return total, err
		}
		if n > 0 && r.Notify != nil {
			r.Notify()
		}
		// A pause or cancel may have landed while the batch ran.
		cur, err := r.Store.GetCampaign(ctx, c.Org, c.ID)
		if err != nil {
			return total, err
		}
		if cur.Status != campaigns.StatusRunning {
			return total, r.settle(ctx, cur)
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
		yield := r.Yield
		if yield == 0 {
			yield = DefaultYield
		}
		time.Sleep(yield)
	}
	open, err := r.Store.OpenCampaignActions(ctx, c.Org, c.ID)
	if err != nil || open > 0 {
		return total, err
	}
	err = r.Store.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.SetCampaignStatus(ctx, c.Org, c.ID, campaigns.StatusCompleted, "system", "")
		return err
	})
	if herald.ErrorCode(err) == herald.CodeIllegalTransition {
		return total, nil // paused or cancelled meanwhile
	}
	if err == nil {
		r.log().Info("campaign completed", "event", "campaign.completed", "org", c.Org, "campaign", c.ID)
	}
	return total, err
}

// settle applies a pause or cancel to actions created by a batch that
// raced with it.
func (r *Runner) settle(ctx context.Context, c campaigns.Campaign) error {
	return r.Store.InTx(ctx, func(tx *store.Tx) error {
		switch c.Status {
		case campaigns.StatusPaused:
			_, err := tx.HoldCampaignJobs(ctx, c.Org, c.ID)
			return err
		case campaigns.StatusCancelled:
			_, err := tx.CancelCampaignActions(ctx, c.Org, c.ID, "system")
			return err
		}
		return nil
	})
}

// materialize evaluates the audience now and stores every recipient with
// its account and send time, in one transaction.
func (r *Runner) materialize(ctx context.Context, c campaigns.Campaign) error {
	plan, err := Plan(ctx, r.Store, c)
	if err != nil {
		return err
	}
	return r.Store.InTx(ctx, func(tx *store.Tx) error {
		return tx.MaterializeRecipients(ctx, c.Org, c.ID, plan.Recipients)
	})
}

// PlanResult is a campaign's audience as the fan-out will send it.
type PlanResult struct {
	Recipients []store.Recipient
	Start      time.Time
	Accounts   map[string]herald.Account
}

// Plan evaluates the campaign's audience now and places each recipient:
// account by rendezvous hash over the usable accounts, send time by the
// recipient's local window, fan-out order by send time. Recipients whose
// time falls after the campaign's end are skipped (campaign.window_closed).
func Plan(ctx context.Context, s *store.Store, c campaigns.Campaign) (PlanResult, error) {
	var p PlanResult
	org, err := s.GetOrg(ctx, c.Org)
	if err != nil {
		return p, err
	}
	orgZone := campaigns.LoadZone(org.Timezone, time.UTC)
	var members []store.Member
	if c.Spec.Segment != "" {
		seg, err := s.GetSegment(ctx, c.Org, c.Spec.Segment)
		if err != nil {
			return p, err
		}
		members, err = s.SegmentMembers(ctx, c.Org, seg.Filter)
		if err != nil {
			return p, err
		}
	} else if members, err = s.ContactMembers(ctx, c.Org, c.Spec.Contacts); err != nil {
		return p, err
	}
	p.Accounts = map[string]herald.Account{}
	for _, id := range c.Spec.Accounts {
		a, err := s.GetAccount(ctx, c.Org, id)
		if herald.IsNotFound(err) {
			continue
		}
		if err != nil {
			return p, err
		}
		p.Accounts[id] = a
	}
	now := s.Now()
	usable := func(id string) bool {
		a, ok := p.Accounts[id]
		return ok && Healthy(a, now)
	}
	p.Start = s.Now()
	if c.Spec.StartAt != nil && c.Spec.StartAt.After(p.Start) {
		p.Start = c.Spec.StartAt.UTC()
	}
	zones := map[string]*time.Location{}
	p.Recipients = make([]store.Recipient, 0, len(members))
	for _, m := range members {
		loc, ok := zones[m.Timezone]
		if !ok {
			loc = campaigns.LoadZone(m.Timezone, orgZone)
			zones[m.Timezone] = loc
		}
		rc := store.Recipient{Campaign: c.ID, Contact: m.ID, ChatID: m.ChatID, SendAt: campaigns.SendTime(p.Start, loc, c.Spec.Window)}
		acct, err := campaigns.Assign(m.ID, c.Spec.Accounts, usable)
		switch {
		case err != nil:
			rc.Account, rc.Status, rc.Reason = c.Spec.Accounts[0], store.RecipientSkipped, "account.unavailable"
		case c.Spec.EndAt != nil && !rc.SendAt.Before(*c.Spec.EndAt):
			rc.Account, rc.Status, rc.Reason = acct, store.RecipientSkipped, "campaign.window_closed"
		default:
			rc.Account = acct
		}
		p.Recipients = append(p.Recipients, rc)
	}
	sort.SliceStable(p.Recipients, func(i, j int) bool { return p.Recipients[i].SendAt.Before(p.Recipients[j].SendAt) })
	for i := range p.Recipients {
		p.Recipients[i].Seq = int64(i + 1)
	}
	return p, nil
}

// Healthy reports whether account a may be given new recipients at now:
// not paused or disabled, and not frozen (a peer flood or a FROZEN_METHOD
// answer froze it until FrozenUntil, or for good without one).
func Healthy(a herald.Account, now time.Time) bool {
	switch a.Status {
	case herald.AccountPaused, herald.AccountDisabled:
		return false
	case herald.AccountFrozen:
		return a.FrozenUntil != nil && !a.FrozenUntil.After(now)
	}
	return a.FrozenUntil == nil || !a.FrozenUntil.After(now)
}

// errNoHealthyAccount stops a batch when none of the campaign's accounts
// may send now; the campaign stays running and is retried at the next poll.
var errNoHealthyAccount = errors.New("no healthy account")

// reassign moves pending recipients off accounts that are no longer
// healthy, by the same rendezvous hash over the healthy ones: only the
// unhealthy accounts' recipients move.
func (r *Runner) reassign(ctx context.Context, c campaigns.Campaign, pending []store.Recipient) error {
	health := map[string]bool{}
	now := r.Store.Now()
	for _, id := range c.Spec.Accounts {
		a, err := r.Store.GetAccount(ctx, c.Org, id)
		if err != nil && !herald.IsNotFound(err) {
			return err
		}
		health[id] = err == nil && Healthy(a, now)
	}
	for i := range pending {
		if health[pending[i].Account] {
			continue
		}
		acct, err := campaigns.Assign(pending[i].Contact, c.Spec.Accounts, func(id string) bool { return health[id] })
		if err != nil {
			return errNoHealthyAccount
		}
		pending[i].Account = acct
	}
	return nil
}

// submitBatch submits pending recipients and records what became of them.
// An infrastructure error stops the batch; what was submitted before it is
// recorded, and the rest is retried (and replayed) next time.
func (r *Runner) submitBatch(ctx context.Context, c campaigns.Campaign, approval uint64, pending []store.Recipient) (int, error) {
	ids := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = p.Contact
	}
	labels, err := r.Store.ContactsLabels(ctx, c.Org, ids)
	if err != nil {
		return 0, err
	}
	p := herald.Principal{ID: c.RunAs, Org: c.Org}
	if p.ID == "" {
		p.ID = c.CreatedBy
	}
	done := make([]store.Recipient, 0, len(pending))
	var (
		subs []Submission
		recs []store.Recipient
	)
	now := r.Store.Now()
	for _, rc := range pending {
		if c.Spec.EndAt != nil && !now.Before(*c.Spec.EndAt) {
			rc.Status, rc.Reason = store.RecipientSkipped, "campaign.window_closed"
			done = append(done, rc)
			continue
		}
		if rc.ChatID == "" {
			rc.Status, rc.Reason = store.RecipientSkipped, "contact.erased"
			done = append(done, rc)
			continue
		}
		content, missing := c.Spec.Template.Fill(labels[rc.Contact].Attributes)
		if len(missing) > 0 {
			rc.Status, rc.Reason = store.RecipientInvalid, "template.missing_variable:"+missing[0]
			done = append(done, rc)
			continue
		}
		subs = append(subs, Submission{Campaign: c.ID, Contact: rc.Contact, Target: rc.ChatID, Account: rc.Account,
			Kind: c.Spec.Kind, Purpose: c.Spec.Purpose, Content: content, ScheduleAt: rc.SendAt, Approval: approval, EndAt: c.Spec.EndAt})
		recs = append(recs, rc)
	}
	var (
		results []Result
		stop    error
	)
	if bs, ok := r.Submit.(BatchSubmitter); ok {
		results, stop = bs.SubmitRecipients(ctx, p, subs)
	} else {
		results = make([]Result, len(subs))
		for i, s := range subs {
			out, err := r.Submit.SubmitRecipient(ctx, p, s, false)
			if err != nil && !perRecipient(err) {
				stop = err
				break
			}
			results[i] = Result{Done: true, Outcome: out, Err: err}
		}
	}
	submitted := 0
	for i, res := range results {
		if !res.Done {
			continue
		}
		rc := recs[i]
		var he *herald.Error
		switch {
		case res.Skipped != "":
			rc.Status, rc.Reason = store.RecipientSkipped, res.Skipped
		case res.Err == nil:
			rc.Status, rc.Action = store.RecipientSubmitted, res.Outcome.Action.ID
			submitted++
		case errors.As(res.Err, &he) && perRecipient(res.Err):
			// A per-recipient refusal (the rendered message is too long,
			// the contact was erased, the account was paused): recorded,
			// never retried.
			rc.Status, rc.Reason = store.RecipientInvalid, string(he.Code)
			if len(he.Fields) > 0 {
				rc.Reason += ":" + he.Fields[0].Field
			}
		default:
			if stop == nil {
				stop = res.Err
			}
			continue
		}
		done = append(done, rc)
	}
	if err := r.Store.RecordRecipients(ctx, c.Org, c.ID, done); err != nil {
		return submitted, err
	}
	return submitted, stop
}

// perRecipient reports whether err is a refusal of this recipient (a
// typed problem) rather than a fault of the infrastructure.
func perRecipient(err error) bool {
	var he *herald.Error
	return errors.As(err, &he) && he.Code != herald.CodeUnavailable && he.Code != herald.CodeInternal && he.Code != "policy_unavailable"
}
