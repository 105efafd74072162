// Package telemetry holds Herald's Prometheus metrics. One Metrics value is
// created by the composition root and passed to the parts that record.
// Label values are bounded sets (routes, stages, statuses): never ids,
// chats or anything personal.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are Herald's instruments.
type Metrics struct {
	Registry        *prometheus.Registry
	HTTPRequests    *prometheus.CounterVec   // route, method, code
	HTTPDuration    *prometheus.HistogramVec // route, method
	StageDuration   *prometheus.HistogramVec // stage
	Decisions       *prometheus.CounterVec   // stage (submit|send), outcome
	PolicyErrors    prometheus.Counter
	ActionsFinal    *prometheus.CounterVec // status
	Deliveries      *prometheus.CounterVec // connector, class
	DeliveryLatency prometheus.Histogram   // submit → delivered
	QueueDepth      prometheus.GaugeFunc
}

// New registers Herald's metrics (and the Go runtime's) on a fresh registry.
// queueDepth reports the delivery queue's size when scraped; nil omits it.
func New(queueDepth func() float64) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method"}),
		StageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "herald_pipeline_stage_duration_seconds", Help: "Time spent in each stage of the action pipeline.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}, []string{"stage"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_policy_decisions_total", Help: "Policy decisions by stage and outcome.",
		}, []string{"stage", "outcome"}),
		PolicyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_policy_errors_total", Help: "Policy evaluations that failed and were denied fail-closed.",
		}),
		ActionsFinal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_actions_total", Help: "Actions reaching a final (or operator-facing) status.",
		}, []string{"status"}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_delivery_attempts_total", Help: "Delivery attempts by connector and outcome class.",
		}, []string{"connector", "class"}),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "herald_delivery_latency_seconds", Help: "From due time to delivered (the publish-latency SLO).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.StageDuration, m.Decisions, m.PolicyErrors,
		m.ActionsFinal, m.Deliveries, m.DeliveryLatency)
	if queueDepth != nil {
		m.QueueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_delivery_queue_depth", Help: "Delivery jobs queued (due or scheduled).",
		}, queueDepth)
		r.MustRegister(m.QueueDepth)
	}
	return m
}
