package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestInvitePersonConcurrently: eight clients invite the same Telegram user
// at once; exactly one invitation exists afterwards, the others get
// conflict, and the person's binding is there once.
func TestInvitePersonConcurrently(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		o, err := s.CreateOrg(ctx, "Acme", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			ok, confl int
			other     []error
		)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.InvitePerson(ctx, o.ID, "777", "", []store.RoleGrant{{Role: herald.RoleOperator}}, "test")
					return err
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case herald.ErrorCode(err) == herald.CodeConflict:
					confl++
				default:
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		// SQLite may answer a writer that lost the race with a busy error
		// instead of waiting: that is a refusal too, never a second row.
		if ok != 1 || (b == storetest.Postgres && (confl != 7 || len(other) > 0)) {
			t.Fatalf("%d invited, %d conflicts, other errors %v", ok, confl, other)
		}
		people, err := s.ListPeople(ctx, o.ID, true)
		if err != nil || len(people) != 1 || len(people[0].Bindings) != 1 {
			t.Fatalf("people = %+v, %v", people, err)
		}
	})
}

// TestSuspensionAndSessions: SessionAllowed follows the organisation's
// state and the invitation, read from the database on every call.
func TestSuspensionAndSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		o, err := s.CreateOrg(ctx, "Acme", "UTC")
		if err != nil {
			t.Fatal(err)
		}
		var p store.Person
		if err := s.InTx(ctx, func(tx *store.Tx) (err error) {
			p, err = tx.InvitePerson(ctx, o.ID, "31", "Ann", []store.RoleGrant{{Role: herald.RoleAuditor}}, "test")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.SessionAllowed(ctx, o.ID, p.Principal, p.ID); err != nil {
			t.Fatalf("a live invitation: %v", err)
		}
		suspend := func(v bool) {
			if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.SetOrgSuspended(ctx, o.ID, v, "test"); return err }); err != nil {
				t.Fatal(err)
			}
		}
		suspend(true)
		if err := s.SessionAllowed(ctx, o.ID, p.Principal, p.ID); herald.ErrorCode(err) != herald.CodeForbidden {
			t.Fatalf("suspended: %v", err)
		}
		suspend(false)
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.RevokePerson(ctx, o.ID, p.ID, "test"); return err }); err != nil {
			t.Fatal(err)
		}
		if err := s.SessionAllowed(ctx, o.ID, p.Principal, p.ID); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("revoked: %v", err)
		}
		if err := s.SessionAllowed(ctx, "no-such-org", p.Principal, p.ID); herald.ErrorCode(err) != herald.CodeUnauthenticated {
			t.Fatalf("unknown org: %v", err)
		}
	})
}
