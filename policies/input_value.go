package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
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
		item("stage", word(in.Stage)),
		item("action", ast.NewTerm(actionValue(in.Action))),
		item("actor", ast.NewTerm(ast.NewObject(
			item("principal", word(in.Actor.Principal)),
			item("roles", wordsTerm(in.Actor.Roles)),
		))),
		item("account", ast.NewTerm(accountValue(in.Account))),
		item("target", ast.NewTerm(targetValue(in.Target))),
		item("frequency", ast.NewTerm(frequencyValue(in.Frequency))),
		item("org", ast.NewTerm(org)),
	), nil
}

func actionValue(a ActionInput) ast.Object {
	c := a.Content
	content := make([][2]*ast.Term, 0, 11)
	content = append(content,
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
		content = append(content, item("parse_mode", word(c.ParseMode)))
	}
	obj := make([][2]*ast.Term, 0, 6)
	obj = append(obj,
		item("kind", word(a.Kind)),
		item("purpose", word(a.Purpose)),
		item("content", ast.ObjectTerm(content...)),
		item("recipients", ast.InternedTerm(a.Recipients)),
	)
	if a.ID != "" {
		obj = append(obj, item("id", ast.StringTerm(a.ID)))
	}
	if a.ScheduleAt != nil {
		obj = append(obj, item("schedule_at", timeTerm(*a.ScheduleAt)))
	}
	return ast.NewObject(obj...)
}

func accountValue(a AccountInput) ast.Object {
	obj := make([][2]*ast.Term, 0, 12)
	obj = append(obj,
		item("id", word(a.ID)),
		item("kind", word(a.Kind)),
		item("connector", word(a.Connector)),
		item("age_days", ast.InternedTerm(a.AgeDays)),
		item("status", word(a.Status)),
		item("sends_24h", ast.InternedTerm(a.Sends24h)),
		item("errors_429_24h", ast.InternedTerm(a.Errors429_24h)),
		item("flood_wait_24h", ast.InternedTerm(a.FloodWait24h)),
		item("peer_flood_24h", ast.InternedTerm(a.PeerFlood24h)),
		item("blocked_24h", ast.InternedTerm(a.Blocked24h)),
		item("baseline_daily_7d", ast.FloatNumberTerm(a.BaselineDaily7d)),
	)
	if a.FrozenUntil != nil {
		obj = append(obj, item("frozen_until", timeTerm(*a.FrozenUntil)))
	}
	return ast.NewObject(obj...)
}

func targetValue(t TargetInput) ast.Object {
	obj := make([][2]*ast.Term, 0, 4)
	obj = append(obj,
		item("chat_id", ast.StringTerm(t.ChatID)),
		item("type", word(t.Type)),
	)
	if t.Members != 0 {
		obj = append(obj, item("members", ast.InternedTerm(t.Members)))
	}
	if t.Contact != nil {
		obj = append(obj, item("contact", ast.NewTerm(contactValue(*t.Contact))))
	}
	return ast.NewObject(obj...)
}

func contactValue(c ContactInput) ast.Object {
	obj := make([][2]*ast.Term, 0, 9)
	obj = append(obj,
		item("id", ast.StringTerm(c.ID)),
		item("opted_out", ast.InternedTerm(c.OptedOut)),
	)
	if c.Timezone != "" {
		obj = append(obj, item("timezone", word(c.Timezone)))
	}
	if c.Language != "" {
		obj = append(obj, item("language", word(c.Language)))
	}
	if c.OptedOutAt != nil {
		obj = append(obj, item("opted_out_at", timeTerm(*c.OptedOutAt)))
	}
	if c.LastInboundAt != nil {
		obj = append(obj, item("last_inbound_at", timeTerm(*c.LastInboundAt)))
	}
	if c.Restricted {
		obj = append(obj, item("restricted", ast.InternedTerm(true)))
	}
	if c.Objected {
		obj = append(obj, item("objected", ast.InternedTerm(true)))
	}
	if c.Consents == nil {
		obj = append(obj, item("consents", ast.NullTerm()))
	} else {
		consents := make([][2]*ast.Term, 0, len(c.Consents))
		for purpose, b := range c.Consents {
			consents = append(consents, ast.Item(word(purpose), ast.ObjectTerm(
				item("basis", word(b.Basis)),
				item("source", word(b.Source)),
				item("at", timeTerm(b.At)),
			)))
		}
		obj = append(obj, item("consents", ast.ObjectTerm(consents...)))
	}
	return ast.NewObject(obj...)
}

func frequencyValue(f FrequencyInput) ast.Object {
	recipient := ast.NullTerm()
	if f.Recipient != nil {
		sends := make([]*ast.Term, len(f.Recipient))
		for i, s := range f.Recipient {
			sends[i] = ast.ObjectTerm(item("at", timeTerm(s.At)), item("purpose", word(s.Purpose)))
		}
		recipient = ast.ArrayTerm(sends...)
	}
	obj := make([][2]*ast.Term, 0, 7)
	obj = append(obj,
		item("recipient", recipient),
		item("account_last_second", ast.InternedTerm(f.AccountLastSecond)),
		item("account_last_minute", ast.InternedTerm(f.AccountLastMinute)),
		item("account_cold_today", ast.InternedTerm(f.AccountColdToday)),
		item("chat_last_minute", ast.InternedTerm(f.ChatLastMinute)),
	)
	if f.AccountLastColdAt != nil {
		obj = append(obj, item("account_last_cold_at", timeTerm(*f.AccountLastColdAt)))
	}
	if f.ChatLastPostAt != nil {
		obj = append(obj, item("chat_last_post_at", timeTerm(*f.ChatLastPostAt)))
	}
	return ast.NewObject(obj...)
}

func orgValue(o OrgInput) (ast.Object, error) {
	obj := ast.NewObject(
		item("id", word(o.ID)),
		item("timezone", word(o.Timezone)),
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

// maxWords bounds the interned values: they come from a small vocabulary
// (stages, kinds, purposes, time zones, consent bases, organisation and
// account ids), but a hostile or buggy client could send many distinct ones,
// and past the bound values are simply not shared.
const maxWords = 4096

var (
	words     sync.Map // string → *ast.Term
	wordCount atomic.Int64
)

// word is the string term of a low-cardinality input value, shared between
// decisions like the keys. Evaluation never mutates input terms.
func word(s string) *ast.Term {
	if t, ok := words.Load(s); ok {
		return t.(*ast.Term)
	}
	if wordCount.Load() >= maxWords {
		return ast.StringTerm(s)
	}
	t, loaded := words.LoadOrStore(s, ast.StringTerm(s))
	if !loaded {
		wordCount.Add(1)
	}
	return t.(*ast.Term)
}

func wordsTerm(ss []string) *ast.Term {
	if ss == nil {
		return ast.NullTerm()
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = word(s)
	}
	return ast.ArrayTerm(terms...)
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
