package main

import (
	"cmp"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors/telegramtest"
)

// TestRetryIsPartOfTheActionsTrace: Telegram (the fake) answers the first
// attempt of a send 429 "retry after N" — the group is in slow mode and the
// previous message went a moment ago — and accepts the second. The action's
// trace, exported over OTLP from a real herald serve, holds both attempts:
// two worker.deliver spans (attempts in sequence) under the submitting
// request, each with its own telegram.call (retryable, then none); the
// action's events name that trace; and the fake's own record shows one 429
// and the message delivered once.
func TestRetryIsPartOfTheActionsTrace(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{AcceptAnyToken: true})
	defer fake.Close()
	const group = "-100424242"
	fake.Script(group, telegramtest.SlowMode(3*time.Second))
	recv := &otlpReceiver{}
	rs := httptest.NewServer(recv)
	defer rs.Close()

	p := startTraced(t, "herald", rs.URL, t.TempDir(), "", "--botapi-url", fake.URL())
	key := keyPattern.FindString(p.stdout.String())
	if key == "" {
		t.Fatalf("no bootstrap key printed: %q", p.stdout.String())
	}
	acc := p.call(t, "POST", "/v1/accounts", key, map[string]any{"name": "ops", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": "424242:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"}})
	accID, _ := acc["id"].(string)
	if accID == "" {
		t.Fatalf("create account: %v", acc)
	}
	submit := func(text string) string {
		t.Helper()
		res := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": accID, "target": group,
			"purpose": "transactional", "text": text})
		a, _ := res["action"].(map[string]any)
		if a == nil || a["status"] != "scheduled" {
			t.Fatalf("submit: %v", res)
		}
		return a["id"].(string)
	}
	delivered := func(id string) map[string]any {
		t.Helper()
		var got map[string]any
		waitFor(t, 60*time.Second, id+" delivered", func() (bool, string) {
			got = p.call(t, "GET", "/v1/actions/"+id, key, nil)
			a, _ := got["action"].(map[string]any)
			return a["status"] == "delivered", fmt.Sprint(a["status"], " ", a["error_code"])
		})
		return got
	}
	delivered(submit("first"))
	id := submit("second")
	got := delivered(id)
	_ = p.cmd.Process.Signal(os.Interrupt) // a graceful stop flushes the last spans
	_, _ = p.cmd.Process.Wait()

	// Telegram's own record: one 429, each message delivered once.
	if st := fake.Stats(); st.TooManyRequests != 1 {
		t.Fatalf("the fake answered %d 429s, want exactly 1 (the scripted slow mode): %+v", st.TooManyRequests, st)
	}
	var texts []string
	for _, m := range fake.MessagesTo(group) {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, ",") != "first,second" {
		t.Fatalf("the group received %q, want first then second once each", texts)
	}

	spans, _ := recv.snapshot()
	var delivers []otlpSpan
	for _, s := range spans {
		if s.name == "worker.deliver" && s.attrs["herald.action.id"] == id {
			delivers = append(delivers, s)
		}
	}
	if len(delivers) != 2 {
		t.Fatalf("%d worker.deliver spans for the retried action, want 2 (one per attempt): %v", len(delivers), names(spans))
	}
	slices.SortFunc(delivers, func(a, b otlpSpan) int { return cmp.Compare(a.start, b.start) })
	traceID := delivers[0].traceID
	if delivers[1].traceID != traceID {
		t.Fatalf("the attempts are in different traces: %s and %s", traceID, delivers[1].traceID)
	}
	var attempts []string
	for _, d := range delivers {
		attempts = append(attempts, d.attrs["herald.job.attempt"])
	}
	if attemptNumber(t, attempts[1]) != attemptNumber(t, attempts[0])+1 {
		t.Errorf("attempt attributes %v, want consecutive attempts", attempts)
	}
	// Both attempts hang under the submitting request's spans.
	byID := map[string]otlpSpan{}
	for _, s := range spans {
		byID[s.spanID] = s
	}
	for _, d := range delivers {
		if parent, ok := byID[d.parentSpanID]; !ok || parent.traceID != traceID {
			t.Errorf("worker.deliver (attempt %s) has no parent in the trace", d.attrs["herald.job.attempt"])
		}
	}
	// Each attempt made its own call to Telegram: retryable, then delivered.
	var classes []string
	for _, d := range delivers {
		for _, s := range spans {
			if s.name == "telegram.call" && s.traceID == traceID && under(byID, s, d.spanID) {
				classes = append(classes, s.attrs["herald.delivery.class"])
			}
		}
	}
	if strings.Join(classes, ",") != "retryable,none" {
		t.Errorf("telegram.call classes per attempt %v, want retryable then none", classes)
	}
	// The action's history names the same trace, on both sides of the retry.
	events, _ := got["events"].([]any)
	var moves []string
	for _, e := range events {
		ev := e.(map[string]any)
		moves = append(moves, fmt.Sprint(ev["to"]))
		if ev["trace_id"] != traceID {
			t.Errorf("event %v carries trace %v, want %s", ev["to"], ev["trace_id"], traceID)
		}
	}
	if !isSubsequence([]string{"received", "scheduled", "sending", "scheduled", "sending", "delivered"}, moves) {
		t.Errorf("events %v, want a sending → scheduled retry before delivered", moves)
	}
}

// attemptNumber reads an OTLP int attribute as attrMap printed it ("&{N}").
func attemptNumber(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(strings.Trim(s, "&{}"), "%d", &n); err != nil {
		t.Fatalf("attempt attribute %q: %v", s, err)
	}
	return n
}

// under reports whether s descends from the span with id ancestor.
func under(byID map[string]otlpSpan, s otlpSpan, ancestor string) bool {
	for range 32 {
		if s.parentSpanID == ancestor {
			return true
		}
		p, ok := byID[s.parentSpanID]
		if !ok {
			return false
		}
		s = p
	}
	return false
}
