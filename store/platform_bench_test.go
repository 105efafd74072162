package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// seedContacts imports n contacts into a new organisation, a third with
// marketing consent, and returns the organisation's id.
func seedContacts(b *testing.B, s *store.Store, n int) string {
	b.Helper()
	ctx := context.Background()
	o, err := s.CreateOrg(ctx, "bench", "UTC")
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += 1000 {
		var rows []herald.ContactImportRow
		for i := start; i < min(start+1000, n); i++ {
			r := herald.ContactImportRow{ChatID: fmt.Sprint(1_000_000 + i), Purpose: "support", LegalBasis: "contract", Source: "bench"}
			if i%3 == 0 {
				r.Purpose, r.LegalBasis = "marketing", "consent"
			}
			rows = append(rows, r)
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { _, err := tx.ImportContacts(ctx, o.ID, rows); return err }); err != nil {
			b.Fatal(err)
		}
	}
	return o.ID
}

// BenchmarkListContactsPage reads one 50-contact page, with a consent
// filter, from deep inside a 20,000-contact organisation: the cursor
// starts the page in the (org_id, id) index, so a deep page costs what the
// first does.
func BenchmarkListContactsPage(b *testing.B) {
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be)
			org := seedContacts(b, s, 20_000)
			// Statistics, as autovacuum (or SQLite's optimize) keeps them in
			// production; a never-analysed table plans as if it were tiny.
			if err := s.InTx(ctx, func(tx *store.Tx) error { return store.ExecForTest(ctx, tx, "ANALYZE") }); err != nil {
				b.Fatal(err)
			}
			for _, depth := range []struct {
				name, after string
			}{{"first", ""}, {"deep", deepCursor(b, s, org)}} {
				b.Run(depth.name, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						page, _, err := s.ListContacts(ctx, org, store.ContactFilter{After: depth.after, WithConsent: []string{"marketing"}, Limit: 50})
						if err != nil || len(page) != 50 {
							b.Fatalf("page: %d, %v", len(page), err)
						}
					}
				})
			}
		})
	}
}

// deepCursor returns the cursor 18,000 contacts in.
func deepCursor(b *testing.B, s *store.Store, org string) string {
	b.Helper()
	after := ""
	for seen := 0; seen < 18_000; seen += 500 {
		_, next, err := s.ListContacts(context.Background(), org, store.ContactFilter{After: after, Limit: 500})
		if err != nil || next == "" {
			b.Fatalf("seek: %v", err)
		}
		after = next
	}
	return after
}

// BenchmarkSessionAllowed is the per-request cost a person's session adds
// (the check that makes revocation immediate on every replica).
func BenchmarkSessionAllowed(b *testing.B) {
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be)
			o, err := s.CreateOrg(ctx, "bench", "UTC")
			if err != nil {
				b.Fatal(err)
			}
			var p store.Person
			if err := s.InTx(ctx, func(tx *store.Tx) (err error) {
				p, err = tx.InvitePerson(ctx, o.ID, "4242", "", []store.RoleGrant{{Role: herald.RoleOperator}}, "bench")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.SessionAllowed(ctx, o.ID, p.Principal, p.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
