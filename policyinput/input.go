// Package policyinput builds the document policies decide from, out of
// what the store knows: the action, its account, its recipient's consent,
// and the recent sends counted for frequency caps. The submit pipeline and
// the delivery worker both build it here, so a decision at submit time and
// its re-check at send time see the same facts in the same shape.
package policyinput

import (
	"context"
	"strings"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// Stages at which a decision is made.
const (
	StageSubmit = "submit"
	StageSend   = "send"
)

// Subject is everything about one action the input needs, already loaded
// and scoped to its organisation.
type Subject struct {
	ActionID   string
	Org        herald.Org
	Account    herald.Account
	Contact    *herald.Contact // nil when the target is not a known contact
	Target     string
	Kind       string
	Purpose    string
	Stats      policies.ContentStats
	ScheduleAt *time.Time
	Actor      herald.Principal
	// Params are the organisation's overrides of the policy parameters.
	Params map[string]any
}

// FactSource gives the counters caps are judged on; *store.Store and
// *store.Tx both satisfy it (the Tx under the recipient lock, for exact caps).
type FactSource interface {
	SendFacts(ctx context.Context, org, account, target string, at time.Time, excludeAction string) (store.SendFacts, error)
}

// Gather counts the facts and builds the input for s, judged at at (the
// time the action would go out).
func Gather(ctx context.Context, src FactSource, s Subject, at time.Time, stage string) (policies.Input, error) {
	facts, err := src.SendFacts(ctx, s.Org.ID, s.Account.ID, s.Target, at, s.ActionID)
	if err != nil {
		return policies.Input{}, err
	}
	return Build(s, facts, at, stage), nil
}

// TargetType classifies a chat: "user" for a positive id, "channel" for a
// public @name or a -100… id posted to as a channel, "group" otherwise.
func TargetType(kind, target string) string {
	switch {
	case kind == herald.KindPostToChannel:
		return "channel"
	case strings.HasPrefix(target, "@"), strings.HasPrefix(target, "channel:"):
		return "channel"
	case strings.HasPrefix(target, "-"), strings.HasPrefix(target, "chat:"):
		return "group"
	}
	return "user"
}

// Build assembles the input. at is the decision's "now": the time the action
// would go out (submit time, or its schedule), so quiet hours and caps are
// judged when it is sent and a stored input replays exactly.
func Build(s Subject, f store.SendFacts, at time.Time, stage string) policies.Input {
	in := policies.Input{
		Now:   at.UTC(),
		Stage: stage,
		Action: policies.ActionInput{
			ID: s.ActionID, Kind: s.Kind, Purpose: s.Purpose, ScheduleAt: s.ScheduleAt,
			Content: s.Stats, Recipients: 1,
		},
		Actor: policies.ActorInput{Principal: s.Actor.ID, Roles: []string{s.Actor.Role}},
		Account: policies.AccountInput{
			ID: s.Account.ID, Kind: s.Account.Kind, Connector: s.Account.Connector, Status: s.Account.Status,
			AgeDays:     int(at.Sub(s.Account.CreatedAt).Hours() / 24),
			FrozenUntil: s.Account.FrozenUntil, Sends24h: f.AccountSends24h, Blocked24h: f.AccountBlocked24h,
			BaselineDaily7d: f.AccountDaily7d,
		},
		Target: policies.TargetInput{ChatID: s.Target, Type: TargetType(s.Kind, s.Target)},
		Frequency: policies.FrequencyInput{
			Recipient:         make([]policies.SendRecord, 0, len(f.Recipient)),
			AccountLastSecond: f.AccountLastSecond,
			AccountLastMinute: f.AccountLastMinute,
			ChatLastMinute:    f.ChatLastMinute,
			ChatLastPostAt:    f.ChatLastPostAt,
		},
		Org: policies.OrgInput{ID: s.Org.ID, Timezone: s.Org.Timezone, Params: s.Params},
	}
	if in.Action.Content.Domains == nil {
		in.Action.Content.Domains = []string{}
	}
	for _, r := range f.Recipient {
		in.Frequency.Recipient = append(in.Frequency.Recipient, policies.SendRecord{At: r.At, Purpose: r.Purpose})
	}
	if c := s.Contact; c != nil {
		ci := &policies.ContactInput{
			ID: c.ID, Timezone: c.Timezone, Language: c.Language, OptedOut: c.OptedOutAt != nil,
			OptedOutAt: c.OptedOutAt, LastInboundAt: c.LastInboundAt, Consents: map[string]policies.ConsentInput{},
			Restricted: c.RestrictedAt != nil, Objected: c.ObjectedAt != nil,
		}
		for _, k := range c.Consents {
			ci.Consents[k.Purpose] = policies.ConsentInput{Basis: k.Basis, Source: k.Source, At: k.At}
		}
		in.Target.Contact = ci
		if s.Account.Kind == herald.AccountUser && c.LastInboundAt == nil {
			// Cold sends of a user account are the ones Telegram's anti-spam
			// watches; the per-day count is over this account's recent
			// sends to contacts that never wrote to it.
			in.Frequency.AccountColdToday = f.AccountSends24h
		}
	}
	return in
}

// Loader reads what a Subject needs; *store.Store and *store.Tx satisfy it.
type Loader interface {
	GetOrg(ctx context.Context, id string) (herald.Org, error)
	GetAccount(ctx context.Context, org, id string) (herald.Account, error)
	GetContact(ctx context.Context, org, id string) (herald.Contact, error)
	PolicyParams(ctx context.Context, org string) (map[string]any, error)
}

// SubjectOf loads the subject of a stored action (for the send-time re-check).
func SubjectOf(ctx context.Context, l Loader, a herald.Action, stats policies.ContentStats) (Subject, error) {
	s := Subject{ActionID: a.ID, Target: a.Target, Kind: a.Kind, Purpose: a.Purpose, Stats: stats,
		ScheduleAt: a.ScheduleAt, Actor: herald.Principal{ID: a.SubmittedBy}}
	var err error
	if s.Org, err = l.GetOrg(ctx, a.Org); err != nil {
		return s, err
	}
	if s.Account, err = l.GetAccount(ctx, a.Org, a.Account); err != nil {
		return s, err
	}
	if s.Params, err = l.PolicyParams(ctx, a.Org); err != nil {
		return s, err
	}
	if a.ContactID != "" {
		c, err := l.GetContact(ctx, a.Org, a.ContactID)
		if err != nil {
			return s, err
		}
		s.Contact = &c
	}
	return s, nil
}

// LockKeys are the transaction locks that make decide-and-reserve atomic:
// one per sending account (its caps) and one per recipient chat (theirs),
// always taken in this order so two transactions never deadlock.
func LockKeys(org, account, target string) []string {
	return []string{"herald/account/" + account, "herald/chat/" + org + "/" + target}
}
