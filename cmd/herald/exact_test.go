package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald/connectors/telegramtest"
	"github.com/heraldhq/herald/store/storetest"
)

// middayZone is an IANA zone where it is now about noon, so quiet hours
// never defer the property test's sends whatever time CI runs it.
func middayZone(now time.Time) string {
	k := 12 - now.UTC().Hour() // local = UTC + k
	switch {
	case k == 0:
		return "Etc/GMT"
	case k > 0:
		return fmt.Sprintf("Etc/GMT-%d", k) // POSIX zones name the offset inverted
	}
	return fmt.Sprintf("Etc/GMT+%d", -k)
}

// TestOneRecipientCapAcrossTwoGatewayProcesses is issue 10's property test:
// random interleavings of marketing submits to one person, through its
// contact id, chat id and @username, concurrently on two herald serve
// processes sharing one PostgreSQL, under random caps. Counted from the fake
// Telegram's record: the person never receives more than the cap, and
// exactly the cap when at least that many were sent.
func TestOneRecipientCapAcrossTwoGatewayProcesses(t *testing.T) {
	fake := telegramtest.New(telegramtest.Options{AcceptAnyToken: true})
	defer fake.Close()
	dbURL := storetest.NewDatabase(t)
	args := []string{"--botapi-url", fake.URL()}
	dir1 := t.TempDir()
	p1 := start(t, dir1, dbURL, args...)
	key := keyPattern.FindString(p1.stdout.String())
	// Caps and contacts are a compliance officer's: create one's key while
	// no server runs, then start both.
	_ = p1.cmd.Process.Signal(os.Interrupt)
	_, _ = p1.cmd.Process.Wait()
	out, err := run(t, nil, "keys", "create", "--database-url", dbURL, "--principal", "officer-olga", "--role", "compliance_officer")
	co := strings.TrimSpace(lastLine(out))
	if err != nil || !keyPattern.MatchString(co) {
		t.Fatalf("keys create: %v %s", err, out)
	}
	p1 = start(t, dir1, dbURL, args...)
	p2 := start(t, t.TempDir(), dbURL, args...)
	const token = "888888:CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
	acc := p1.call(t, "POST", "/v1/accounts", key, map[string]any{"name": "news", "kind": "bot", "connector": "botapi",
		"secret": map[string]string{"token": token}})
	accID, _ := acc["id"].(string)
	p2.call(t, "PATCH", "/v1/accounts/"+accID, key, map[string]any{"secret": map[string]string{"token": token}})

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	zone := middayZone(time.Now())
	for round := 0; round < 4; round++ {
		capN, sends := 1+rng.IntN(3), 1+rng.IntN(7)
		res := p1.call(t, "PUT", "/v1/policies/params", co, map[string]any{"overrides": map[string]any{"frequency": map[string]any{
			"recipient": map[string]any{"marketing": map[string]any{"per_day": capN, "per_week": 20}}}}})
		if _, ok := res["code"]; ok {
			t.Fatalf("set cap: %v", res)
		}
		chat, user := fmt.Sprintf("%d", 91000+round), fmt.Sprintf("person_%d_x", round)
		imp := p2.call(t, "POST", "/v1/contacts:import", co, []map[string]any{{"chat_id": chat, "username": user, "timezone": zone,
			"purpose": "marketing", "legal_basis": "consent", "source": "form", "consented_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}})
		ids, _ := imp["contacts"].([]any)
		if len(ids) != 1 {
			t.Fatalf("import: %v", imp)
		}
		addresses := []string{ids[0].(string), chat, "@" + user}
		var wg sync.WaitGroup
		for i := 0; i < sends; i++ {
			p := []*proc{p1, p2}[rng.IntN(2)]
			target := addresses[rng.IntN(len(addresses))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := p.call(t, "POST", "/v1/actions", key, map[string]any{"kind": "send_message", "account": accID,
					"target": target, "purpose": "marketing", "text": "hello"})
				if _, ok := r["action"]; !ok {
					t.Errorf("submit to %s: %v", target, r)
				}
			}()
		}
		wg.Wait()
		// Wait until nothing due is left: every allowed send went, the rest
		// are deferred to another day.
		deadline := time.Now().Add(60 * time.Second)
		for {
			busy := 0
			for _, a := range p2.call(t, "GET", "/v1/actions?limit=500", key, nil)["actions"].([]any) {
				a := a.(map[string]any)
				sendAt, _ := time.Parse(time.RFC3339Nano, a["send_at"].(string))
				if a["status"] == "sending" || a["status"] == "scheduled" && sendAt.Before(time.Now()) {
					busy++
				}
			}
			if busy == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d actions still due after 60 s", round, busy)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got, want := len(fake.MessagesTo(chat)), min(capN, sends); got != want {
			t.Fatalf("seed %d round %d: cap %d, %d sends on two processes: Telegram received %d, want %d", seed, round, capN, sends, got, want)
		}
	}
}
