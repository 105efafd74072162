package policies

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// engine compiles the default bundle once for the package's tests. Its
// deadline is generous so that -race and a loaded CI machine test the rules,
// not the scheduler; the deadline itself is tested with a slow bundle.
var engine = sync.OnceValues(func() (*Engine, error) {
	return Compile(context.Background(), DefaultBundle(), EvalTimeout(5*time.Second))
})

func mustEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := engine()
	if err != nil {
		t.Fatalf("compile default bundle: %v", err)
	}
	return e
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tp(s string) *time.Time { t := ts(s); return &t }

// realisticInput is a marketing message from a healthy bot to a contact in
// Berlin who consented last year, on a Tuesday at 13:00 local time.
func realisticInput() Input {
	return Input{
		Now:   ts("2026-03-10T12:00:00Z"),
		Stage: "send",
		Action: ActionInput{
			ID: "act-1", Kind: "message", Purpose: "marketing", Recipients: 1,
			Content: ContentStats{Length: 180, Domains: []string{"example.org"}, CapsRatio: 0.05, ParseMode: "HTML"},
		},
		Actor: ActorInput{Principal: "principal-5d1e", Roles: []string{"operator"}},
		Account: AccountInput{
			ID: "account-e2b4", Kind: "bot", Connector: "botapi", AgeDays: 400, Status: "active",
			Sends24h: 100, BaselineDaily7d: 120,
		},
		Target: TargetInput{
			ChatID: "chat-7f3a", Type: "user",
			Contact: &ContactInput{
				ID: "contact-91c2", Timezone: "Europe/Berlin", Language: "de",
				Consents: map[string]ConsentInput{
					"marketing": {Basis: "consent", Source: "signup_form", At: ts("2025-06-01T10:00:00Z")},
				},
			},
		},
		Frequency: FrequencyInput{
			Recipient: []SendRecord{{At: ts("2026-03-06T10:00:00Z"), Purpose: "marketing"}},
		},
		Org: OrgInput{ID: "org-1", Timezone: "Europe/Berlin"},
	}
}

func ruleIDs(d Decision) []string {
	var ids []string
	for _, r := range d.Reasons {
		ids = append(ids, r.Rule)
	}
	return ids
}

