package store_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

// TestSegmentFilters: every filter condition selects exactly the contacts
// it names, conditions combine with AND, and another organisation's
// contacts are never selected — on both databases.
func TestSegmentFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		s.SetClock(func() time.Time { return clock })
		org, _ := s.CreateOrg(ctx, "A", "UTC")
		other, _ := s.CreateOrg(ctx, "B", "UTC")
		acct, err := s.CreateAccount(ctx, herald.Account{Org: org.ID, Name: "bot", Kind: herald.AccountBot, Connector: herald.ConnectorSandbox})
		if err != nil {
			t.Fatal(err)
		}
		imp := func(org string, rows ...herald.ContactImportRow) []string {
			var res store.ImportResult
			if err := s.InTx(ctx, func(tx *store.Tx) error {
				var err error
				res, err = tx.ImportContacts(ctx, org, rows)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return res.Contacts
		}
		row := func(chat, tz, lang, purpose, source string) herald.ContactImportRow {
			return herald.ContactImportRow{ChatID: chat, Timezone: tz, Language: lang, Purpose: purpose, LegalBasis: "consent", Source: source}
		}
		ids := imp(org.ID, row("1", "Europe/Berlin", "de", "marketing", "form"), row("2", "Europe/Berlin", "en", "support", "shop"),
			row("3", "America/New_York", "en", "marketing", "form"))
		clock = clock.Add(48 * time.Hour)
		late := imp(org.ID, row("4", "Asia/Tokyo", "ja", "marketing", "fair"))
		ids = append(ids, late...)
		imp(other.ID, row("1", "Europe/Berlin", "de", "marketing", "form"))
		otherIDs, _ := s.SegmentMembers(ctx, other.ID, campaigns.Filter{})
		v := func(s string) *string { return &s }
		for i, tags := range [][]string{{"vip", "de"}, {"vip"}, {"vip", "us"}, {}} {
			if err := s.PatchContactLabels(ctx, org.ID, ids[i], store.LabelsPatch{AddTags: tags,
				Attributes: map[string]*string{"tier": v([]string{"gold", "silver", "gold", "gold"}[i])}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PatchContactLabels(ctx, other.ID, otherIDs[0].ID, store.LabelsPatch{AddTags: []string{"vip"}}); err != nil {
			t.Fatal(err)
		}
		// Contact 3 was messaged yesterday.
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			a := herald.Action{Org: org.ID, Account: acct.ID, Kind: herald.KindSendMessage, Purpose: "marketing", Target: "3", ContactID: ids[2],
				Content: herald.Content{Text: "x"}, SendAt: clock.Add(-24 * time.Hour), SubmittedBy: "t"}
			return tx.InsertAction(ctx, &a, store.Transition{To: herald.StatusDecided, Actor: "policy"},
				store.Transition{To: herald.StatusScheduled, Actor: "system"}, store.Transition{To: herald.StatusSending, Actor: "worker"},
				store.Transition{To: herald.StatusDelivered, Actor: "worker"})
		}); err != nil {
			t.Fatal(err)
		}
		at := func(d time.Duration) *time.Time { x := clock.Add(d); return &x }
		for _, tc := range []struct {
			name string
			f    campaigns.Filter
			want []int
		}{
			{"everyone", campaigns.Filter{}, []int{0, 1, 2, 3}},
			{"all tags", campaigns.Filter{Tags: []string{"vip", "de"}}, []int{0}},
			{"one tag", campaigns.Filter{Tags: []string{"vip"}}, []int{0, 1, 2}},
			{"exclude tag", campaigns.Filter{Tags: []string{"vip"}, ExcludeTags: []string{"us", "de"}}, []int{1}},
			{"language", campaigns.Filter{Languages: []string{"en", "ja"}}, []int{1, 2, 3}},
			{"timezone", campaigns.Filter{Timezones: []string{"Europe/Berlin"}}, []int{0, 1}},
			{"consent granted", campaigns.Filter{Consent: []campaigns.ConsentCondition{{Purpose: "marketing", State: "granted"}}}, []int{0, 2, 3}},
			{"consent absent", campaigns.Filter{Consent: []campaigns.ConsentCondition{{Purpose: "marketing", State: "absent"}}}, []int{1}},
			{"source", campaigns.Filter{Sources: []string{"fair", "shop"}}, []int{1, 3}},
			{"imported after", campaigns.Filter{ImportedAfter: at(-time.Hour)}, []int{3}},
			{"imported before", campaigns.Filter{ImportedBefore: at(-time.Hour)}, []int{0, 1, 2}},
			{"not contacted since two days", campaigns.Filter{LastContactedBefore: at(-48 * time.Hour)}, []int{0, 1, 3}},
			{"contacted since two days", campaigns.Filter{LastContactedAfter: at(-48 * time.Hour)}, []int{2}},
			{"attribute", campaigns.Filter{Attributes: map[string]string{"tier": "gold"}}, []int{0, 2, 3}},
			{"and", campaigns.Filter{Tags: []string{"vip"}, Languages: []string{"en"}, Attributes: map[string]string{"tier": "gold"}}, []int{2}},
		} {
			ms, err := s.SegmentMembers(ctx, org.ID, tc.f)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var got, want []string
			for _, m := range ms {
				got = append(got, m.ID)
			}
			for _, i := range tc.want {
				want = append(want, ids[i])
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", tc.name, got, want)
			}
			pv, err := s.PreviewSegment(ctx, org.ID, tc.f, store.PreviewOptions{Purpose: "marketing", Now: clock, DailyCap: 1, ConsentRequired: true, Sample: 2})
			if err != nil || pv.Count != len(want) {
				t.Errorf("%s: preview count %d (err %v), want %d", tc.name, pv.Count, err, len(want))
			}
		}
		// Erasure takes labels with the contact.
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.DeleteContact(ctx, org.ID, ids[0]) }); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"contact_tags", "contact_attributes"} {
			n, err := store.CountForTest(ctx, s, fmt.Sprintf("SELECT count(*) FROM %s WHERE contact_id = '%s'", table, ids[0]))
			if err != nil || n != 0 {
				t.Fatalf("%s keeps %d rows of an erased contact (err %v)", table, n, err)
			}
		}
	})
}

