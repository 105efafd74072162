package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// inputValue builds the Rego value of an Input field by field. It is the
// same document as the Input's JSON (same keys, same omitempty rules, times
// in RFC 3339) but skips encoding/json and the generic any→ast conversion,
// which dominated the cost of a decision. TestInputValueMatchesJSON keeps
// the two in step.
func inputValue(in Input) (ast.Value, error) {
	org, err := orgValue(in.Org)
	if err != nil {
		return nil, err
	}
	return ast.NewObject(
		item("now", timeTerm(in.Now)),
		item("stage", ast.StringTerm(in.Stage)),
		item("action", ast.NewTerm(actionValue(in.Action))),
		item("actor", ast.NewTerm(ast.NewObject(
			item("principal", ast.StringTerm(in.Actor.Principal)),
			item("roles", stringsTerm(in.Actor.Roles)),
		))),
		item("account", ast.NewTerm(accountValue(in.Account))),
		item("target", ast.NewTerm(targetValue(in.Target))),
		item("frequency", ast.NewTerm(frequencyValue(in.Frequency))),
		item("org", ast.NewTerm(org)),
	), nil
}

func actionValue(a ActionInput) ast.Object {
	c := a.Content
	content := ast.NewObject(
		item("length", ast.InternedTerm(c.Length)),
		item("links", ast.InternedTerm(c.Links)),
		item("shortened_links", ast.InternedTerm(c.Shortened)),
		item("domains", stringsTerm(c.Domains)),
		item("caps_ratio", ast.FloatNumberTerm(c.CapsRatio)),
		item("has_media", ast.InternedTerm(c.HasMedia)),
		item("exclamations", ast.InternedTerm(c.Exclaims)),
		item("mentions", ast.InternedTerm(c.Mentions)),
		item("is_reply", ast.InternedTerm(c.IsReply)),
		item("is_edit_only", ast.InternedTerm(c.IsEditOnly)),
	)
	if c.ParseMode != "" {
		content.Insert(keyTerm("parse_mode"), ast.StringTerm(c.ParseMode))
	}
	obj := ast.NewObject(
		item("kind", ast.StringTerm(a.Kind)),
		item("purpose", ast.StringTerm(a.Purpose)),
		item("content", ast.NewTerm(content)),
		item("recipients", ast.InternedTerm(a.Recipients)),
	)
	if a.ID != "" {
		obj.Insert(keyTerm("id"), ast.StringTerm(a.ID))
	}
	if a.ScheduleAt != nil {
		obj.Insert(keyTerm("schedule_at"), timeTerm(*a.ScheduleAt))
	}
	return obj
}

func accountValue(a AccountInput) ast.Object {
	obj := ast.NewObject(
		item("id", ast.StringTerm(a.ID)),
		item("kind", ast.StringTerm(a.Kind)),
		item("connector", ast.StringTerm(a.Connector)),
		item("age_days", ast.InternedTerm(a.AgeDays)),
		item("status", ast.StringTerm(a.Status)),
		item("sends_24h", ast.InternedTerm(a.Sends24h)),
		item("errors_429_24h", ast.InternedTerm(a.Errors429_24h)),
		item("flood_wait_24h", ast.InternedTerm(a.FloodWait24h)),
		item("peer_flood_24h", ast.InternedTerm(a.PeerFlood24h)),
		item("blocked_24h", ast.InternedTerm(a.Blocked24h)),
		item("baseline_daily_7d", ast.FloatNumberTerm(a.BaselineDaily7d)),
	)
	if a.FrozenUntil != nil {
		obj.Insert(keyTerm("frozen_until"), timeTerm(*a.FrozenUntil))
	}
	return obj
}

func targetValue(t TargetInput) ast.Object {
	obj := ast.NewObject(
		item("chat_id", ast.StringTerm(t.ChatID)),
		item("type", ast.StringTerm(t.Type)),
	)
	if t.Members != 0 {
		obj.Insert(keyTerm("members"), ast.InternedTerm(t.Members))
	}
	if t.Contact != nil {
		obj.Insert(keyTerm("contact"), ast.NewTerm(contactValue(*t.Contact)))
	}
	return obj
}