func TestDecideDefaultBundle(t *testing.T) {
	e := mustEngine(t)
	tests := []struct {
		name       string
		mutate     func(*Input)
		outcome    string
		rules      []string // exactly these reasons, in order
		deferUntil string
		stages     []string // roles in stage order
	}{
		{name: "clean marketing is allowed", mutate: func(*Input) {}, outcome: OutcomeAllow},
		{
			name:    "opted out is denied",
			mutate:  func(in *Input) { in.Target.Contact.OptedOut = true },
			outcome: OutcomeDeny, rules: []string{"consent.opted_out"},
		},
		{
			name:    "marketing without consent",
			mutate:  func(in *Input) { in.Target.Contact.Consents = nil },
			outcome: OutcomeDeny, rules: []string{"consent.missing"},
		},
		{
			name: "stale consent",
			mutate: func(in *Input) {
				in.Target.Contact.Consents["marketing"] = ConsentInput{Basis: "consent", Source: "form", At: ts("2023-01-01T00:00:00Z")}
			},
			outcome: OutcomeDeny, rules: []string{"consent.stale"},
		},
		{
			name: "support in the inbound window",
			mutate: func(in *Input) {
				in.Action.Purpose = "support"
				in.Target.Contact.Consents = nil
				in.Target.Contact.LastInboundAt = tp("2026-03-10T09:00:00Z")
			},
			outcome: OutcomeAllow,
		},
		{
			name: "support after the window",
			mutate: func(in *Input) {
				in.Action.Purpose = "support"
				in.Target.Contact.Consents = nil
				in.Target.Contact.LastInboundAt = tp("2026-03-08T09:00:00Z")
			},
			outcome: OutcomeDeny, rules: []string{"consent.no_basis"},
		},
		{
			name:    "quiet hours defer to 09:00 Berlin",
			mutate:  func(in *Input) { in.Now = ts("2026-03-10T21:30:00Z") },
			outcome: OutcomeDefer, rules: []string{"quiet_hours.defer"}, deferUntil: "2026-03-11T08:00:00Z",
		},
		{
			name: "transactional is exempt from quiet hours",
			mutate: func(in *Input) {
				in.Now = ts("2026-03-10T21:30:00Z")
				in.Action.Purpose = "transactional"
				in.Target.Contact.LastInboundAt = tp("2026-03-10T21:00:00Z")
			},
			outcome: OutcomeAllow,
		},
		{
			name: "daily marketing cap",
			mutate: func(in *Input) {
				in.Frequency.Recipient = append(in.Frequency.Recipient, SendRecord{At: ts("2026-03-10T07:00:00Z"), Purpose: "marketing"})
			},
			outcome: OutcomeDefer, rules: []string{"frequency.recipient_daily"}, deferUntil: "2026-03-11T08:00:00Z",
		},
		{
			name:    "bot rate",
			mutate:  func(in *Input) { in.Frequency.AccountLastSecond = 25 },
			outcome: OutcomeDefer, rules: []string{"frequency.account_rate"}, deferUntil: "2026-03-10T12:00:01Z",
		},
		{
			name: "user account cold cap denies",
			mutate: func(in *Input) {
				in.Account.Kind, in.Account.Connector = "user", "mtproto"
				in.Frequency.AccountColdToday = 30
			},
			outcome: OutcomeDeny, rules: []string{"frequency.cold_daily"},
		},
		{
			name: "channel spacing",
			mutate: func(in *Input) {
				in.Target = TargetInput{ChatID: "ch-1", Type: "channel", Members: 900}
				in.Frequency.ChatLastPostAt = tp("2026-03-10T11:59:30Z")
			},
			outcome: OutcomeDefer, rules: []string{"frequency.channel_spacing"}, deferUntil: "2026-03-10T12:00:30Z",
		},
		{
			name:    "frozen account",
			mutate:  func(in *Input) { in.Account.PeerFlood24h = 1 },
			outcome: OutcomeDeny, rules: []string{"risk.frozen"},
		},
		{
			name: "high risk",
			mutate: func(in *Input) {
				in.Account.AgeDays = 2
				in.Action.Content.Links, in.Action.Content.Shortened = 2, 1
				in.Account.Sends24h = 900
			},
			outcome: OutcomeDeny, rules: []string{"risk.high"},
		},
		{
			name:    "risk in approval band",
			mutate:  func(in *Input) { in.Account.AgeDays = 2; in.Action.Content.Shortened = 1; in.Action.Content.Links = 1 },
			outcome: OutcomeApprove, rules: []string{"approval.risk"}, stages: []string{"compliance_officer"},
		},
		{
			name: "large channel",
			mutate: func(in *Input) {
				in.Target = TargetInput{ChatID: "ch-1", Type: "channel", Members: 25000}
			},
			outcome: OutcomeApprove, rules: []string{"approval.channel_size"}, stages: []string{"approver"},
		},
		{
			name:    "large broadcast",
			mutate:  func(in *Input) { in.Action.Recipients = 4000 },
			outcome: OutcomeApprove, rules: []string{"approval.broadcast_size"}, stages: []string{"approver", "compliance_officer"},
		},
		{
			name: "deny beats approve and defer",
			mutate: func(in *Input) {
				in.Now = ts("2026-03-10T21:30:00Z")
				in.Action.Recipients = 4000
				in.Target.Contact.OptedOut = true
			},
			outcome: OutcomeDeny, rules: []string{"consent.opted_out", "approval.broadcast_size", "quiet_hours.defer"},
		},
		{
			name: "approve beats defer",
			mutate: func(in *Input) {
				in.Now = ts("2026-03-10T21:30:00Z")
				in.Action.Recipients = 4000
			},
			outcome: OutcomeApprove, rules: []string{"approval.broadcast_size", "quiet_hours.defer"}, stages: []string{"approver", "compliance_officer"},
		},
		{
			name: "defer until the latest defer",
			mutate: func(in *Input) {
				in.Now = ts("2026-03-10T23:30:00Z") // 00:30 on the 11th in Berlin
				in.Frequency.Recipient = append(in.Frequency.Recipient, SendRecord{At: ts("2026-03-10T23:10:00Z"), Purpose: "marketing"})
			},
			outcome: OutcomeDefer, rules: []string{"frequency.recipient_daily", "quiet_hours.defer"}, deferUntil: "2026-03-12T08:00:00Z",
		},
		{
			name: "org override raises the daily cap",
			mutate: func(in *Input) {
				in.Frequency.Recipient = append(in.Frequency.Recipient, SendRecord{At: ts("2026-03-10T07:00:00Z"), Purpose: "marketing"})
				in.Org.Params = map[string]any{"frequency": map[string]any{"recipient": map[string]any{"marketing": map[string]any{"per_day": 2}}}}
			},
			outcome: OutcomeAllow,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := realisticInput()
			tc.mutate(&in)
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if d.Outcome != tc.outcome {
				t.Errorf("outcome %s, want %s (reasons %v)", d.Outcome, tc.outcome, ruleIDs(d))
			}
			// Reasons are ordered deny, approve, defer; within one outcome by rule id.
			if got := ruleIDs(d); !slices.Equal(got, tc.rules) {
				t.Errorf("reasons %v, want %v", got, tc.rules)
			}
			switch {
			case tc.deferUntil == "" && d.DeferUntil != nil:
				t.Errorf("defer_until %v, want none", d.DeferUntil)
			case tc.deferUntil != "" && (d.DeferUntil == nil || !d.DeferUntil.Equal(ts(tc.deferUntil))):
				t.Errorf("defer_until %v, want %s", d.DeferUntil, tc.deferUntil)
			}
			var roles []string
			for i, s := range d.Approvals {
				if s.Stage != i+1 || s.Mode != "any" {
					t.Errorf("stage %d = %+v", i, s)
				}
				roles = append(roles, s.Role)
			}
			if !slices.Equal(roles, tc.stages) {
				t.Errorf("approval roles %v, want %v", roles, tc.stages)
			}
			// Messages reach logs and operators: no identifier of a person,
			// chat, account or actor may leak into them.
			ids := []string{"chat-7f3a", "contact-91c2", "principal-5d1e", "account-e2b4", "ch-1"}
			for _, r := range d.Reasons {
				if r.Message == "" || (r.Severity != "deny" && r.Severity != "warning") {
					t.Errorf("reason %+v lacks a message or severity", r)
				}
				for _, id := range ids {
					if strings.Contains(r.Message, id) {
						t.Errorf("reason %s leaks %s: %q", r.Rule, id, r.Message)
					}
				}
			}
			for _, s := range d.Suggestions {
				for _, id := range ids {
					if strings.Contains(s.Message, id) || strings.Contains(fmt.Sprint(s.Patch), id) {
						t.Errorf("suggestion %s leaks %s", s.Rule, id)
					}
				}
			}
			if d.BundleHash != e.Hash() || len(d.InputHash) != 64 {
				t.Errorf("hashes not set: bundle %q input %q", d.BundleHash, d.InputHash)
			}
		})
	}
}

