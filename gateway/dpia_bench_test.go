package gateway_test

import (
	"context"
	"io"
	"testing"

	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// BenchmarkDPIAGenerate measures one report of the seeded organisation on
// SQLite: every evidence query, the Casbin evaluation and the end-to-end
// ledger verification (which dominates and grows with the ledger).
func BenchmarkDPIAGenerate(b *testing.B) {
	e := newEnv(b, storetest.SQLite)
	seedDPIA(b, e)
	g := &dpia.Generator{Store: e.s, Ledger: store.NewLedgerLogs(e.s, "", nil), Keys: func() []string { return []string{e.vkey} }}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Generate(ctx, e.org.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDPIARender measures each format's rendering of one report.
func BenchmarkDPIARender(b *testing.B) {
	e := newEnv(b, storetest.SQLite)
	seedDPIA(b, e)
	rep, err := (&dpia.Generator{Store: e.s}).Generate(context.Background(), e.org.ID)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		name   string
		render func(io.Writer) error
	}{{"markdown", rep.Markdown}, {"html", rep.HTML}, {"pdf", rep.PDF}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f.render(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