// BenchmarkSegmentPreview previews a tagged segment over 100,000 contacts
// (a third opted out or without consent): the issue asks for ≤ 1 s.
//
//	go test ./store/ -run '^$' -bench SegmentPreview -benchtime 5x
func BenchmarkSegmentPreview(b *testing.B) {
	for _, be := range storetest.Backends {
		b.Run(string(be), func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, be)
			org, _ := s.CreateOrg(ctx, "A", "UTC")
			seed := make([]store.SeedContact, 100_000)
			for i := range seed {
				c := store.SeedContact{ChatID: fmt.Sprint(1_000_000 + i), Timezone: "Europe/Berlin", Language: "en", Tags: []string{"all"}}
				if i%3 != 0 {
					c.Purpose = "marketing"
				}
				c.OptedOut = i%10 == 0
				if i%2 == 0 {
					c.Tags = append(c.Tags, "even")
				}
				seed[i] = c
			}
			if _, err := store.SeedContactsForTest(ctx, s, org.ID, seed); err != nil {
				b.Fatal(err)
			}
			f := campaigns.Filter{Tags: []string{"all"}}
			o := store.PreviewOptions{Purpose: "marketing", Now: s.Now(), DailyCap: 1, ConsentRequired: true, ConsentMaxAge: 24 * 30 * 24 * time.Hour, Sample: 10}
			runtime.GC()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pv, err := s.PreviewSegment(ctx, org.ID, f, o)
				if err != nil {
					b.Fatal(err)
				}
				if pv.Count != 100_000 || pv.Excluded[store.ExcludedOptedOut] != 10_000 {
					b.Fatalf("preview: %+v", pv)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/preview")
		})
	}
}
