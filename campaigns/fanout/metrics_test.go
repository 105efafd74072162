package fanout_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/campaigns/fanout"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestCollectorCountsCampaignsByState: the gauges follow the database,
// across organisations, with state labels only.
func TestCollectorCountsCampaignsByState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		s := storetest.Open(t, b)
		for _, name := range []string{"A", "B"} {
			org, err := s.CreateOrg(ctx, name, "UTC")
			if err != nil {
				t.Fatal(err)
			}
			for i, to := range []campaigns.Status{"", campaigns.StatusScheduled, campaigns.StatusCancelled} {
				err := s.InTx(ctx, func(tx *store.Tx) error {
					c, err := tx.CreateCampaign(ctx, campaigns.Campaign{Org: org.ID, Name: name + string(rune('0'+i)), CreatedBy: "t",
						Spec: campaigns.Spec{Kind: "send_message", Purpose: "marketing", Template: campaigns.Template{Text: "x"}}})
					if err != nil || to == "" {
						return err
					}
					_, err = tx.SetCampaignStatus(ctx, org.ID, c.ID, to, "t", "t")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		reg := prometheus.NewRegistry()
		reg.MustRegister(&fanout.Collector{Store: s})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "herald_campaigns" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "state" {
					t.Fatalf("labels %v: want state only", m.GetLabel())
				}
				got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		want := map[string]float64{"draft": 2, "scheduled": 2, "running": 0, "paused": 0, "completed": 0, "cancelled": 2}
		if len(got) != len(want) {
			t.Fatalf("herald_campaigns %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("herald_campaigns %v, want %v", got, want)
			}
		}
	})
}
