// Package policyinput builds the document policies decide from, out of
// what the store knows: the action, its account, its recipient's consent,
// and the recent sends counted for frequency caps. The submit pipeline and
// the delivery worker both build it here, so a decision at submit time and
// its re-check at send time see the same facts in the same shape.
//
// Invariants:
//   - A person is ONE recipient however an action addresses them (contact
//     id, chat id, @username, MTProto peer): Resolve MUST run before any
//     count, lock or consent check, and caps, quiet hours and opt-out MUST be
//     judged by the resolved contact and RecipientKey, never by the raw
//     target.
//   - A chat id or user name that belongs to a known contact IS that
//     contact, with its consent, time zone and opt-out.
//   - The locks (LockKeys) MUST be taken on the recipient key, so two
//     addresses of one person serialise on one lock.
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
	ActionID string
	Org      herald.Org
	Account  herald.Account
	Contact  *herald.Contact // nil when the target is not a known contact
	Target   string          // the chat the connector addresses
	// Recipient is the key caps count by (RecipientKey of the person's chat).
	Recipient string
	// Self is the stored action re-decided at send time (nil at submit): it
	// counts only the sends before it in line.
	Self       *herald.Action
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
	SendFacts(ctx context.Context, q store.FactQuery) (store.SendFacts, error)
}

// Gather counts the facts and builds the input for s, judged at at (the
// time the action would go out).
func Gather(ctx context.Context, src FactSource, s Subject, at time.Time, stage string) (policies.Input, error) {
	q := store.FactQuery{Org: s.Org.ID, Account: s.Account.ID, Recipient: s.Recipient, At: at}
	if q.Recipient == "" {
		q.Recipient = RecipientKey(s.Target)
	}
	if stage == StageSend {
		q.Self = s.Self
	}
	facts, err := src.SendFacts(ctx, q)
	if err != nil {
		return policies.Input{}, err
	}
	return Build(s, facts, at, stage), nil
}

// RecipientKey is the canonical form of a chat, the key a recipient is
// counted and locked by: MTProto peers become the Bot API id of the same
// chat ("user:42:…" → "42", "channel:7:…" → "-1007", "chat:7" → "-7") and
// user names are lower case.
func RecipientKey(chat string) string {
	switch {
	case strings.HasPrefix(chat, "user:"):
		return peerID(chat[len("user:"):])
	case strings.HasPrefix(chat, "channel:"):
		return "-100" + peerID(chat[len("channel:"):])
	case strings.HasPrefix(chat, "chat:"):
		return "-" + chat[len("chat:"):]
	case strings.HasPrefix(chat, "@"):
		return strings.ToLower(chat)
	}
	return chat
}

// peerID drops the access hash of "<id>:<hash>".
func peerID(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

// ContactFinder finds the contact behind a target; *store.Store and
// *store.Tx satisfy it.
type ContactFinder interface {
	GetContact(ctx context.Context, org, id string) (herald.Contact, error)
	ContactByChat(ctx context.Context, org, chatID string) (herald.Contact, error)
	ContactByUsername(ctx context.Context, org, username string) (herald.Contact, error)
}

// Recipient is a target resolved to the one person or chat it reaches.
type Recipient struct {
	// Chat is what the connector addresses: the target as given, or the
	// contact's chat when the target was a contact id or its @username.
	Chat string
	// Key is the recipient key (RecipientKey of the person's chat).
	Key string
	// Contact is the person, when Herald knows them.
	Contact *herald.Contact
}

// Resolve maps a target to its recipient. byID says the target is a
// contact id (an unknown one is a not-found error); otherwise the target is
// a chat, and the contact whose chat id (in any of its forms) or user name
// it is, if any, is the recipient.
func Resolve(ctx context.Context, f ContactFinder, org, target string, byID bool) (Recipient, error) {
	if byID {
		c, err := f.GetContact(ctx, org, target)
		if err != nil {
			return Recipient{}, err
		}
		return Recipient{Chat: c.ChatID, Key: RecipientKey(c.ChatID), Contact: &c}, nil
	}
	r := Recipient{Chat: target, Key: RecipientKey(target)}
	tries := []string{target}
	if r.Key != target {
		tries = append(tries, r.Key)
	}
	for _, chat := range tries {
		c, err := f.ContactByChat(ctx, org, chat)
		switch {
		case err == nil:
			r.Contact, r.Key = &c, RecipientKey(c.ChatID)
			return r, nil
		case !herald.IsNotFound(err):
			return r, err
		}
	}
	if strings.HasPrefix(target, "@") {
		c, err := f.ContactByUsername(ctx, org, target)
		switch {
		case err == nil:
			// Bots cannot write to a person by user name: address the
			// contact's chat.
			r.Contact, r.Chat, r.Key = &c, c.ChatID, RecipientKey(c.ChatID)
		case !herald.IsNotFound(err):
			return r, err
		}
	}
	return r, nil
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
			Errors429_24h: f.Account429_24h, FloodWait24h: f.AccountFlood24h, PeerFlood24h: f.AccountPeerFlood,
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
	ContactFinder
	GetOrg(ctx context.Context, id string) (herald.Org, error)
	GetAccount(ctx context.Context, org, id string) (herald.Account, error)
	PolicyParams(ctx context.Context, org string) (map[string]any, error)
}

// SubjectOf loads the subject of a stored action (for the send-time re-check).
func SubjectOf(ctx context.Context, l Loader, a herald.Action, stats policies.ContentStats) (Subject, error) {
	self := a
	s := Subject{ActionID: a.ID, Target: a.Target, Recipient: a.Recipient, Self: &self, Kind: a.Kind, Purpose: a.Purpose, Stats: stats,
		ScheduleAt: a.ScheduleAt, Actor: herald.Principal{ID: a.SubmittedBy}}
	if s.Recipient == "" {
		s.Recipient = RecipientKey(a.Target)
	}
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
	} else if TargetType(a.Kind, a.Target) == "user" {
		// A contact created after the submit is the same person now.
		r, err := Resolve(ctx, l, a.Org, a.Target, false)
		if err != nil {
			return s, err
		}
		s.Contact = r.Contact
	}
	return s, nil
}

// LockKeys are the transaction locks that make decide-and-reserve atomic:
// one per sending account (its caps) and one per recipient (theirs, by
// RecipientKey), always taken in this order so two transactions never
// deadlock.
func LockKeys(org, account, recipient string) []string {
	return []string{"herald/account/" + account, "herald/chat/" + org + "/" + recipient}
}
