package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

var (
	campaignEngineOnce sync.Once
	campaignEng        *policies.Engine
	campaignEngErr     error
)

// campaignEngine is the default bundle with a generous evaluation deadline:
// these tests are about campaign semantics, and on a loaded two-core box
// under the race detector a decision can miss the production 50 ms
// deadline and fail closed (policy.error), which other tests cover.
func campaignEngine(t testing.TB) *policies.Engine {
	campaignEngineOnce.Do(func() {
		campaignEng, campaignEngErr = policies.Compile(context.Background(), policies.DefaultBundle(), policies.EvalTimeout(10*time.Second))
	})
	if campaignEngErr != nil {
		t.Fatalf("compile default bundle: %v", campaignEngErr)
	}
	return campaignEng
}

// newCampaignEnv is newEnv with campaignEngine.
func newCampaignEnv(t testing.TB, b storetest.Backend) *env {
	return newEnvWith(t, b, campaignEngine(t))
}

// runner is a fan-out runner over e's store, submitting through a real
// pipeline (same authorizer, same policy engine as e's HTTP API).
func (e *env) runner(id string) *fanout.Runner {
	pl := &gateway.Pipeline{Store: e.s, Authz: e.authz, Decider: campaignEngine(e.t)}
	return &fanout.Runner{Store: e.s, Submit: gateway.CampaignSubmitter{Pipeline: pl}, ID: id, Yield: time.Microsecond}
}

// importPeople imports marketing contacts (chat ids given) and returns their ids.
func (e *env) importPeople(chats ...string) []string {
	e.t.Helper()
	rows := make([]map[string]any, len(chats))
	for i, c := range chats {
		rows[i] = map[string]any{"chat_id": c, "purpose": "marketing", "legal_basis": "consent", "source": "signup form",
			"timezone": "Europe/Berlin", "language": "en"}
	}
	r := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], rows)
	if r.status != http.StatusOK {
		e.t.Fatalf("import: %d %s", r.status, r.raw)
	}
	ids := []string{}
	for _, v := range r.body["contacts"].([]any) {
		ids = append(ids, v.(string))
	}
	return ids
}

func (e *env) label(contact string, body map[string]any) {
	e.t.Helper()
	if r := e.do("PATCH", "/v1/contacts/"+contact+"/labels", e.keys[herald.RoleComplianceOfficer], body); r.status != http.StatusOK {
		e.t.Fatalf("label %s: %d %s", contact, r.status, r.raw)
	}
}

func (e *env) post(path, token string, body any, want int) response {
	e.t.Helper()
	r := e.do("POST", path, token, body)
	if r.status != want {
		e.t.Fatalf("POST %s: %d %s, want %d", path, r.status, r.raw, want)
	}
	return r
}