func contactValue(c ContactInput) ast.Object {
	obj := ast.NewObject(
		item("id", ast.StringTerm(c.ID)),
		item("opted_out", ast.InternedTerm(c.OptedOut)),
	)
	if c.Timezone != "" {
		obj.Insert(keyTerm("timezone"), ast.StringTerm(c.Timezone))
	}
	if c.Language != "" {
		obj.Insert(keyTerm("language"), ast.StringTerm(c.Language))
	}
	if c.OptedOutAt != nil {
		obj.Insert(keyTerm("opted_out_at"), timeTerm(*c.OptedOutAt))
	}
	if c.LastInboundAt != nil {
		obj.Insert(keyTerm("last_inbound_at"), timeTerm(*c.LastInboundAt))
	}
	if c.Restricted {
		obj.Insert(keyTerm("restricted"), ast.InternedTerm(true))
	}
	if c.Objected {
		obj.Insert(keyTerm("objected"), ast.InternedTerm(true))
	}
	if c.Consents == nil {
		obj.Insert(keyTerm("consents"), ast.NullTerm())
	} else {
		consents := ast.NewObject()
		for purpose, b := range c.Consents {
			consents.Insert(ast.StringTerm(purpose), ast.ObjectTerm(
				item("basis", ast.StringTerm(b.Basis)),
				item("source", ast.StringTerm(b.Source)),
				item("at", timeTerm(b.At)),
			))
		}
		obj.Insert(keyTerm("consents"), ast.NewTerm(consents))
	}
	return obj
}

func frequencyValue(f FrequencyInput) ast.Object {
	recipient := ast.NullTerm()
	if f.Recipient != nil {
		sends := make([]*ast.Term, len(f.Recipient))
		for i, s := range f.Recipient {
			sends[i] = ast.ObjectTerm(item("at", timeTerm(s.At)), item("purpose", ast.StringTerm(s.Purpose)))
		}
		recipient = ast.ArrayTerm(sends...)
	}
	obj := ast.NewObject(
		item("recipient", recipient),
		item("account_last_second", ast.InternedTerm(f.AccountLastSecond)),
		item("account_last_minute", ast.InternedTerm(f.AccountLastMinute)),
		item("account_cold_today", ast.InternedTerm(f.AccountColdToday)),
		item("chat_last_minute", ast.InternedTerm(f.ChatLastMinute)),
	)
	if f.AccountLastColdAt != nil {
		obj.Insert(keyTerm("account_last_cold_at"), timeTerm(*f.AccountLastColdAt))
	}
	if f.ChatLastPostAt != nil {
		obj.Insert(keyTerm("chat_last_post_at"), timeTerm(*f.ChatLastPostAt))
	}
	return obj
}

func orgValue(o OrgInput) (ast.Object, error) {
	obj := ast.NewObject(
		item("id", ast.StringTerm(o.ID)),
		item("timezone", ast.StringTerm(o.Timezone)),
	)
	if len(o.Params) > 0 {
		// Params are free-form JSON; normalise through encoding/json so Go
		// numeric types and nested structs become what the JSON would be.
		raw, err := json.Marshal(o.Params)
		if err != nil {
			return nil, fmt.Errorf("org params: %w", err)
		}
		v, err := ast.ValueFromReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("org params: %w", err)
		}
		obj.Insert(keyTerm("params"), ast.NewTerm(v))
	}
	return obj, nil
}

// item pairs a key with its value. Keys are shared terms: the evaluator never
// mutates input terms, and building about sixty key strings per decision was
// a third of the input's allocations.
func item(k string, v *ast.Term) [2]*ast.Term { return ast.Item(keyTerm(k), v) }

var inputKeys sync.Map // string → *ast.Term

func keyTerm(k string) *ast.Term {
	if t, ok := inputKeys.Load(k); ok {
		return t.(*ast.Term)
	}
	t, _ := inputKeys.LoadOrStore(k, ast.StringTerm(k))
	return t.(*ast.Term)
}

func timeTerm(t time.Time) *ast.Term {
	// Same text encoding/json produces for a time.Time.
	return ast.StringTerm(t.Format(time.RFC3339Nano))
}

func stringsTerm(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// InputHash is the hex SHA-256 of the input's canonical JSON (RFC 8785 over
// the Input's encoding/json form), the value the ledger stores so an auditor
// can prove which input was decided.
func InputHash(in Input) (string, error) {
	v, err := inputValue(in)
	if err != nil {
		return "", fmt.Errorf("input hash: %w", err)
	}
	return valueHash(v)
}

var hashBuffers = sync.Pool{New: func() any {
	b := new(bytes.Buffer)
	b.Grow(2048)
	return b
}}

func valueHash(v ast.Value) (string, error) {
	buf := hashBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 { // an input with huge org params does not pin its buffer
			buf.Reset()
			hashBuffers.Put(buf)
		}
	}()
	if err := appendCanonical(buf, v); err != nil {
		return "", fmt.Errorf("input hash: canonical JSON: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}
