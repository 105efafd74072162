package store_test

import (
	"context"

	"sync"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// fixture is an org with an account, on a fresh store.
type fixture struct {
	s       *store.Store
	org     herald.Org
	account herald.Account
}

func newFixture(t *testing.T, b storetest.Backend) fixture {
	t.Helper()
	ctx := context.Background()
	s := storetest.Open(t, b)
	org, err := s.CreateOrg(ctx, "Acme", "Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "news bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{s: s, org: org, account: acc}
}

func (f fixture) insertScheduled(t *testing.T, target string, sendAt time.Time, key string) herald.Action {
	t.Helper()
	ctx := context.Background()
	a := herald.Action{Org: f.org.ID, Account: f.account.ID, Kind: herald.KindSendMessage, Purpose: herald.PurposeMarketing,
		Target: target, Content: herald.Content{Text: "hello"}, SendAt: sendAt, IdempotencyKey: key, SubmittedBy: "alice"}
	err := f.s.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.InsertAction(ctx, &a); err != nil {
			return err
		}
		if _, err := tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusDecided, Actor: "system"}); err != nil {
			return err
		}
		var err error
		a, err = tx.Transition(ctx, a.Org, a.ID, store.Transition{To: herald.StatusScheduled, Actor: "system"})
		if err != nil {
			return err
		}
		return tx.Enqueue(ctx, a, sendAt)
	})
	if err != nil {
		t.Fatalf("insert scheduled action: %v", err)
	}
	return a
}

func TestMigrateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		v1, err := s.SchemaVersion(ctx)
		if err != nil || v1 < 1 {
			t.Fatalf("schema version after first migrate = %d, %v", v1, err)
		}
		v2, err := s.Migrate(ctx)
		if err != nil || v2 != v1 {
			t.Fatalf("second migrate = %d, %v; want %d", v2, err, v1)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		k, token, err := f.s.CreateAPIKey(ctx, f.org.ID, "alice", herald.RoleOperator, "ci", nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.s.Authenticate(ctx, token)
		if err != nil || p.ID != "alice" || p.Org != f.org.ID || p.Role != herald.RoleOperator {
			t.Fatalf("authenticate = %+v, %v", p, err)
		}
		for _, bad := range []string{"", "hk_", token + "x", "hk_" + k.Prefix + "_nope", "xx" + token[2:]} {
			if _, err := f.s.Authenticate(ctx, bad); herald.ErrorCode(err) != herald.CodeUnauthenticated {
				t.Errorf("authenticate(%q) = %v, want unauthenticated", bad, err)
			}
		}
		if _, _, err := f.s.CreateAPIKey(ctx, f.org.ID, "bob", "superuser", "", nil); herald.ErrorCode(err) != herald.CodeValidation {
			t.Errorf("unknown role: %v", err)
		}
		other, _ := f.s.CreateOrg(ctx, "Other", "")
		if _, err := f.s.RevokeAPIKey(ctx, other.ID, k.ID); !herald.IsNotFound(err) {
			t.Errorf("revoke from another org = %v, want not found", err)
		}
		if _, err := f.s.Authenticate(ctx, token); err != nil {
			t.Fatalf("key must survive a foreign revoke: %v", err)
		}
		r, err := f.s.RevokeAPIKey(ctx, f.org.ID, k.Prefix)
		if err != nil || r.RevokedAt == nil {
			t.Fatalf("revoke = %+v, %v", r, err)
		}
		if _, err := f.s.Authenticate(ctx, token); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("revoked key still authenticates: %v", err)
		}
		past := time.Now().Add(-time.Hour)
		_, expired, _ := f.s.CreateAPIKey(ctx, f.org.ID, "carol", herald.RoleAuditor, "", &past)
		if _, err := f.s.Authenticate(ctx, expired); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("expired key authenticates: %v", err)
		}
	})
}

