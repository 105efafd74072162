package fanout

import (
	"context"
	"errors"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// Prediction is a campaign's dry run: what the pipeline would decide for
// each recipient now, and when the last one would go out.
type Prediction struct {
	Recipients int `json:"recipients"`
	// Evaluated recipients were decided by the real policy; when the
	// audience is larger than the limit, the counts are of the first
	// Evaluated in fan-out order and Truncated is true.
	Evaluated int  `json:"evaluated"`
	Truncated bool `json:"truncated"`
	// Outcomes counts allow / deny / defer / approve / invalid / skipped.
	Outcomes map[string]int `json:"outcomes"`
	// ByRule counts "<outcome>:<rule>" for every reason of a deny, defer or
	// approve decision, and "invalid:<reason>" for template problems.
	ByRule     map[string]int `json:"by_rule"`
	PerAccount map[string]int `json:"per_account"`
	Samples    []Sample       `json:"samples"`
	Start      time.Time      `json:"start"`
	// PredictedCompletion is when the last recipient would be sent: the
	// latest send time after stagger and policy deferrals, or the time the
	// busiest account needs at its sending rate, whichever is later.
	PredictedCompletion time.Time `json:"predicted_completion"`
	// Approvals are the approval stages the policy asked for, for the
	// recipient with the most stages (the strictest): a campaign with any
	// "approve" recipient is approved once, in these stages.
	Approvals []policies.Stage `json:"approvals,omitempty"`
}

// Sample is one recipient's rendered message and decision.
type Sample struct {
	Contact string         `json:"contact"`
	Account string         `json:"account"`
	SendAt  time.Time      `json:"send_at"`
	Content herald.Content `json:"content,omitempty"`
	Outcome string         `json:"outcome"`
	Rules   []string       `json:"rules,omitempty"`
}

// Sending rates the completion estimate assumes, per account kind: the
// default bundle's bot_per_second, and one message per cold-spacing
// interval for user accounts.
const (
	botRatePerSecond  = 25.0
	userRatePerSecond = 1.0 / 30
)

// Predict dry-runs campaign c: every recipient (up to limit) is rendered
// and decided through the pipeline's dry run, which stores nothing.
func Predict(ctx context.Context, s *store.Store, sub Submitter, p herald.Principal, c campaigns.Campaign, limit, samples int) (Prediction, error) {
	plan, err := Plan(ctx, s, c)
	if err != nil {
		return Prediction{}, err
	}
	pr := Prediction{Recipients: len(plan.Recipients), Outcomes: map[string]int{}, ByRule: map[string]int{},
		PerAccount: map[string]int{}, Samples: []Sample{}, Start: plan.Start, PredictedCompletion: plan.Start}
	rs := plan.Recipients
	if limit > 0 && len(rs) > limit {
		rs, pr.Truncated = rs[:limit], true
	}
	pr.Evaluated = len(rs)
	for start := 0; start < len(rs); start += DefaultBatch {
		batch := rs[start:min(start+DefaultBatch, len(rs))]
		ids := make([]string, len(batch))
		for i, r := range batch {
			ids[i] = r.Contact
		}
		labels, err := s.ContactsLabels(ctx, c.Org, ids)
		if err != nil {
			return pr, err
		}
		for _, rc := range batch {
			smp := Sample{Contact: rc.Contact, Account: rc.Account, SendAt: rc.SendAt}
			if rc.Status == store.RecipientSkipped {
				smp.Outcome, smp.Rules = "skipped", []string{rc.Reason}
			} else if content, missing := c.Spec.Template.Fill(labels[rc.Contact].Attributes); len(missing) > 0 {
				smp.Outcome, smp.Rules = "invalid", []string{"template.missing_variable:" + missing[0]}
			} else {
				smp.Content = content
				out, err := sub.SubmitRecipient(ctx, p, Submission{Campaign: c.ID, Contact: rc.Contact, Target: rc.ChatID, Account: rc.Account,
					Kind: c.Spec.Kind, Purpose: c.Spec.Purpose, Content: content, ScheduleAt: rc.SendAt,
					PriorAccountSends: pr.PerAccount[rc.Account]}, true)
				var he *herald.Error
				switch {
				case err == nil:
					smp.Outcome = out.Decision.Outcome
					if out.Decision.Outcome == policies.OutcomeApprove && len(out.Decision.Approvals) > len(pr.Approvals) {
						pr.Approvals = out.Decision.Approvals
					}
					for _, r := range out.Decision.Reasons {
						smp.Rules = append(smp.Rules, r.Rule)
					}
					if out.Decision.Outcome != policies.OutcomeDeny {
						pr.PerAccount[rc.Account]++
						at := out.Action.SendAt
						if at.After(pr.PredictedCompletion) {
							pr.PredictedCompletion = at
						}
					}
				case errors.As(err, &he) && he.Code != herald.CodeUnavailable && he.Code != herald.CodeInternal:
					smp.Outcome, smp.Rules = "invalid", []string{string(he.Code)}
				default:
					return pr, err
				}
			}
			pr.Outcomes[smp.Outcome]++
			for _, r := range smp.Rules {
				pr.ByRule[smp.Outcome+":"+r]++
			}
			if len(pr.Samples) < samples {
				pr.Samples = append(pr.Samples, smp)
			}
		}
	}
	for id, n := range pr.PerAccount {
		rate := botRatePerSecond
		if a, ok := plan.Accounts[id]; ok && a.Kind == herald.AccountUser {
			rate = userRatePerSecond
		}
		if end := plan.Start.Add(time.Duration(float64(n) / rate * float64(time.Second))); end.After(pr.PredictedCompletion) {
			pr.PredictedCompletion = end
		}
	}
	return pr, nil
}
