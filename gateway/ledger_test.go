package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/access"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// ledgerAPI serves gateway.Ledger's routes over real HTTP, authenticated
// with the env's API keys (as server.go wires them), and returns its URL.
func ledgerAPI(t *testing.T, e *env, lg *gateway.Ledger) string {
	t.Helper()
	r := gin.New()
	auth := func(c *gin.Context) {
		tok, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		p, err := e.s.Authenticate(c.Request.Context(), tok)
		if err != nil {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"code": "unauthenticated"})
			return
		}
		c.Set("herald.principal", p)
	}
	authorize := func(c *gin.Context, resource, verb string) bool {
		p := c.MustGet("herald.principal").(herald.Principal)
		if err := (access.RoleMatrix{}).Authorize(c.Request.Context(), p, resource, verb); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"code": "forbidden"})
			return false
		}
		return true
	}
	lg.Routes(r, r.Group("/v1", auth), authorize)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func post(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestLedgerAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		e := newEnv(t, b)
		skey, vkey, _ := ledger.GenerateKey("herald.test/k1")
		signer, _ := ledger.NewSigner(skey)
		_, oldVkey, _ := ledger.GenerateKey("herald.test/k0")
		logs := store.NewLedgerLogs(e.s, "herald.test", signer)
		url := ledgerAPI(t, e, &gateway.Ledger{Logs: logs, VerifierKeys: []string{vkey, oldVkey}})
		op, aud := e.keys[herald.RoleOperator], e.keys[herald.RoleAuditor]

		var ids []string
		for _, text := range []string{"one", "two", "three"} {
			r := e.do("POST", "/v1/actions", op, e.sendReq("-1001234567890", "transactional", text))
			if r.status != http.StatusCreated {
				t.Fatalf("submit = %d %s", r.status, r.raw)
			}
			ids = append(ids, r.str("action", "id"))
		}
		e.deliverAll()

		// Keys are public.
		st, body := get(t, url+"/v1/ledger/keys", "")
		var keys struct {
			Keys []struct {
				VKey    string `json:"vkey"`
				Current bool   `json:"current"`
			} `json:"keys"`
		}
		if st != 200 || json.Unmarshal(body, &keys) != nil || len(keys.Keys) != 2 || keys.Keys[0].VKey != vkey || !keys.Keys[0].Current {
			t.Fatalf("keys = %d %s", st, body)
		}

		// Entries: filters and cursor.
		st, body = get(t, url+"/v1/ledger/entries?action="+ids[1], aud)
		var page struct {
			Entries    []ledger.Entry `json:"entries"`
			NextCursor string         `json:"next_cursor"`
		}
		if st != 200 || json.Unmarshal(body, &page) != nil || len(page.Entries) != 5 {
			t.Fatalf("entries by action = %d %s", st, body)
		}
		for _, en := range page.Entries {
			if en.Refs["action"] != ids[1] || en.Check() != nil {
				t.Fatalf("entry %+v", en)
			}
		}
		var all []ledger.Entry
		for cursor := "0"; cursor != ""; {
			st, body = get(t, url+"/v1/ledger/entries?limit=4&cursor="+cursor, aud)
			page.Entries, page.NextCursor = nil, ""
			if st != 200 || json.Unmarshal(body, &page) != nil {
				t.Fatalf("entries page = %d %s", st, body)
			}
			all = append(all, page.Entries...)
			cursor = page.NextCursor
		}
		if len(all) < 16 || all[0].Kind != ledger.KindLedgerGenesis || all[len(all)-1].Seq != uint64(len(all)-1) {
			t.Fatalf("paged through %d entries", len(all))
		}

		// No checkpoint yet; operators may not make one, auditors may.
		if st, body = get(t, url+"/v1/ledger/checkpoint", aud); st != 404 {
			t.Fatalf("checkpoint before any = %d %s", st, body)
		}
		if st, _ = post(t, url+"/v1/ledger/checkpoint", op); st != 403 {
			t.Fatalf("operator checkpoint = %d", st)
		}
		if st, body = post(t, url+"/v1/ledger/checkpoint", aud); st != 201 {
			t.Fatalf("checkpoint = %d %s", st, body)
		}
		if st, _ = post(t, url+"/v1/ledger/checkpoint", aud); st != 200 {
			t.Fatalf("second checkpoint with nothing new = %d", st)
		}
		st, body = get(t, url+"/v1/ledger/checkpoint?format=note", aud)
		vs, _ := ledger.NewVerifiers(vkey)
		cp, err := ledger.OpenCheckpoint(body, vs)
		if st != 200 || err != nil || cp.Size != uint64(len(all)) || cp.Origin != "herald.test/"+e.org.ID {
			t.Fatalf("checkpoint note = %d %s %v", st, body, err)
		}

		// Inclusion proof, checked with transparency-dev/merkle and
		// x/mod/sumdb/note directly (independent of ledger's verifier).
		st, body = get(t, url+"/v1/ledger/proof/inclusion?seq=5", aud)
		var incl ledger.InclusionBundle
		if st != 200 || json.Unmarshal(body, &incl) != nil {
			t.Fatalf("inclusion = %d %s", st, body)
		}
		v, _ := note.NewVerifier(vkey)
		n, err := note.Open([]byte(incl.Checkpoint), note.VerifierList(v))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(n.Text, "\n")
		root, _ := base64.StdEncoding.DecodeString(lines[2])
		eh, _ := incl.Entry.HashBytes()
		if err := proof.VerifyInclusion(ledger.Hasher, 5, incl.Size, ledger.LeafHash(eh), incl.Proof, root); err != nil {
			t.Fatalf("transparency-dev rejects the API's inclusion proof: %v", err)
		}
		if incl.Entry.Check() != nil || incl.Entry.Hash != all[5].Hash {
			t.Fatal("the bundled entry does not hash to the proven hash")
		}

		// Consistency between two checkpoints.
		e.do("POST", "/v1/actions", op, e.sendReq("-1001234567890", "transactional", "four"))
		if st, _ = post(t, url+"/v1/ledger/checkpoint", aud); st != 201 {
			t.Fatalf("third checkpoint = %d", st)
		}
		st, body = get(t, url+"/v1/ledger/proof/consistency?from="+itoa(cp.Size), aud)
		var cons ledger.ConsistencyBundle
		if st != 200 || json.Unmarshal(body, &cons) != nil {
			t.Fatalf("consistency = %d %s", st, body)
		}
		to, err := ledger.OpenCheckpoint([]byte(cons.ToCheckpoint), vs)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(ledger.Hasher, cp.Size, to.Size, cons.Proof, cp.Root, to.Root); err != nil {
			t.Fatalf("transparency-dev rejects the API's consistency proof: %v", err)
		}

		// Export: JSONL verifies offline with the published keys; CSV is a view.
		if st, _ = get(t, url+"/v1/ledger/export", op); st != 403 {
			t.Fatalf("operator export = %d", st)
		}
		st, body = get(t, url+"/v1/ledger/export", aud)
		allVs, _ := ledger.NewVerifiers(vkey, oldVkey)
		rep, err := ledger.Verify(ctx, bytes.NewReader(body), allVs)
		if st != 200 || err != nil || !rep.OK || rep.Checkpoints != 2 || rep.PayloadsVerified != 4 {
			t.Fatalf("export = %d, %v\n%s", st, err, rep)
		}
		st, body = get(t, url+"/v1/ledger/export?format=csv&from=1&to=3", aud)
		if st != 200 || !strings.HasPrefix(string(body), strings.Join(ledger.CSVColumns, ",")) || strings.Count(string(body), "\n") != 3 {
			t.Fatalf("csv = %d %s", st, body)
		}

		// Bad input is a problem document, and another org sees nothing.
		for _, q := range []string{"entries?from=-1", "entries?limit=0", "entries?from=5&to=2", "proof/inclusion", "proof/inclusion?seq=x",
			"proof/inclusion?seq=5&size=5", "proof/consistency", "proof/consistency?from=9&to=2", "export?format=xml", "export?from=4&to=4", "checkpoint?format=x"} {
			if st, body = get(t, url+"/v1/ledger/"+q, aud); st != 422 || !strings.Contains(string(body), "validation_failed") {
				t.Fatalf("%s = %d %s", q, st, body)
			}
		}
		if st, _ = get(t, url+"/v1/ledger/proof/inclusion?seq=9999", aud); st != 409 {
			t.Fatalf("uncovered seq = %d", st)
		}
		other, err := e.s.CreateOrg(ctx, "Other", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		otok := e.newKey(other.ID, "eve", herald.RoleAuditor)
		st, body = get(t, url+"/v1/ledger/entries", otok)
		if st != 200 || strings.Contains(string(body), e.org.ID) {
			t.Fatalf("other org entries = %d %s", st, body)
		}
		// The other org has a ledger of its own (its role binding is an
		// entry) but no checkpoint yet and nothing of ours.
		for _, q := range []string{"checkpoint", "proof/inclusion?seq=1"} {
			if st, body = get(t, url+"/v1/ledger/"+q, otok); st != 404 {
				t.Fatalf("other org %s = %d %s", q, st, body)
			}
		}
		if st, body = get(t, url+"/v1/ledger/export", otok); st != 200 || strings.Contains(string(body), e.org.ID) {
			t.Fatalf("other org export = %d %s", st, body)
		}
	})
}

func TestLedgerAPINotConfigured(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	url := ledgerAPI(t, e, nil)
	if st, body := get(t, url+"/v1/ledger/entries", e.keys[herald.RoleAuditor]); st != 503 || !strings.Contains(string(body), "unavailable") {
		t.Fatalf("nil ledger = %d %s", st, body)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