func TestAccountsAreScopedAndValidated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		other, _ := f.s.CreateOrg(ctx, "Other", "")
		if _, err := f.s.GetAccount(ctx, other.ID, f.account.ID); !herald.IsNotFound(err) {
			t.Fatalf("cross-org read = %v, want not found", err)
		}
		list, err := f.s.ListAccounts(ctx, other.ID)
		if err != nil || len(list) != 0 {
			t.Fatalf("other org lists %d accounts, %v", len(list), err)
		}
		_, err = f.s.CreateAccount(ctx, herald.Account{Org: f.org.ID, Name: "x", Kind: herald.AccountUser, Connector: herald.ConnectorBotAPI})
		if herald.ErrorCode(err) != herald.CodeValidation {
			t.Fatalf("user account on botapi: %v", err)
		}
		paused := herald.AccountPaused
		a, err := f.s.UpdateAccount(ctx, f.org.ID, f.account.ID, store.AccountPatch{Status: &paused})
		if err != nil || a.Status != paused {
			t.Fatalf("update = %+v, %v", a, err)
		}
		bad := "sleeping"
		if _, err := f.s.UpdateAccount(ctx, f.org.ID, f.account.ID, store.AccountPatch{Status: &bad}); herald.ErrorCode(err) != herald.CodeValidation {
			t.Fatalf("bad status: %v", err)
		}
		got, _ := f.s.GetAccount(ctx, f.org.ID, f.account.ID)
		if got.Status != paused {
			t.Fatalf("rejected update changed the account: %+v", got)
		}
	})
}

func TestContactsImportAndOptOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		rows := []herald.ContactImportRow{
			{ChatID: "1001", Timezone: "Europe/Berlin", Purpose: "marketing", LegalBasis: "consent", Source: "web form", ConsentedAt: &at},
			{ChatID: "1001", Purpose: "support", LegalBasis: "contract", Source: "order 7"},
			{ChatID: "@alice_x", Purpose: "transactional", LegalBasis: "legitimate_interest", Source: "crm"},
		}
		var res store.ImportResult
		err := f.s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			res, err = tx.ImportContacts(ctx, f.org.ID, rows)
			return err
		})
		if err != nil || res.Created != 2 || res.Rows != 3 {
			t.Fatalf("import = %+v, %v", res, err)
		}
		c, err := f.s.ContactByChat(ctx, f.org.ID, "1001")
		if err != nil || len(c.Consents) != 2 || c.Timezone != "Europe/Berlin" {
			t.Fatalf("contact = %+v, %v", c, err)
		}
		if c.Consents[0].Purpose != "marketing" || !c.Consents[0].At.Equal(at) {
			t.Fatalf("consent = %+v", c.Consents[0])
		}
		c, err = f.s.OptOut(ctx, f.org.ID, c.ID, "api")
		if err != nil || c.OptedOutAt == nil || c.OptOutSource != "api" {
			t.Fatalf("opt out = %+v, %v", c, err)
		}
		// A re-import never clears an opt-out.
		_ = f.s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.ImportContacts(ctx, f.org.ID, rows[:1]); return err })
		c, _ = f.s.GetContact(ctx, f.org.ID, c.ID)
		if c.OptedOutAt == nil {
			t.Fatal("re-import cleared the opt-out")
		}
		other, _ := f.s.CreateOrg(ctx, "Other", "")
		if _, err := f.s.GetContact(ctx, other.ID, c.ID); !herald.IsNotFound(err) {
			t.Fatalf("cross-org contact read: %v", err)
		}
		if _, err := f.s.OptOut(ctx, other.ID, c.ID, "x"); !herald.IsNotFound(err) {
			t.Fatalf("cross-org opt-out: %v", err)
		}
	})
}

