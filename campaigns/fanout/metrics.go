package fanout

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/campaigns"
	"github.com/heraldhq/herald/store"
)

var (
	campaignsDesc  = prometheus.NewDesc("herald_campaigns", "Campaigns by state (all organisations).", []string{"state"}, nil)
	recipientsDesc = prometheus.NewDesc("herald_campaign_recipients",
		"Recipients of unfinished campaigns by recipient status (pending = not yet submitted to the pipeline).", []string{"status"}, nil)
)

// Collector exports campaign gauges read from the database at scrape time,
// so every replica reports the same numbers. Labels are states only: never
// an organisation, campaign or contact.
type Collector struct{ Store *store.Store }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- campaignsDesc
	ch <- recipientsDesc
}

// Collect implements prometheus.Collector. A database error leaves the
// gauges out of this scrape (the scrape itself still answers).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	byState, byRecipient, err := c.Store.CampaignStateCounts(ctx)
	if err != nil {
		return
	}
	for _, st := range campaigns.Statuses {
		ch <- prometheus.MustNewConstMetric(campaignsDesc, prometheus.GaugeValue, float64(byState[string(st)]), string(st))
	}
	for _, st := range []string{store.RecipientPending, store.RecipientSubmitted, store.RecipientInvalid, store.RecipientSkipped, store.RecipientCancelled} {
		ch <- prometheus.MustNewConstMetric(recipientsDesc, prometheus.GaugeValue, float64(byRecipient[st]), st)
	}
}