func (e *env) runFanout(r *fanout.Runner) int {
	e.t.Helper()
	n, err := r.RunOnce(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// delivered returns how many sandbox messages went to each chat.
func (e *env) delivered() map[string]int {
	out := map[string]int{}
	for _, m := range e.sandbox.Messages() {
		out[m.ChatID]++
	}
	return out
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func path(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}

// TestCampaignKeepsEveryPerRecipientGuarantee: one campaign to a tagged
// segment of five people, through the whole product (HTTP API, fan-out,
// pipeline, worker, sandbox connector as witness). The opted-out person is
// denied, the person already messaged today is deferred (cap 1), the person
// without a first_name is invalid, the two others get the message with
// their name escaped for HTML; the preview and the dry run predicted
// exactly that; a second fan-out pass creates nothing new.
func TestCampaignKeepsEveryPerRecipientGuarantee(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op, co := e.keys[herald.RoleOperator], e.keys[herald.RoleComplianceOfficer]
		ids := e.importPeople("1001", "1002", "1003", "1004", "1005", "1006")
		ann, bob, opted, capped, nameless, outsider := ids[0], ids[1], ids[2], ids[3], ids[4], ids[5]
		for i, id := range ids[:5] {
			body := map[string]any{"add_tags": []string{"vip", "spring"}}
			if id != nameless {
				body["attributes"] = map[string]any{"first_name": []string{"<Ann & Co>", "Bob", "Cy", "Di"}[i]}
			}
			e.label(id, body)
		}
		e.label(outsider, map[string]any{"tags": []string{"spring"}, "attributes": map[string]any{"first_name": "Out"}})
		e.post("/v1/contacts/"+opted+"/opt-out", co, nil, http.StatusOK)
		first := e.post("/v1/actions", op, e.sendReq("1004", "marketing", "Earlier today"), http.StatusCreated)
		if first.str("decision", "outcome") != "allow" {
			t.Fatalf("setup: first message not allowed: %s", first.raw)
		}

		seg := e.post("/v1/segments", op, map[string]any{"name": "VIPs", "filter": map[string]any{"tags": []string{"vip", "spring"}}}, http.StatusCreated)
		segID := seg.str("id")
		pv := e.do("GET", "/v1/segments/"+segID+"/preview?purpose=marketing&sample=10", op, nil)
		if pv.status != http.StatusOK {
			t.Fatalf("preview: %d %s", pv.status, pv.raw)
		}
		p := path(pv.body, "preview")
		if num(p["count"]) != 5 || num(p["eligible"]) != 3 || num(path(p, "excluded")["consent.opted_out"]) != 1 ||
			num(path(p, "excluded")["frequency.recipient_daily"]) != 1 || len(p["sample"].([]any)) != 5 {
			t.Fatalf("preview: %s", pv.raw)
		}

		camp := e.post("/v1/campaigns", op, map[string]any{"name": "Spring", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "Hi <b>{{first_name}}</b>, spring is here", "parse_mode": "HTML"},
			"segment":  segID, "accounts": []string{e.account.ID}}, http.StatusCreated)
		cid := camp.str("id")
		before := e.counts()
		dry := e.post("/v1/campaigns/"+cid+"/dry-run?samples=5", op, nil, http.StatusOK)
		if after := e.counts(); after != before {
			t.Fatalf("a dry run changed state: %+v → %+v", before, after)
		}
		out := path(dry.body, "prediction", "outcomes")
		if num(out["allow"]) != 2 || num(out["deny"]) != 1 || num(out["defer"]) != 1 || num(out["invalid"]) != 1 {
			t.Fatalf("dry run outcomes: %s", dry.raw)
		}
		rules := path(dry.body, "prediction", "by_rule")
		if num(rules["invalid:template.missing_variable:first_name"]) != 1 || num(rules["defer:frequency.recipient_daily"]) != 1 {
			t.Fatalf("dry run rules: %v", rules)
		}

		e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusOK)
		r := e.runner("r1")
		if n := e.runFanout(r); n != 4 {
			t.Fatalf("fan-out submitted %d recipients, want 4 (one is invalid)", n)
		}
		e.deliverAll()
		got := e.delivered()
		if got["1001"] != 1 || got["1002"] != 1 || got["1003"] != 0 || got["1004"] != 1 || got["1005"] != 0 || got["1006"] != 0 {
			t.Fatalf("sandbox record: %v; want 1001 and 1002 once, 1004 once (the earlier message), nobody else", got)
		}
		for _, m := range e.sandbox.Messages() {
			if m.ChatID == "1001" && m.Text != "Hi <b>&lt;Ann &amp; Co&gt;</b>, spring is here" {
				t.Fatalf("Ann's message: %q", m.Text)
			}
		}
		res := e.do("GET", "/v1/campaigns/"+cid+"/results", op, nil)
		rs := path(res.body, "results")
		if num(rs["recipients"]) != 5 || num(path(rs, "by_action_status")["delivered"]) != 2 || num(path(rs, "by_action_status")["denied"]) != 1 ||
			num(path(rs, "by_action_status")["scheduled"]) != 1 || num(path(rs, "by_recipient_status")["invalid"]) != 1 ||
			num(path(rs, "by_reason")["template.missing_variable:first_name"]) != 1 {
			t.Fatalf("results: %s", res.raw)
		}
		// The capped person's action waits for tomorrow; the opted-out one's is denied by the consent rule.
		var deferredAt time.Time
		err := e.s.CampaignRecipients(context.Background(), e.org.ID, cid, func(rc store.Recipient) error {
			if rc.Contact == capped {
				a, err := e.s.GetAction(context.Background(), e.org.ID, rc.Action)
				deferredAt = a.SendAt
				return err
			}
			return nil
		})
		if err != nil || !deferredAt.After(e.s.Now().Add(6*time.Hour)) {
			t.Fatalf("capped recipient's action is due at %v (err %v); want deferred to another day", deferredAt, err)
		}
		// The deferred recipient keeps the campaign open: the estimate is
		// their send time, whatever the delivery rate.
		est := path(rs, "completion_estimate")
		if num(est["open"]) != 1 || est["at"] != deferredAt.UTC().Format(time.RFC3339Nano) || len(rs["delivery_rate"].([]any)) == 0 {
			t.Fatalf("completion estimate %v, want open 1 at %v; rate %v", est, deferredAt, rs["delivery_rate"])
		}
		_ = ann
		_ = bob
		// A second pass (a restart) creates nothing.
		if n := e.runFanout(e.runner("r2")); n != 0 {
			t.Fatalf("second pass submitted %d", n)
		}
		if n, _ := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM actions"); n != 5 {
			t.Fatalf("%d actions, want 5 (1 earlier + 4 campaign)", n)
		}
		// Recipients stream as CSV with contact ids only.
		csvRes := e.do("GET", "/v1/campaigns/"+cid+"/recipients?format=csv", op, nil)
		if lines := strings.Count(string(csvRes.raw), "\n"); csvRes.status != 200 || lines != 6 || strings.Contains(string(csvRes.raw), "1001") {
			t.Fatalf("recipients csv: %d lines %s", lines, csvRes.raw)
		}
	})
}