func TestTransitionsFollowTheStateMachine(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		a := f.insertScheduled(t, "42", f.s.Now(), "")
		err := f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, f.org.ID, a.ID, store.Transition{To: herald.StatusDelivered, Actor: "x"})
			return err
		})
		if herald.ErrorCode(err) != herald.CodeIllegalTransition {
			t.Fatalf("scheduled → delivered = %v, want illegal_transition", err)
		}
		got, _ := f.s.GetAction(ctx, f.org.ID, a.ID)
		if got.Status != herald.StatusScheduled {
			t.Fatalf("illegal transition changed status to %s", got.Status)
		}
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, f.org.ID, a.ID, store.Transition{To: herald.StatusCancelled, Actor: "alice"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, f.org.ID, a.ID, store.Transition{To: herald.StatusScheduled, Actor: "alice"})
			return err
		})
		if herald.ErrorCode(err) != herald.CodeIllegalTransition {
			t.Fatalf("cancelled is terminal, got %v", err)
		}
		ev, err := f.s.ActionEvents(ctx, f.org.ID, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []herald.Status{herald.StatusReceived, herald.StatusDecided, herald.StatusScheduled, herald.StatusCancelled}
		if len(ev) != len(want) {
			t.Fatalf("events = %+v", ev)
		}
		for i, e := range ev {
			if e.To != want[i] {
				t.Fatalf("event %d = %s, want %s", i, e.To, want[i])
			}
		}
	})
}

func TestListActionsPagesAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		var ids []string
		for i := 0; i < 7; i++ {
			ids = append(ids, f.insertScheduled(t, "42", f.s.Now(), "").ID)
		}
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, err := f.s.ListActions(ctx, f.org.ID, store.ActionFilter{Limit: 3, Cursor: cursor, Status: herald.StatusScheduled})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				seen = append(seen, a.ID)
			}
			if next == "" {
				break
			}
			cursor = next
			if pages > 5 {
				t.Fatal("pagination does not end")
			}
		}
		if len(seen) != 7 || seen[0] != ids[6] || seen[6] != ids[0] {
			t.Fatalf("paged ids = %v, want newest first of %v", seen, ids)
		}
		page, _, _ := f.s.ListActions(ctx, f.org.ID, store.ActionFilter{Status: herald.StatusDelivered})
		if len(page) != 0 {
			t.Fatalf("status filter leaked %d actions", len(page))
		}
		other, _ := f.s.CreateOrg(ctx, "Other", "")
		page, _, _ = f.s.ListActions(ctx, other.ID, store.ActionFilter{})
		if len(page) != 0 {
			t.Fatalf("another org sees %d actions", len(page))
		}
	})
}

func TestIdempotencyKeyIsUniquePerOrg(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		f.insertScheduled(t, "42", f.s.Now(), "k1")
		a := herald.Action{Org: f.org.ID, Account: f.account.ID, Kind: herald.KindSendMessage, Purpose: "marketing",
			Target: "42", SendAt: f.s.Now(), IdempotencyKey: "k1", SubmittedBy: "alice"}
		err := f.s.InTx(ctx, func(tx *store.Tx) error { return tx.InsertAction(ctx, &a) })
		if herald.ErrorCode(err) != herald.CodeIdempotencyReuse {
			t.Fatalf("second insert with the same key = %v", err)
		}
	})
}

func TestJobsClaimLeaseAndHold(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		now := f.s.Now()
		due := f.insertScheduled(t, "1", now.Add(-time.Second), "")
		f.insertScheduled(t, "2", now.Add(time.Hour), "")
		jobs, err := f.s.ClaimJobs(ctx, "w1", time.Minute, 10)
		if err != nil || len(jobs) != 1 || jobs[0].ActionID != due.ID {
			t.Fatalf("claim = %+v, %v", jobs, err)
		}
		again, _ := f.s.ClaimJobs(ctx, "w2", time.Minute, 10)
		if len(again) != 0 {
			t.Fatalf("a leased job was claimed twice: %+v", again)
		}
		if n, err := f.s.ReleaseJobs(ctx, "w1"); err != nil || n != 1 {
			t.Fatalf("release = %d, %v", n, err)
		}
		// A frozen account's queue is held until its freeze ends.
		until := now.Add(time.Hour)
		frozen := herald.AccountFrozen
		if _, err := f.s.UpdateAccount(ctx, f.org.ID, f.account.ID, store.AccountPatch{Status: &frozen, FrozenUntil: &until, SetFrozenUntil: true}); err != nil {
			t.Fatal(err)
		}
		if held, _ := f.s.ClaimJobs(ctx, "w2", time.Minute, 10); len(held) != 0 {
			t.Fatalf("frozen account's job was claimed")
		}
		f.s.SetClock(func() time.Time { return now.Add(2 * time.Hour) })
		jobs, _ = f.s.ClaimJobs(ctx, "w2", time.Minute, 10)
		if len(jobs) != 2 {
			t.Fatalf("after the freeze ends, claim = %d jobs, want 2", len(jobs))
		}
	})
}

