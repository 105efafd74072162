package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// ruleKey is one series of herald_policy_decisions_by_rule_total.
type ruleKey struct{ stage, outcome, rule string }

// rulesOf adds one decision (as the API returned it) to want: each rule
// that gave a reason once, or "none".
func rulesOf(want map[ruleKey]int, stage string, decision any) {
	d, _ := decision.(map[string]any)
	outcome, _ := d["outcome"].(string)
	reasons, _ := d["reasons"].([]any)
	seen := map[string]bool{}
	for _, r := range reasons {
		rule, _ := r.(map[string]any)["rule"].(string)
		if !seen[rule] {
			seen[rule] = true
			want[ruleKey{stage, outcome, rule}]++
		}
	}
	if len(seen) == 0 {
		want[ruleKey{stage, outcome, "none"}]++
	}
}

// TestDecisionsByRuleAndAccountHealthMetrics: two organisations submit
// concurrently — people with consent (allowed), people without (denied by a
// consent rule), a channel — and the worker delivers. /metrics then counts
// every decision by stage, outcome and each rule exactly as the API
// reported the decisions, and every delivery attempt by the sending
// account; it names no person's chat id, contact, or text.
func TestDecisionsByRuleAndAccountHealthMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		ctx := context.Background()
		orgB, err := e.s.CreateOrg(ctx, "Globex", "Europe/Paris")
		if err != nil {
			t.Fatal(err)
		}
		accB, err := e.s.CreateAccount(ctx, herald.Account{Org: orgB.ID, Name: "bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		opB := e.newKey(orgB.ID, "op-b", herald.RoleOperator)
		opA := e.keys[herald.RoleOperator]

		const consented, text = 3, "Rule-Metric-Armadillo"
		var people []map[string]any
		for i := range consented {
			people = append(people, map[string]any{"chat_id": fmt.Sprint(5551100 + i), "purpose": "support", "legal_basis": "contract",
				"source": "ticket"})
		}
		if imp := e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], people); imp.status != http.StatusOK {
			t.Fatalf("import = %d %s", imp.status, imp.raw)
		}

		type submit struct {
			token string
			req   map[string]any
		}
		var subs []submit
		for i := range consented {
			subs = append(subs, submit{opA, e.sendReq(fmt.Sprint(5551100+i), "support", text)})   // allowed
			subs = append(subs, submit{opA, e.sendReq(fmt.Sprint(5552200+i), "marketing", text)}) // no consent: denied
		}
		for i := range 4 {
			r := e.sendReq(fmt.Sprint(-1003000+i), "transactional", text)
			r["account"] = accB.ID
			subs = append(subs, submit{opB, r})
		}
		var (
			mu      sync.Mutex
			wg      sync.WaitGroup
			want    = map[ruleKey]int{}
			ids     = map[string]string{} // action id → its token
			denied  int
			contact []string
		)
		for _, s := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do("POST", "/v1/actions", s.token, s.req)
				mu.Lock()
				defer mu.Unlock()
				a, _ := r.body["action"].(map[string]any)
				if r.status != http.StatusCreated || a == nil {
					t.Errorf("submit %v = %d %s", s.req["target"], r.status, r.raw)
					return
				}
				rulesOf(want, "submit", a["decision"])
				if a["status"] == "denied" {
					denied++
				} else {
					ids[a["id"].(string)] = s.token
				}
				if c, _ := a["contact"].(string); c != "" {
					contact = append(contact, c)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if denied != consented || len(ids) != consented+4 {
			t.Fatalf("%d denied, %d scheduled; want %d and %d", denied, len(ids), consented, consented+4)
		}
		if want[ruleKey{"submit", "deny", "consent.missing"}] != consented {
			t.Fatalf("the API's denials do not name consent.missing each: %v", want)
		}

		e.deliverAll()
		byAccount := map[string]int{}
		for id, tok := range ids {
			a := e.do("GET", "/v1/actions/"+id, tok, nil).body["action"].(map[string]any)
			if a["status"] != "delivered" {
				t.Fatalf("action %s is %v", id, a["status"])
			}
			// The stored decision is the send-time one once delivered.
			rulesOf(want, "send", a["decision"])
			byAccount[a["account"].(string)]++
		}
		if byAccount[e.account.ID] != consented || byAccount[accB.ID] != 4 {
			t.Fatalf("deliveries by account %v", byAccount)
		}

		m := string(e.do("GET", "/metrics", "", nil).raw)
		got := map[ruleKey]int{}
		for line := range strings.SplitSeq(m, "\n") {
			var k ruleKey
			var n int
			if _, err := fmt.Sscanf(strings.NewReplacer("{", " ", "}", " ", ",", " ", `"`, " ").Replace(line),
				"herald_policy_decisions_by_rule_total outcome= %s rule= %s stage= %s %d", &k.outcome, &k.rule, &k.stage, &n); err == nil {
				got[k] = n
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("decisions by rule in /metrics:\n%v\nthe API's decisions:\n%v", got, want)
		}
		for acc, n := range map[string]int{e.account.ID: consented, accB.ID: 4} {
			line := fmt.Sprintf(`herald_account_delivery_attempts_total{account=%q,class="none",connector="sandbox"} %d`, acc, n)
			if !strings.Contains(m, line+"\n") {
				t.Errorf("metrics lack %s", line)
			}
		}
		for _, secret := range append([]string{text, "5551100", "5552200", "-1003000", "ticket"}, contact...) {
			if strings.Contains(m, secret) {
				t.Errorf("/metrics carries %q", secret)
			}
		}
	})
}