// TestOverlappingCampaignsRespectTheCap: two campaigns reach the same
// person (cap: one marketing message a day), fanned out by two runners at
// once; the sandbox records exactly one message to them.
func TestOverlappingCampaignsRespectTheCap(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op := e.keys[herald.RoleOperator]
		ids := e.importPeople("2001", "2002", "2003")
		for _, id := range ids {
			e.label(id, map[string]any{"add_tags": []string{"all"}})
		}
		seg := e.post("/v1/segments", op, map[string]any{"name": "All", "filter": map[string]any{"tags": []string{"all"}}}, http.StatusCreated).str("id")
		var cids []string
		for i := 0; i < 2; i++ {
			c := e.post("/v1/campaigns", op, map[string]any{"name": fmt.Sprintf("C%d", i), "kind": "send_message", "purpose": "marketing",
				"template": map[string]any{"text": fmt.Sprintf("Offer %d", i)}, "segment": seg, "accounts": []string{e.account.ID}}, http.StatusCreated)
			cids = append(cids, c.str("id"))
			e.post("/v1/campaigns/"+c.str("id")+"/schedule", op, nil, http.StatusOK)
		}
		var wg sync.WaitGroup
		for i := 0; i < 2; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, err := e.runner(fmt.Sprintf("r%d", i)).RunOnce(context.Background()); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		e.runFanout(e.runner("r-final"))
		e.deliverAll()
		for chat, n := range e.delivered() {
			if n != 1 {
				t.Fatalf("chat %s got %d messages, want exactly 1", chat, n)
			}
		}
		if len(e.delivered()) != 3 {
			t.Fatalf("delivered to %v, want all three once", e.delivered())
		}
		deferred := 0
		for _, cid := range cids {
			rs := path(e.do("GET", "/v1/campaigns/"+cid+"/results", op, nil).body, "results")
			deferred += num(path(rs, "by_action_status")["scheduled"])
		}
		if deferred != 3 {
			t.Fatalf("%d recipients deferred, want 3 (the second campaign's): %s / %s", deferred,
				e.do("GET", "/v1/campaigns/"+cids[0]+"/results", op, nil).raw, e.do("GET", "/v1/campaigns/"+cids[1]+"/results", op, nil).raw)
		}
	})
}