func TestConcurrentClaimsNeverShareAJob(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		for i := 0; i < 20; i++ {
			f.insertScheduled(t, "7", f.s.Now().Add(-time.Second), "")
		}
		var (
			mu    sync.Mutex
			seen  = map[string]int{}
			wg    sync.WaitGroup
			fails []error
		)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 10; i++ {
					jobs, err := f.s.ClaimJobs(ctx, string(rune('a'+w)), time.Minute, 3)
					mu.Lock()
					if err != nil {
						fails = append(fails, err)
					}
					for _, j := range jobs {
						seen[j.ActionID]++
					}
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		if len(fails) > 0 {
			t.Fatal(fails[0])
		}
		if len(seen) != 20 {
			t.Fatalf("claimed %d distinct jobs, want 20", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("job %s claimed %d times", id, n)
			}
		}
	})
}

func TestLedgerChainAndAppendOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		f.insertScheduled(t, "42", f.s.Now(), "")
		entries, err := f.s.LedgerEntries(ctx, f.org.ID, store.LedgerFilter{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := []string{ledger.KindLedgerGenesis, ledger.KindActionReceived, ledger.KindActionDecided, ledger.KindActionScheduled}
		if len(entries) != len(kinds) {
			t.Fatalf("ledger has %d entries, want %d", len(entries), len(kinds))
		}
		for i, e := range entries {
			if e.Kind != kinds[i] || e.Seq != uint64(i) {
				t.Fatalf("entry %d = %s seq %d", i, e.Kind, e.Seq)
			}
			if err := e.Check(); err != nil {
				t.Fatalf("entry %d read back does not verify: %v", i, err)
			}
			if i > 0 && e.PrevHash != entries[i-1].Hash {
				t.Fatalf("entry %d does not chain to %d", i, i-1)
			}
		}
		if entries[1].PayloadHash == "" {
			t.Fatal("action.received carries no payload hash")
		}
		err = f.s.InTx(ctx, func(tx *store.Tx) error {
			return store.ExecForTest(ctx, tx, `UPDATE ledger_entries SET actor = 'mallory'`)
		})
		if err == nil {
			t.Fatal("the database accepted an UPDATE of ledger entries")
		}
		err = f.s.InTx(ctx, func(tx *store.Tx) error { return store.ExecForTest(ctx, tx, `DELETE FROM ledger_entries`) })
		if err == nil {
			t.Fatal("the database accepted a DELETE of ledger entries")
		}
	})
}

func TestSendFactsCountOnlyCommittedSends(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		f := newFixture(t, b)
		now := f.s.Now()
		f.insertScheduled(t, "42", now.Add(-30*time.Second), "")
		c := f.insertScheduled(t, "42", now.Add(-2*time.Hour), "")
		f.insertScheduled(t, "43", now.Add(-500*time.Millisecond), "")
		if err := f.s.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.Transition(ctx, f.org.ID, c.ID, store.Transition{To: herald.StatusCancelled, Actor: "x"})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		facts, err := f.s.SendFacts(ctx, store.FactQuery{Org: f.org.ID, Account: f.account.ID, Recipient: "42", At: now})
		if err != nil {
			t.Fatal(err)
		}
		if len(facts.Recipient) != 1 || facts.ChatLastMinute != 1 {
			t.Fatalf("recipient facts = %+v (the cancelled send must not count)", facts)
		}
		if facts.AccountLastSecond != 1 || facts.AccountLastMinute != 2 || facts.AccountSends24h != 2 {
			t.Fatalf("account facts = %+v", facts)
		}
	})
}
