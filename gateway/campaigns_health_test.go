package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestCampaignEndAtSkipsLateDeferrals: a campaign ending in three hours;
// one recipient already had today's marketing message (cap 1 a day), so
// the policy defers theirs to tomorrow, past the end. They are skipped
// (campaign.window_closed) with no action and nothing reserved, never sent
// late; the others are delivered.
func TestCampaignEndAtSkipsLateDeferrals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		ctx := context.Background()
		op := e.keys[herald.RoleOperator]
		ids := e.importPeople("4001", "4002", "4003")
		if first := e.post("/v1/actions", op, e.sendReq("4003", "marketing", "Earlier today"), http.StatusCreated); first.str("decision", "outcome") != "allow" {
			t.Fatalf("setup: %s", first.raw)
		}
		end := e.s.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339)
		cid := e.post("/v1/campaigns", op, map[string]any{"name": "Short", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "Today only"}, "contacts": ids, "accounts": []string{e.account.ID}, "end_at": end}, http.StatusCreated).str("id")
		e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusOK)
		if n := e.runFanout(e.runner("r1")); n != 2 {
			t.Fatalf("fan-out submitted %d, want 2 (the capped one is skipped)", n)
		}
		e.deliverAll()
		if d := e.delivered(); d["4001"] != 1 || d["4002"] != 1 || d["4003"] != 1 {
			t.Fatalf("sandbox record %v: want one each (4003 only the earlier message)", d)
		}
		rs := path(e.do("GET", "/v1/campaigns/"+cid+"/results", op, nil).body, "results")
		if num(path(rs, "by_recipient_status")["skipped"]) != 1 || num(path(rs, "by_reason")["campaign.window_closed"]) != 1 {
			t.Fatalf("results: %v", rs)
		}
		sum := 0
		for _, bk := range rs["delivery_rate"].([]any) {
			sum += num(bk.(map[string]any)["delivered"])
		}
		if sum != 2 || rs["completion_estimate"] != nil {
			t.Fatalf("delivery rate counts %d deliveries, want 2; a finished campaign has no estimate: %v", sum, rs)
		}
		if n, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM actions"); n != 3 {
			t.Fatalf("%d actions, want 3 (the earlier one and two campaign sends)", n)
		}
		// Nothing was left behind for later.
		e.advance(30 * time.Hour)
		e.deliverAll()
		if d := e.delivered(); d["4003"] != 1 {
			t.Fatalf("the skipped recipient was sent later: %v", d)
		}
	})
}

// TestCampaignAvoidsUnhealthyAccounts: recipients fixed on three accounts;
// before they are submitted one account is frozen (as a peer flood
// freezes it) and another paused. No new recipient goes to either: the
// fan-out moves theirs to the healthy account (the others stay where they
// were), and records the account each was sent from.
func TestCampaignAvoidsUnhealthyAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newCampaignEnv(t, b)
		ctx := context.Background()
		op := e.keys[herald.RoleOperator]
		chats := make([]string, 24)
		for i := range chats {
			chats[i] = fmt.Sprint(5000 + i)
		}
		ids := e.importPeople(chats...)
		accts := []string{e.account.ID}
		for _, name := range []string{"flooded", "paused"} {
			a, err := e.s.CreateAccount(ctx, herald.Account{Org: e.org.ID, Name: name, Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
			if err != nil {
				t.Fatal(err)
			}
			accts = append(accts, a.ID)
		}
		cid := e.post("/v1/campaigns", op, map[string]any{"name": "Spread", "kind": "send_message", "purpose": "marketing",
			"template": map[string]any{"text": "Hello"}, "contacts": ids, "accounts": accts}, http.StatusCreated).str("id")
		e.post("/v1/campaigns/"+cid+"/schedule", op, nil, http.StatusOK)
		c, err := e.s.GetCampaign(ctx, e.org.ID, cid)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := fanout.Plan(ctx, e.s, c)
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		for _, r := range plan.Recipients {
			per[r.Account]++
		}
		if per[accts[0]] == 0 || per[accts[1]] == 0 || per[accts[2]] == 0 {
			t.Fatalf("setup: recipients per account %v", per)
		}
		if err := e.s.InTx(ctx, func(tx *store.Tx) error { return tx.MaterializeRecipients(ctx, e.org.ID, cid, plan.Recipients) }); err != nil {
			t.Fatal(err)
		}
		frozen, paused, until := herald.AccountFrozen, herald.AccountPaused, e.s.Now().Add(time.Hour)
		if _, err := e.s.UpdateAccount(ctx, e.org.ID, accts[1], store.AccountPatch{Status: &frozen, SetFrozenUntil: true, FrozenUntil: &until}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.UpdateAccount(ctx, e.org.ID, accts[2], store.AccountPatch{Status: &paused}); err != nil {
			t.Fatal(err)
		}
		if n := e.runFanout(e.runner("r1")); n != len(ids) {
			t.Fatalf("fan-out submitted %d of %d", n, len(ids))
		}
		for _, a := range accts[1:] {
			if n, _ := store.CountForTest(ctx, e.s, "SELECT count(*) FROM actions WHERE account_id = '"+a+"'"); n != 0 {
				t.Fatalf("%d actions on an unhealthy account", n)
			}
		}
		moved := 0
		err = e.s.CampaignRecipients(ctx, e.org.ID, cid, func(r store.Recipient) error {
			if r.Account != accts[0] {
				return fmt.Errorf("recipient %s recorded on %s", r.Contact, r.Account)
			}
			moved++
			return nil
		})
		if err != nil || moved != len(ids) {
			t.Fatalf("recipients: %d on the healthy account (err %v)", moved, err)
		}
		e.deliverAll()
		if got := len(e.sandbox.Messages()); got != len(ids) {
			t.Fatalf("sandbox record has %d messages, want %d", got, len(ids))
		}
	})
}