// TestCampaignPauseResumeCancel: a campaign staggered into each person's
// afternoon window is paused (nothing goes out even when the time comes),
// resumed (everything goes out once), and another one is cancelled (its
// queued actions are cancelled, nothing goes out); every move is a ledger
// entry, and illegal moves are refused.
func TestCampaignPauseResumeCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op := e.keys[herald.RoleOperator]
		ids := e.importPeople("3001", "3002", "3003", "3004")
		mk := func(name string, contacts []string) string {
			c := e.post("/v1/campaigns", op, map[string]any{"name": name, "kind": "send_message", "purpose": "marketing",
				"template": map[string]any{"text": "Afternoon news"}, "contacts": contacts, "accounts": []string{e.account.ID},
				"window": map[string]any{"from": "16:00", "to": "17:00"}}, http.StatusCreated)
			return c.str("id")
		}
		paused, cancelled := mk("P", ids[:2]), mk("C", ids[2:])
		if r := e.do("POST", "/v1/campaigns/"+paused+"/pause", op, nil); r.status != http.StatusConflict || r.str("code") != "illegal_transition" {
			t.Fatalf("pausing a draft: %d %s", r.status, r.raw)
		}
		e.post("/v1/campaigns/"+paused+"/schedule", op, nil, http.StatusOK)
		e.post("/v1/campaigns/"+cancelled+"/schedule", op, nil, http.StatusOK)
		if n := e.runFanout(e.runner("r1")); n != 4 {
			t.Fatalf("submitted %d, want 4", n)
		}
		e.deliverAll()
		if len(e.sandbox.Messages()) != 0 {
			t.Fatal("sent before the recipients' window")
		}
		// Stopping a campaign is cancelling its sends: another operator may
		// not (operators cancel only their own), and nothing changes.
		other := e.newKey(e.org.ID, "operator-2", herald.RoleOperator)
		for _, move := range []string{"pause", "cancel"} {
			if r := e.do("POST", "/v1/campaigns/"+paused+"/"+move, other, nil); r.status != http.StatusForbidden || r.str("code") != "forbidden" {
				t.Fatalf("%s by another operator: %d %s", move, r.status, r.raw)
			}
		}
		if st := e.do("GET", "/v1/campaigns/"+paused, op, nil).str("campaign", "status"); st != "running" && st != "scheduled" {
			t.Fatalf("refused moves changed the campaign: status %q", st)
		}
		e.post("/v1/campaigns/"+paused+"/pause", op, nil, http.StatusOK)
		e.post("/v1/campaigns/"+cancelled+"/cancel", op, nil, http.StatusOK)
		e.advance(5 * time.Hour) // 17:00 Berlin is past; the window was 16:00–17:00
		e.deliverAll()
		e.runFanout(e.runner("r1"))
		if len(e.sandbox.Messages()) != 0 {
			t.Fatalf("a paused or cancelled campaign sent: %v", e.delivered())
		}
		e.post("/v1/campaigns/"+paused+"/resume", op, nil, http.StatusOK)
		e.deliverAll()
		got := e.delivered()
		if len(got) != 2 || got["3001"] != 1 || got["3002"] != 1 {
			t.Fatalf("after resume: %v, want 3001 and 3002 once", got)
		}
		rs := path(e.do("GET", "/v1/campaigns/"+cancelled+"/results", op, nil).body, "results")
		if num(path(rs, "by_action_status")["cancelled"]) != 2 {
			t.Fatalf("cancelled campaign results: %v", rs)
		}
		if r := e.do("POST", "/v1/campaigns/"+cancelled+"/resume", op, nil); r.status != http.StatusConflict {
			t.Fatalf("resuming a cancelled campaign: %d", r.status)
		}
		e.runFanout(e.runner("r1"))
		if st := e.do("GET", "/v1/campaigns/"+paused, op, nil).str("campaign", "status"); st != "completed" {
			t.Fatalf("paused-then-resumed campaign is %s after delivery, want completed", st)
		}
		n, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM ledger_entries WHERE kind LIKE 'campaign.%'")
		// created ×2, scheduled ×2, running ×2, materialized ×2, paused, cancelled, running (resume), completed
		if err != nil || n != 12 {
			t.Fatalf("%d campaign ledger entries (err %v), want 12", n, err)
		}
	})
}

