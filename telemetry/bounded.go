package telemetry

import (
	"regexp"
	"sync"
)

// labelOther stands for every value past a label's cap, or one that fails
// its shape check: the series count stays bounded whatever the input.
const labelOther = "other"

// boundedLabel admits at most max distinct values of one label, each of
// which passes valid. The first max valid values seen keep their own series
// for the life of the process; any later one is counted as "other". Values
// MUST come from operator-controlled sets (rule ids of the loaded bundles,
// the organisation's account ids), never from a message or a person.
type boundedLabel struct {
	max   int
	valid func(string) bool

	mu   sync.RWMutex
	seen map[string]struct{}
}

func newBoundedLabel(max int, valid func(string) bool) *boundedLabel {
	return &boundedLabel{max: max, valid: valid, seen: map[string]struct{}{}}
}

// value returns v, or "other" when v is malformed or the cap is reached.
func (b *boundedLabel) value(v string) string {
	b.mu.RLock()
	_, ok := b.seen[v]
	b.mu.RUnlock()
	if ok {
		return v
	}
	if !b.valid(v) {
		return labelOther
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= b.max {
		return labelOther
	}
	b.seen[v] = struct{}{}
	return v
}

// ruleID is the shape of a policy rule id ("consent.missing",
// "quiet_hours.defer"): dotted lower-case words, each starting with a
// letter. A digit-only segment cannot pass, so a rule id a bundle built from
// its input (a chat id, a phone number) is counted as "other", not exported.
var ruleID = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)*$`)

func validRule(s string) bool { return len(s) <= 64 && ruleID.MatchString(s) }

// accountID is the shape of an account id: the store's UUIDs (or a test's
// short token). Account ids name the organisation's bot or user accounts,
// never a contact; names and phone numbers are not ids and are never used.
var accountID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func validAccount(s string) bool { return accountID.MatchString(s) }
