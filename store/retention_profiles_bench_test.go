package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkImportMinimalFieldsCheck measures a 1,000-row import batch on
// PostgreSQL whose rows carry a language, for an organisation without and
// with the minimal_fields profile: the profile check reads the retention
// configuration once per batch, and refusing is cheaper than importing.
//
//	go test ./store/ -run '^$' -bench ImportMinimalFields -benchtime 20x
func BenchmarkImportMinimalFieldsCheck(b *testing.B) {
	ctx := context.Background()
	s := storetest.Open(b, storetest.Postgres)
	rows := make([]herald.ContactImportRow, 1000)
	for i := range rows {
		rows[i] = herald.ContactImportRow{ChatID: strconv.Itoa(100000 + i), Purpose: "support", LegalBasis: "contract", Source: "bench", Language: "en"}
	}
	for _, minimal := range []bool{false, true} {
		org := benchOrg(b, s)
		if minimal {
			if err := s.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ApplyRetentionProfile(ctx, org, "minimal_fields", "bench")
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(map[bool]string{false: "allowed", true: "refused"}[minimal], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				err := s.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.ImportContacts(ctx, org, rows)
					return err
				})
				if (err != nil) != minimal {
					b.Fatalf("minimal=%v: %v", minimal, err)
				}
			}
		})
	}
}