// crashingSubmitter submits through the real pipeline and then, after
// `after` submissions, reports a failure as if the process died between the
// action's commit and the recipient's record.
type crashingSubmitter struct {
	fanout.Submitter
	after int64
	n     atomic.Int64
}

var errCrash = errors.New("simulated crash after commit")

func (c *crashingSubmitter) SubmitRecipient(ctx context.Context, p herald.Principal, s fanout.Submission, dry bool) (fanout.Outcome, error) {
	out, err := c.Submitter.SubmitRecipient(ctx, p, s, dry)
	if err == nil && c.n.Add(1) > c.after {
		return out, errCrash
	}
	return out, err
}

// TestFanoutResumesWithoutDuplicates: the fan-out dies right after the
// pipeline committed a recipient's action but before recording it; a new
// runner resumes, replays that recipient by its idempotency key, and the
// sandbox gets every recipient exactly once.
func TestFanoutResumesWithoutDuplicates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op := e.keys[herald.RoleOperator]
		chats := make([]string, 25)
		for i := range chats {
			chats[i] = fmt.Sprint(5000 + i)
		}
		ids := e.importPeople(chats...)
		c := e.post("/v1/campaigns", op, map[string]any{"name": "Crash", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "Once only"}, "contacts": ids, "accounts": []string{e.account.ID}}, http.StatusCreated)
		e.post("/v1/campaigns/"+c.str("id")+"/schedule", op, nil, http.StatusOK)
		r := e.runner("dies")
		r.Batch = 10
		r.Submit = &crashingSubmitter{Submitter: r.Submit, after: 13}
		if _, err := r.RunOnce(context.Background()); !errors.Is(err, errCrash) {
			t.Fatalf("want the simulated crash, got %v", err)
		}
		// The dead runner's lease is released by RunOnce's return here; a
		// real crash leaves it to expire (covered by ClaimCampaign's ttl).
		e.runFanout(e.runner("resumes"))
		e.deliverAll()
		got := e.delivered()
		res := path(e.do("GET", "/v1/campaigns/"+c.str("id")+"/results", op, nil).body, "results")
		if len(got) != 25 || num(path(res, "by_action_status")["delivered"]) != 25 {
			t.Fatalf("delivered to %d chats, want 25: %s", len(got), e.do("GET", "/v1/campaigns/"+c.str("id")+"/results", op, nil).raw)
		}
		for chat, n := range got {
			if n != 1 {
				t.Fatalf("chat %s got %d messages", chat, n)
			}
		}
		if n, _ := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM actions"); n != 25 {
			t.Fatalf("%d actions, want 25", n)
		}
	})
}

