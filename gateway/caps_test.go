package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestCapsHoldUnderConcurrency: 100 concurrent submits against a cap of N
// yield exactly N allowed — per recipient (marketing ≤ 1 a day) and per
// account (a bot ≤ 25 messages a second) — because counting and deciding
// run under the recipient's and the account's lock in one transaction.
func TestCapsHoldUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		var (
			clockMu sync.Mutex
			frozen  = daytime.Add(3 * time.Hour)
		)
		// Every submit of a phase happens at the same instant.
		e.s.SetClock(func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return frozen })
		op := e.keys[herald.RoleOperator]
		e.do("POST", "/v1/contacts:import", e.keys[herald.RoleComplianceOfficer], []map[string]any{{"chat_id": "4711",
			"purpose": "marketing", "legal_basis": "consent", "source": "form", "consented_at": daytime.Add(-48 * time.Hour).Format(time.RFC3339)}})

		outcomes := func(bodies func(i int) map[string]any) map[string]int {
			var (
				wg  sync.WaitGroup
				mu  sync.Mutex
				out = map[string]int{}
			)
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					r := e.do("POST", "/v1/actions", op, bodies(i))
					mu.Lock()
					defer mu.Unlock()
					if r.status != http.StatusCreated {
						out[fmt.Sprintf("http %d", r.status)]++
						return
					}
					out[r.str("decision", "outcome")]++
				}(i)
			}
			wg.Wait()
			return out
		}
		got := outcomes(func(int) map[string]any { return e.sendReq("4711", "marketing", "Spring sale") })
		if got["allow"] != 1 || got["allow"]+got["defer"]+got["deny"] != 100 {
			t.Fatalf("recipient cap of 1: outcomes %v, want exactly 1 allow of 100", got)
		}
		clockMu.Lock()
		frozen = frozen.Add(time.Minute) // a fresh second for the account cap
		clockMu.Unlock()
		got = outcomes(func(i int) map[string]any {
			return e.sendReq(fmt.Sprintf("-100%d", 900000+i), "transactional", "Status update")
		})
		if got["allow"] != 25 || got["allow"]+got["defer"]+got["deny"] != 100 {
			t.Fatalf("account cap of 25/s: outcomes %v, want exactly 25 allows of 100", got)
		}
		// The reservations are the committed actions: count them in the store.
		list, _, err := e.s.ListActions(t.Context(), e.org.ID, store.ActionFilter{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		allowed := 0
		for _, a := range list {
			var d struct{ Outcome string }
			_ = json.Unmarshal(a.Decision, &d)
			if d.Outcome == "allow" {
				allowed++
			}
		}
		if allowed != 26 {
			t.Fatalf("stored allowed decisions = %d, want 26", allowed)
		}
	})
}
