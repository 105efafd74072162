// Package telemetry holds Herald's Prometheus metrics. One Metrics value is
// created by the composition root and passed to the parts that record.
// Label values are bounded sets (routes, stages, statuses): never ids,
// chats or anything personal.
package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
)

// DeliveryLatencyBuckets has an edge at exactly 5 s, the publish-latency
// SLO's threshold, so the SLO's good-event ratio is read off one bucket
// (le="5") instead of being interpolated (deploy/prometheus/herald.rules.yml).
var DeliveryLatencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

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
	DeliveryLatency prometheus.Histogram   // due time → delivered
	QueueDepth      prometheus.GaugeFunc
	// AccountFreezes counts accounts Telegram stopped (PEER_FLOOD,
	// revoked tokens): connector, code (a connector's stable error code).
	AccountFreezes *prometheus.CounterVec
	// RateLimited counts Telegram's own rate-limit answers (429,
	// FLOOD_WAIT) by connector; Herald's local throttling is not counted.
	RateLimited *prometheus.CounterVec
	// JobRuns counts runs of background jobs: job, result (ok|error).
	JobRuns *prometheus.CounterVec
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
			Buckets: DeliveryLatencyBuckets,
		}),
		AccountFreezes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_account_freezes_total", Help: "Accounts stopped by Telegram (peer_flood, unauthorized, …) by connector and code.",
		}, []string{"connector", "code"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_telegram_rate_limited_total", Help: "Rate-limit answers from Telegram (HTTP 429, FLOOD_WAIT) by connector.",
		}, []string{"connector"}),
		JobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_background_job_runs_total", Help: "Runs of background jobs (retention, …) by job and result.",
		}, []string{"job", "result"}),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.StageDuration, m.Decisions, m.PolicyErrors,
		m.ActionsFinal, m.Deliveries, m.DeliveryLatency, m.AccountFreezes, m.RateLimited, m.JobRuns)
	if queueDepth != nil {
		m.QueueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_delivery_queue_depth", Help: "Delivery jobs queued (due or scheduled).",
		}, queueDepth)
		r.MustRegister(m.QueueDepth)
	}
	return m
}

// ObserveSendError counts what a connector's error says about Telegram:
// an account stop (freeze) by its stable code, or a rate-limit answer.
// Herald's own limiter saying "busy" is local pacing, not Telegram, and is
// not counted. Only bounded values become labels: never the error's text,
// scope or chat.
func (m *Metrics) ObserveSendError(connector string, err error) {
	if m == nil || err == nil {
		return
	}
	var stop *connectors.AccountStopError
	if errors.As(err, &stop) {
		m.AccountFreezes.WithLabelValues(connector, stop.Code).Inc()
		return
	}
	if connectors.Classify(err) == connectors.ClassRetryable && connectors.RetryAfter(err) > 0 && !errors.Is(err, ratelimit.ErrBusy) {
		m.RateLimited.WithLabelValues(connector).Inc()
	}
}

// ObserveJob counts one run of a background job.
func (m *Metrics) ObserveJob(job string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.JobRuns.WithLabelValues(job, result).Inc()
}
