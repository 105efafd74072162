package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbeTimeout bounds each probe at scrape time: Prometheus's default
// scrape timeout is 10 s, and a scrape must still answer (with the
// dependency reported down) when the database hangs.
const ProbeTimeout = 2 * time.Second

// QueueHealth is the state of Herald's queues, read at scrape time.
type QueueHealth struct {
	// OldestDue is how long the oldest due delivery job of an active
	// account has been waiting (0 when none is due).
	OldestDue time.Duration
	// OldestApproval is how long the oldest action pending approval has
	// been waiting (0 when none is).
	OldestApproval time.Duration
	// Unknown counts actions currently in status unknown.
	Unknown int
}

// Probes are read when /metrics is scraped.
type Probes struct {
	// Queue reads the queues' state; nil omits the queue gauges.
	Queue func(ctx context.Context) (QueueHealth, error)
	// Dependencies are readiness checks by name ("database", "secrets");
	// each becomes herald_dependency_up{dependency="name"}.
	Dependencies map[string]func(ctx context.Context) error
}

var (
	descQueueAge = prometheus.NewDesc("herald_delivery_queue_oldest_due_age_seconds",
		"Age of the oldest due delivery job of an active account (0 when none is due).", nil, nil)
	descApprovalAge = prometheus.NewDesc("herald_approval_queue_oldest_age_seconds",
		"Age of the oldest action pending approval (0 when none is).", nil, nil)
	descUnknown = prometheus.NewDesc("herald_actions_unknown",
		"Actions currently in status unknown: an operator must check the chat.", nil, nil)
	descDepUp = prometheus.NewDesc("herald_dependency_up",
		"1 when a dependency (database, secrets) answers, 0 when not.", []string{"dependency"}, nil)
)

// RegisterProbes adds the scrape-time gauges.
func (m *Metrics) RegisterProbes(p Probes) {
	m.Registry.MustRegister(probeCollector{p})
}

type probeCollector struct{ p Probes }

func (c probeCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.p.Queue != nil {
		ch <- descQueueAge
		ch <- descApprovalAge
		ch <- descUnknown
	}
	if len(c.p.Dependencies) > 0 {
		ch <- descDepUp
	}
}

func (c probeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ProbeTimeout)
	defer cancel()
	for name, check := range c.p.Dependencies {
		up := 1.0
		if check(ctx) != nil {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(descDepUp, prometheus.GaugeValue, up, name)
	}
	if c.p.Queue == nil {
		return
	}
	// A failed read omits the queue gauges rather than reporting a
	// healthy-looking zero; herald_dependency_up says why.
	q, err := c.p.Queue(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descQueueAge, prometheus.GaugeValue, q.OldestDue.Seconds())
	ch <- prometheus.MustNewConstMetric(descApprovalAge, prometheus.GaugeValue, q.OldestApproval.Seconds())
	ch <- prometheus.MustNewConstMetric(descUnknown, prometheus.GaugeValue, float64(q.Unknown))
}
