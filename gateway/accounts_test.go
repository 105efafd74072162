package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

const botToken = "123456789:AAE-secret-Zebra-Quokka-token-xyz0987"

func TestAccountSecretsGoToTheStoreOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		admin := e.keys[herald.RoleAdmin]
		r := e.do("POST", "/v1/accounts", admin, map[string]any{"name": "shop bot", "kind": "bot", "connector": "botapi",
			"secret": map[string]string{"token": botToken}})
		if r.status != http.StatusCreated || strings.Contains(string(r.raw), "Zebra") {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		id := r.str("id")
		path := r.str("secret", "path")
		if path != "herald/orgs/"+e.org.ID+"/accounts/"+id || r.body["secret"].(map[string]any)["version"].(float64) != 1 {
			t.Fatalf("secret info = %s", r.raw)
		}
		sec, err := e.secrets.Get(context.Background(), path)
		if err != nil || sec.Data["token"] != botToken {
			t.Fatalf("the store does not hold the token: %v", err)
		}
		// Rotation: a new version, recorded in the ledger without the value.
		const newToken = "123456789:AAE-rotated-token-value-0000000000"
		p := e.do("PATCH", "/v1/accounts/"+id, admin, map[string]any{"secret": map[string]string{"token": newToken}})
		if p.status != 200 || p.body["secret"].(map[string]any)["version"].(float64) != 2 {
			t.Fatalf("rotate = %d %s", p.status, p.raw)
		}
		entries, _ := e.s.LedgerEntries(context.Background(), e.org.ID, store.LedgerFilter{Kind: "secret.rotated"})
		if len(entries) != 2 || entries[1].Attrs["new_version"].(float64) != 2 {
			t.Fatalf("secret.rotated entries = %+v", entries)
		}
		// Nothing anywhere in the database holds the token.
		for _, tok := range []string{botToken, newToken} {
			for _, q := range []string{"accounts", "ledger_entries", "ledger_payloads", "actions"} {
				n, err := store.CountForTest(context.Background(), e.s, "SELECT count(*) FROM "+q+" WHERE "+textOf(b, q)+" LIKE '%"+tok[10:30]+"%'")
				if err != nil || n != 0 {
					t.Fatalf("%s holds the token (%d rows, %v)", q, n, err)
				}
			}
		}
		before := e.counts()
		bad := e.do("POST", "/v1/accounts", admin, map[string]any{"name": "x", "kind": "bot", "connector": "botapi", "secret": map[string]string{"token": "nope", "extra": "y"}})
		if bad.status != 422 || !strings.Contains(string(bad.raw), `"field":"secret.token"`) || !strings.Contains(string(bad.raw), `"field":"secret.extra"`) {
			t.Fatalf("bad secret = %d %s", bad.status, bad.raw)
		}
		sand := e.do("POST", "/v1/accounts", admin, map[string]any{"name": "x", "kind": "bot", "connector": "sandbox", "secret": map[string]string{"token": botToken}})
		if sand.status != 422 {
			t.Fatalf("sandbox with a secret = %d", sand.status)
		}
		if after := e.counts(); after != before {
			t.Fatalf("rejected account requests changed %+v → %+v", before, after)
		}
	})
}

// textOf casts a whole row to text for a LIKE scan, per database.
func textOf(b storetest.Backend, table string) string {
	if b == storetest.Postgres {
		return table + "::text"
	}
	cols := map[string]string{
		"accounts":        "name || secret_ref || webhook_secret_hash",
		"ledger_entries":  "coalesce(refs,'') || coalesce(attrs,'')",
		"ledger_payloads": "CAST(data AS TEXT)",
		"actions":         "content || coalesce(decision,'')",
	}
	return "(" + cols[table] + ")"
}