// TestQuietHoursAcrossDST checks the end of the window in wall-clock time on
// the nights clocks change: a naive "+N hours" is off by one hour there.
func TestQuietHoursAcrossDST(t *testing.T) {
	e := mustEngine(t)
	tests := []struct {
		name, tz, now, want string
	}{
		{"Berlin spring forward", "Europe/Berlin", "2026-03-28T22:00:00Z", "2026-03-29T07:00:00Z"},
		{"Berlin fall back", "Europe/Berlin", "2026-10-24T21:00:00Z", "2026-10-25T08:00:00Z"},
		{"New York spring forward", "America/New_York", "2026-03-08T03:00:00Z", "2026-03-08T13:00:00Z"},
		{"New York fall back", "America/New_York", "2026-11-01T02:00:00Z", "2026-11-01T14:00:00Z"},
		{"Berlin winter night", "Europe/Berlin", "2026-01-15T23:59:59Z", "2026-01-16T08:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := realisticInput()
			in.Now = ts(tc.now)
			in.Frequency.Recipient = nil
			in.Target.Contact.Timezone = tc.tz
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != OutcomeDefer || d.DeferUntil == nil || !d.DeferUntil.Equal(ts(tc.want)) {
				t.Fatalf("got %s until %v, want defer until %s", d.Outcome, d.DeferUntil, tc.want)
			}
			local := d.DeferUntil.In(mustLoc(t, tc.tz))
			if local.Hour() != 9 || local.Minute() != 0 {
				t.Errorf("defer_until is %s local, want 09:00", local.Format(time.Kitchen))
			}
			if len(d.Suggestions) != 1 || d.Suggestions[0].Patch["schedule_at"] != tc.want {
				t.Errorf("suggestions %+v", d.Suggestions)
			}
		})
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDecideConcurrent(t *testing.T) {
	e := mustEngine(t)
	var err error
	variants := []func(*Input){
		func(*Input) {},
		func(in *Input) { in.Target.Contact.OptedOut = true },
		func(in *Input) { in.Now = ts("2026-03-10T21:30:00Z") },
		func(in *Input) { in.Action.Recipients = 4000 },
	}
	want := make([]Decision, len(variants))
	for i, m := range variants {
		in := realisticInput()
		m(&in)
		if want[i], err = e.Decide(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 50 {
				i := (g + n) % len(variants)
				in := realisticInput()
				variants[i](&in)
				d, err := e.Decide(context.Background(), in)
				if err != nil || d.Outcome != want[i].Outcome || d.InputHash != want[i].InputHash ||
					!slices.Equal(ruleIDs(d), ruleIDs(want[i])) {
					t.Errorf("variant %d: got %s %v (%v), want %s %v", i, d.Outcome, ruleIDs(d), err, want[i].Outcome, ruleIDs(want[i]))
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecideFailsClosedOnBadInput(t *testing.T) {
	e := mustEngine(t)
	tests := []struct {
		name   string
		mutate func(*Input)
	}{
		{"no now", func(in *Input) { in.Now = time.Time{} }},
		{"unknown time zone", func(in *Input) { in.Target.Contact.Timezone = "Mars/Olympus_Mons" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := realisticInput()
			tc.mutate(&in)
			before := e.FailClosed()
			d, err := e.Decide(context.Background(), in)
			if err == nil {
				t.Fatal("want an error")
			}
			assertFailClosed(t, d)
			if e.FailClosed() <= before {
				t.Error("fail-closed counter did not move")
			}
		})
	}
}

func assertFailClosed(t *testing.T, d Decision) {
	t.Helper()
	if d.Outcome != OutcomeDeny || len(d.Reasons) != 1 || d.Reasons[0].Rule != RulePolicyError ||
		d.Reasons[0].Overridable || d.Reasons[0].Severity != "deny" {
		t.Errorf("not a fail-closed decision: %+v", d)
	}
}

// bundleWith is a minimal bundle whose decision is the given Rego body.
func bundleWith(decisionRego string) Bundle {
	return Bundle{Files: map[string][]byte{
		"decision.rego": []byte("package herald\n\n" + decisionRego + "\n"),
	}}
}

func TestDecideFailsClosedOnBadBundles(t *testing.T) {
	tests := []struct {
		name    string
		rego    string
		opts    []Option
		wantErr error
	}{
		{
			name:    "outcome maybe",
			rego:    `decision := {"outcome": "maybe", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "defer without defer_until",
			rego:    `decision := {"outcome": "defer", "reasons": [{"rule": "x.y", "severity": "warning", "message": "m", "overridable": true}], "suggestions": [], "risk": {"score": 0, "factors": []}}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "approve without approvals",
			rego:    `decision := {"outcome": "approve", "reasons": [{"rule": "x.y", "severity": "warning", "message": "m", "overridable": false}], "suggestions": [], "risk": {"score": 0, "factors": []}}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "risk out of range",
			rego:    `decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 101, "factors": []}}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "deny without reason",
			rego:    `decision := {"outcome": "deny", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "extra key",
			rego:    `decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}, "why": 1}`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "not an object",
			rego:    `decision := "allow"`,
			wantErr: ErrOffSchema,
		},
		{
			name:    "undefined",
			rego:    `decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}} if input.never`,
			wantErr: ErrUndefined,
		},
		{
			// 3000 × 3000 iterations take far longer than the 5 ms deadline.
			name: "evaluation timeout",
			rego: `slow if {
	some i in numbers.range(1, 3000)
	some j in numbers.range(1, 3000)
	i * j == -1
}

decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}} if not slow`,
			opts:    []Option{EvalTimeout(5 * time.Millisecond)},
			wantErr: ErrTimeout,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bundleWith(tc.rego)
			e, err := Compile(context.Background(), b, tc.opts...)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			start := time.Now()
			d, err := e.Decide(context.Background(), realisticInput())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			assertFailClosed(t, d)
			if d.BundleHash != b.Hash() {
				t.Errorf("bundle hash %q", d.BundleHash)
			}
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %s: deadline not enforced", elapsed)
			}
		})
	}
}

func TestValidBundleDecisionPassesSchema(t *testing.T) {
	b := bundleWith(`decision := {
	"outcome": "approve",
	"approvals": [{"stage": 1, "role": "approver", "mode": "all", "approvers": ["u-1"]}],
	"reasons": [{"rule": "custom.review", "severity": "info", "message": "m", "overridable": false}],
	"suggestions": [{"rule": "custom.review", "message": "s", "patch": {"recipients": 10}}],
	"risk": {"score": 12, "factors": [{"name": "custom", "points": 12}]},
}`)
	e, err := Compile(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), realisticInput())
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != OutcomeApprove || d.Approvals[0].Approvers[0] != "u-1" || d.Risk.Score != 12 ||
		d.Suggestions[0].Patch["recipients"] == nil {
		t.Errorf("decoded %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
		wantLine int
	}{
		{
			name:     "syntax error",
			files:    map[string]string{"decision.rego": "package herald\n\ndecision := {\"a\" 1}\n\nother := 2\n"},
			wantFile: "decision.rego", wantLine: 3,
		},
		{
			name:     "strict: unused variable",
			files:    map[string]string{"decision.rego": "package herald\n\ndecision := 1 if {\n\tx := 2\n}\n"},
			wantFile: "decision.rego", wantLine: 4,
		},
		{
			name:     "unsafe variable",
			files:    map[string]string{"decision.rego": "package herald\n\ndecision := y if {\n\ty > 1\n}\n"},
			wantFile: "decision.rego", wantLine: 4,
		},
		{
			name:     "bad data.json",
			files:    map[string]string{"decision.rego": "package herald\n\ndecision := 1\n", "data.json": "{\n\"a\": 1,\n}\n"},
			wantFile: "data.json", wantLine: 3,
		},
		{
			name:  "missing decision",
			files: map[string]string{"other.rego": "package herald\n\nsomething := 1\n"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Bundle{Files: map[string][]byte{}}
			for p, s := range tc.files {
				b.Files[p] = []byte(s)
			}
			_, err := Compile(context.Background(), b)
			var ce *CompileError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("want *CompileError, got %v", err)
			}
			p := ce.Problems[0]
			if p.File != tc.wantFile || p.Line != tc.wantLine {
				t.Errorf("problem at %s:%d, want %s:%d (%v)", p.File, p.Line, tc.wantFile, tc.wantLine, err)
			}
		})
	}
}

func TestCompileIgnoresTestFiles(t *testing.T) {
	b := bundleWith(`decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}}`)
	// A test file that does not even parse must not affect evaluation.
	b.Files["broken_test.rego"] = []byte("package herald_test\n\ntest_x if {\n")
	if _, err := Compile(context.Background(), b); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if _, err := RunTests(context.Background(), b); err == nil {
		t.Fatal("RunTests of a broken test file: want an error")
	}
}

func TestExplain(t *testing.T) {
	e := mustEngine(t)
	in := realisticInput()
	in.Now = ts("2026-03-10T21:30:00Z")
	d, lines, err := e.Explain(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.Decide(context.Background(), in)
	if d.Outcome != want.Outcome || !slices.Equal(ruleIDs(d), ruleIDs(want)) {
		t.Errorf("explain decided %s %v, decide %s %v", d.Outcome, ruleIDs(d), want.Outcome, ruleIDs(want))
	}
	if len(lines) == 0 {
		t.Fatal("no failing trace lines")
	}
	t.Logf("%d failing lines, e.g. %q", len(lines), lines[:min(3, len(lines))])
	// The opt-out check failed for this contact, so it must be in the trace.
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "consent.rego:") && strings.HasSuffix(l, ": lib.contact.opted_out == true")
	}) {
		t.Errorf("trace lacks the opt-out check; got %d lines, first: %q", len(lines), lines[0])
	}
}

func TestDefaultEvalTimeout(t *testing.T) {
	e, err := Compile(context.Background(), DefaultBundle())
	if err != nil {
		t.Fatal(err)
	}
	if e.timeout != DefaultEvalTimeout || DefaultEvalTimeout != 50*time.Millisecond {
		t.Errorf("timeout %s", e.timeout)
	}
}

func TestDecideHonoursCallerCancellation(t *testing.T) {
	b := bundleWith(`slow if {
	some i in numbers.range(1, 3000)
	some j in numbers.range(1, 3000)
	i * j == -1
}

decision := {"outcome": "allow", "reasons": [], "suggestions": [], "risk": {"score": 0, "factors": []}} if not slow`)
	e, err := Compile(context.Background(), b, EvalTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	d, err := e.Decide(ctx, realisticInput())
	if err == nil || errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	assertFailClosed(t, d)
}