// TestCampaignBadInputChangesNothing: malformed segments, labels and
// campaigns are typed problems and store nothing; another organisation
// sees none of it.
func TestCampaignBadInputChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op, co := e.keys[herald.RoleOperator], e.keys[herald.RoleComplianceOfficer]
		ids := e.importPeople("7001")
		before := e.counts()
		for _, tc := range []struct {
			name, method, path, token string
			body                      any
			status                    int
			code, field               string
		}{
			{"segment bad tag", "POST", "/v1/segments", op, map[string]any{"name": "x", "filter": map[string]any{"tags": []string{"a,b"}}}, 422, "validation_failed", "filter.tags[0]"},
			{"segment nul name", "POST", "/v1/segments", op, map[string]any{"name": "a\x00b"}, 422, "validation_failed", "name"},
			{"segment invalid utf8", "POST", "/v1/segments", op, []byte("{\"name\":\"\xff\xfe\",\"filter\":{\"languages\":[\"\xff\"]}}"), 400, "invalid_encoding", ""},
			{"segment unknown field", "POST", "/v1/segments", op, map[string]any{"name": "x", "where": "1=1"}, 400, "invalid_json", "where"},
			{"segment bad consent", "POST", "/v1/segments", op, map[string]any{"name": "x", "filter": map[string]any{"consent": []map[string]any{{"purpose": "marketing", "state": "maybe"}}}}, 422, "validation_failed", "filter.consent[0].state"},
			{"labels bad attribute", "PATCH", "/v1/contacts/" + ids[0] + "/labels", co, map[string]any{"attributes": map[string]any{"First Name": "x"}}, 422, "validation_failed", "attributes.First Name"},
			{"labels empty", "PATCH", "/v1/contacts/" + ids[0] + "/labels", co, map[string]any{}, 422, "validation_failed", "tags"},
			{"labels by operator", "PATCH", "/v1/contacts/" + ids[0] + "/labels", op, map[string]any{"add_tags": []string{"x"}}, 403, "forbidden", ""},
			{"campaign no audience", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi"}, "accounts": []string{e.account.ID}}, 422, "validation_failed", "segment"},
			{"campaign bad variable", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi {{Name}}"}, "contacts": ids, "accounts": []string{e.account.ID}}, 422, "validation_failed", "template"},
			{"campaign broken markdown", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi *{{first_name}}", "parse_mode": "MarkdownV2"}, "contacts": ids, "accounts": []string{e.account.ID}}, 422, "validation_failed", ""},
			{"campaign unknown account", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi"}, "contacts": ids, "accounts": []string{"01900000-0000-7000-8000-000000000000"}}, 422, "validation_failed", "accounts[0]"},
			{"campaign unknown contact", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi"}, "contacts": []string{"01900000-0000-7000-8000-000000000000"}, "accounts": []string{e.account.ID}}, 422, "validation_failed", "contacts[0]"},
			{"campaign bad window", "POST", "/v1/campaigns", op, map[string]any{"name": "x", "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "hi"}, "contacts": ids, "accounts": []string{e.account.ID}, "window": map[string]any{"from": "25:00", "to": "10:00"}}, 422, "validation_failed", "window.from"},
			{"campaign by auditor", "POST", "/v1/campaigns", e.keys[herald.RoleAuditor], map[string]any{"name": "x"}, 403, "forbidden", ""},
			{"preview bad purpose", "GET", "/v1/segments/01900000-0000-7000-8000-000000000000/preview?purpose=spam", op, nil, 422, "validation_failed", "purpose"},
			{"unknown campaign", "POST", "/v1/campaigns/01900000-0000-7000-8000-000000000000/schedule", op, nil, 404, "not_found", ""},
		} {
			r := e.do(tc.method, tc.path, tc.token, tc.body)
			if r.status != tc.status || r.str("code") != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, r.status, r.raw, tc.status, tc.code)
				continue
			}
			if tc.field != "" && !strings.Contains(string(r.raw), `"field":"`+tc.field+`"`) {
				t.Errorf("%s: no error on field %q: %s", tc.name, tc.field, r.raw)
			}
		}
		if after := e.counts(); after != before {
			t.Fatalf("bad input changed state: %+v → %+v", before, after)
		}
		for _, table := range []string{"segments", "campaigns", "contact_tags", "contact_attributes"} {
			if n, _ := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM "+table); n != 0 {
				t.Fatalf("%s has %d rows after bad input", table, n)
			}
		}

		// Another organisation sees nothing of this one's campaigns or segments.
		seg := e.post("/v1/segments", op, map[string]any{"name": "Mine"}, http.StatusCreated).str("id")
		cid := e.post("/v1/campaigns", op, map[string]any{"name": "Mine", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "hi"}, "segment": seg, "accounts": []string{e.account.ID}}, http.StatusCreated).str("id")
		other, err := e.s.CreateOrg(context.Background(), "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		ok := e.newKey(other.ID, "other-op", herald.RoleOperator)
		for _, p := range []string{"/v1/segments/" + seg, "/v1/segments/" + seg + "/preview", "/v1/campaigns/" + cid, "/v1/campaigns/" + cid + "/results", "/v1/contacts/" + ids[0] + "/labels"} {
			if r := e.do("GET", p, ok, nil); r.status != http.StatusNotFound {
				t.Errorf("other org GET %s: %d", p, r.status)
			}
		}
		for _, p := range []string{"/v1/campaigns/" + cid + "/schedule", "/v1/campaigns/" + cid + "/dry-run"} {
			if r := e.do("POST", p, ok, nil); r.status != http.StatusNotFound {
				t.Errorf("other org POST %s: %d", p, r.status)
			}
		}
		if r := e.do("GET", "/v1/campaigns", ok, nil); !strings.Contains(string(r.raw), `"campaigns":[]`) {
			t.Errorf("other org lists campaigns: %s", r.raw)
		}
	})
}

// TestCalendarFlagsConflicts: the calendar shows queued actions and planned
// campaigns per account and day, and flags two campaigns reaching the same
// people over a daily cap of 1, a campaign landing in most recipients'
// quiet hours, and a user account over its safe daily volume.
func TestCalendarFlagsConflicts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		op := e.keys[herald.RoleOperator]
		chats := make([]string, 40)
		for i := range chats {
			chats[i] = fmt.Sprint(8000 + i)
		}
		ids := e.importPeople(chats...)
		for _, id := range ids[:3] {
			e.label(id, map[string]any{"add_tags": []string{"trio"}})
		}
		user, err := e.s.CreateAccount(context.Background(), herald.Account{Org: e.org.ID, Name: "ann", Kind: herald.AccountUser, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		seg := e.post("/v1/segments", op, map[string]any{"name": "Trio", "filter": map[string]any{"tags": []string{"trio"}}}, http.StatusCreated).str("id")
		tomorrow := time.Date(2026, 3, 11, 10, 0, 0, 0, time.UTC)
		mk := func(name string, start time.Time, audience map[string]any, account string) string {
			body := map[string]any{"name": name, "kind": "send_message", "purpose": "marketing", "template": map[string]any{"text": "Hello"},
				"accounts": []string{account}, "start_at": start.Format(time.RFC3339)}
			for k, v := range audience {
				body[k] = v
			}
			id := e.post("/v1/campaigns", op, body, http.StatusCreated).str("id")
			// The default bundle holds a new user account's cold sends for
			// review (approval.risk): such a campaign is approved once.
			switch r := e.do("POST", "/v1/campaigns/"+id+"/schedule", op, nil); r.status {
			case http.StatusOK:
			case http.StatusAccepted:
				e.post("/v1/campaigns/"+id+"/approve", e.keys[herald.RoleComplianceOfficer], nil, http.StatusOK)
			default:
				t.Fatalf("schedule %s: %d %s", name, r.status, r.raw)
			}
			return id
		}
		a := mk("A", tomorrow, map[string]any{"segment": seg}, e.account.ID)
		bb := mk("B", tomorrow.Add(2*time.Hour), map[string]any{"segment": seg}, e.account.ID)
		night := mk("Night", tomorrow.Add(12*time.Hour), map[string]any{"contacts": ids[3:8]}, e.account.ID) // 23:00 Berlin
		crowd := mk("Crowd", tomorrow.Add(24*time.Hour), map[string]any{"contacts": ids[:40]}, user.ID)
		req := e.sendReq("8039", "marketing", "Your offer")
		req["schedule_at"] = tomorrow.Add(time.Hour).Format(time.RFC3339)
		e.post("/v1/actions", op, req, http.StatusCreated)

		r := e.do("GET", "/v1/calendar?from=2026-03-10&to=2026-03-13", op, nil)
		if r.status != http.StatusOK {
			t.Fatalf("calendar: %d %s", r.status, r.raw)
		}
		days, _ := r.body["days"].([]any)
		if len(days) != 3 {
			t.Fatalf("days: %s", r.raw)
		}
		kinds := func(d any) map[string][]string {
			out := map[string][]string{}
			for _, c := range d.(map[string]any)["conflicts"].([]any) {
				cm := c.(map[string]any)
				var who []string
				list, _ := cm["campaigns"].([]any)
				for _, x := range list {
					who = append(who, x.(string))
				}
				if acc, _ := cm["account"].(string); acc != "" {
					who = append(who, acc)
				}
				out[cm["kind"].(string)] = append(out[cm["kind"].(string)], strings.Join(who, ","))
			}
			return out
		}
		if k := kinds(days[0]); len(k) != 0 {
			t.Errorf("today: unexpected conflicts %v", k)
		}
		d1 := kinds(days[1])
		if len(d1["overlap_cap"]) != 1 || d1["overlap_cap"][0] != a+","+bb || len(d1["quiet_hours"]) != 1 || d1["quiet_hours"][0] != night || len(d1["account_volume"]) != 0 {
			t.Errorf("tomorrow's conflicts: %v", d1)
		}
		d2 := kinds(days[2])
		if len(d2["account_volume"]) != 1 || d2["account_volume"][0] != user.ID {
			t.Errorf("day after: %v", d2)
		}
		_ = crowd
		var scheduled, planned int
		for _, ad := range days[1].(map[string]any)["accounts"].([]any) {
			m := ad.(map[string]any)
			if m["account"] == e.account.ID {
				scheduled, planned = num(m["scheduled_actions"]), num(m["planned_recipients"])
			}
		}
		if scheduled != 1 || planned != 11 {
			t.Errorf("tomorrow's bot: %d scheduled actions, %d planned recipients; want 1 and 11 (3+3+5)", scheduled, planned)
		}
		if r := e.do("GET", "/v1/calendar?from=2026-03-10", op, nil); r.status != 422 || r.str("code") != "validation_failed" {
			t.Errorf("calendar without to: %d %s", r.status, r.raw)
		}
		if r := e.do("GET", "/v1/calendar?from=2026-03-10&to=2026-09-10", op, nil); r.status != 422 {
			t.Errorf("calendar of six months: %d", r.status)
		}
	})
}

