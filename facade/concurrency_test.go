package facade_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store/storetest"
)

// tenant is a second organisation with its own bot account, admin and
// compliance officer, on the same Herald.
type tenant struct {
	org, account, admin, officer string
}

func (e *env) tenant(name string) tenant {
	e.t.Helper()
	ctx := context.Background()
	o, err := e.s.CreateOrg(ctx, name, "Europe/Berlin")
	if err != nil {
		e.t.Fatal(err)
	}
	acc, err := e.s.CreateAccount(ctx, herald.Account{Org: o.ID, Name: name + " bot", Kind: herald.AccountBot,
		Connector: herald.ConnectorBotAPI, SecretRef: e.account.SecretRef})
	if err != nil {
		e.t.Fatal(err)
	}
	tn := tenant{org: o.ID, account: acc.ID}
	for role, dst := range map[string]*string{herald.RoleAdmin: &tn.admin, herald.RoleComplianceOfficer: &tn.officer} {
		if _, *dst, err = e.s.CreateAPIKey(ctx, o.ID, name+"-"+role, role, "", nil); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.s.EnsureRole(ctx, o.ID, name+"-"+role, role, "test"); err != nil {
			e.t.Fatal(err)
		}
	}
	return tn
}

// TestFacadeConcurrentBots: identical calls racing each other send once
// and all get the same Message; bots of two organisations sending at once
// each reach their own contacts, and a token of one organisation cannot
// address the other's account.
func TestFacadeConcurrentBots(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b, envOpts{})
		tokA := e.facadeToken("shop-bot", herald.RoleOperator, herald.PurposeTransactional, "")
		other := e.tenant("Globex")
		r := e.do("POST", "/v1/accounts/"+other.account+"/facade-tokens", other.admin,
			map[string]any{"principal": "globex-bot", "role": "operator", "purpose": "transactional"})
		if r.status != http.StatusCreated {
			t.Fatalf("token for Globex: %d %s", r.status, r.raw)
		}
		tokB := r.str("token")
		for i := 0; i < 4; i++ {
			e.contact(fmt.Sprint(8100+i), herald.PurposeTransactional)
		}
		rows := []map[string]any{}
		for i := 0; i < 4; i++ {
			rows = append(rows, map[string]any{"chat_id": fmt.Sprint(8200 + i), "purpose": "transactional",
				"legal_basis": "contract", "source": "orders"})
		}
		if r := e.do("POST", "/v1/contacts:import", other.officer, rows); r.status != http.StatusOK {
			t.Fatalf("Globex contacts: %d %s", r.status, r.raw)
		}

		// Eight identical calls at once: one send, one answer.
		var wg sync.WaitGroup
		ids := make([]float64, 8)
		for i := range ids {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res := e.bot(tokA, "sendMessage", map[string]any{"chat_id": "8100", "text": "same"})
				if res.status == http.StatusOK {
					ids[i] = res.num("result", "message_id")
				} else if res.status != http.StatusTooManyRequests {
					t.Errorf("identical call: %d %s", res.status, res.raw)
				}
			}(i)
		}
		wg.Wait()
		if n := len(e.fake.MessagesTo("8100")); n != 1 {
			t.Fatalf("eight identical concurrent calls sent %d messages", n)
		}
		for _, id := range ids {
			if id != 0 && id != float64(e.fake.MessagesTo("8100")[0].MessageID) {
				t.Fatalf("answers name different messages: %v", ids)
			}
		}

		// Two organisations' bots at once, to their own contacts.
		for i := 0; i < 4; i++ {
			wg.Add(2)
			go func(i int) {
				defer wg.Done()
				if res := e.bot(tokA, "sendMessage", map[string]any{"chat_id": 8100 + i, "text": fmt.Sprint("acme ", i)}); res.status != http.StatusOK {
					t.Errorf("Acme send %d: %d %s", i, res.status, res.raw)
				}
			}(i)
			go func(i int) {
				defer wg.Done()
				if res := e.bot(tokB, "sendMessage", map[string]any{"chat_id": 8200 + i, "text": fmt.Sprint("globex ", i)}); res.status != http.StatusOK {
					t.Errorf("Globex send %d: %d %s", i, res.status, res.raw)
				}
			}(i)
		}
		wg.Wait()
		for i := 0; i < 4; i++ {
			a, g := e.fake.MessagesTo(fmt.Sprint(8100+i)), e.fake.MessagesTo(fmt.Sprint(8200+i))
			if len(g) != 1 || g[0].Text != fmt.Sprint("globex ", i) || len(a) == 0 || a[len(a)-1].Text != fmt.Sprint("acme ", i) {
				t.Fatalf("chat %d: acme %+v globex %+v", i, a, g)
			}
		}
		// Each organisation's ledger holds only its own sends.
		if k := e.ledgerKinds(); k["action.delivered"] != 5 {
			t.Fatalf("Acme ledger: %v", k)
		}
	})
}