// TestImportCarriesTagsAndAttributes: JSON and CSV imports set tags and
// attributes that segments and templates then use; a bad tag rejects the
// whole import.
func TestImportCarriesTagsAndAttributes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		co, op := e.keys[herald.RoleComplianceOfficer], e.keys[herald.RoleOperator]
		r := e.do("POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": "601", "purpose": "marketing", "legal_basis": "consent",
			"source": "form", "tags": []string{"vip"}, "attributes": map[string]any{"first_name": "Ann"}}})
		if r.status != http.StatusOK {
			t.Fatalf("json import: %d %s", r.status, r.raw)
		}
		csvBody := "chat_id,purpose,legal_basis,source,tags,attr.first_name\n602,marketing,consent,form,vip; new,Bob\n603,marketing,consent,form,,\n"
		r = e.do("POST", "/v1/contacts:import", co, []byte(csvBody), "Content-Type", "text/csv")
		if r.status != http.StatusOK {
			t.Fatalf("csv import: %d %s", r.status, r.raw)
		}
		ids := r.body["contacts"].([]any)
		l := e.do("GET", "/v1/contacts/"+ids[0].(string)+"/labels", op, nil)
		if !strings.Contains(string(l.raw), `"tags":["new","vip"]`) || !strings.Contains(string(l.raw), `"first_name":"Bob"`) {
			t.Fatalf("labels after csv import: %s", l.raw)
		}
		seg := e.post("/v1/segments", op, map[string]any{"name": "VIP", "filter": map[string]any{"tags": []string{"vip"}}}, http.StatusCreated).str("id")
		pv := e.do("GET", "/v1/segments/"+seg+"/preview", op, nil)
		if num(path(pv.body, "preview")["count"]) != 2 {
			t.Fatalf("vip segment: %s", pv.raw)
		}
		before := e.counts()
		r = e.do("POST", "/v1/contacts:import", co, []byte("chat_id,purpose,legal_basis,source,tags\n604,marketing,consent,form,a\x01b\n"), "Content-Type", "text/csv")
		if r.status != 422 || r.str("code") != "import_rejected" || e.counts() != before {
			t.Fatalf("bad tag: %d %s", r.status, r.raw)
		}
	})
}
