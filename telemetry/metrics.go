// Package telemetry holds Herald's Prometheus metrics. One Metrics value is
// created by the composition root and passed to the parts that record.
// Label values are bounded sets (routes, stages, statuses, the loaded
// bundles' rule ids, the organisations' own account ids): never a message,
// a contact, a person's chat id or anything personal. Labels whose values
// come from configuration rather than code (rule ids, account ids) MUST go
// through a boundedLabel, which caps their series and folds malformed
// values into "other".
package telemetry

import (
	"errors"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/connectors/ratelimit"
	"github.com/heraldhq/herald/policies"
)

// DeliveryLatencyBuckets has an edge at exactly 5 s, the publish-latency
// SLO's threshold, so the SLO's good-event ratio is read off one bucket
// (le="5") instead of being interpolated (deploy/prometheus/herald.rules.yml).
var DeliveryLatencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Metrics are Herald's instruments.
type Metrics struct {
	Registry      *prometheus.Registry
	HTTPRequests  *prometheus.CounterVec   // route, method, code
	HTTPDuration  *prometheus.HistogramVec // route, method
	StageDuration *prometheus.HistogramVec // stage
	Decisions     *prometheus.CounterVec   // stage (submit|send), outcome
	// DecisionRules counts, per decision, each rule that gave a reason:
	// stage, outcome, rule ("none" when no rule spoke). Through
	// ObserveDecision only: rule ids are bounded there.
	DecisionRules *prometheus.CounterVec
	PolicyErrors  prometheus.Counter
	ActionsFinal  *prometheus.CounterVec // status
	Deliveries    *prometheus.CounterVec // connector, class
	// AccountDeliveries is per-account health: delivery attempts by
	// account (the organisation's bot or user account id, never a contact),
	// connector and class. Through ObserveDelivery only: accounts are
	// bounded there.
	AccountDeliveries *prometheus.CounterVec
	DeliveryLatency   prometheus.Histogram // due time → delivered
	QueueDepth        prometheus.GaugeFunc
	// AccountFreezes counts accounts Telegram stopped (PEER_FLOOD,
	// revoked tokens): connector, code (a connector's stable error code).
	AccountFreezes *prometheus.CounterVec
	// RateLimited counts Telegram's own rate-limit answers (429,
	// FLOOD_WAIT) by connector; Herald's local throttling is not counted.
	RateLimited *prometheus.CounterVec
	// JobRuns counts runs of background jobs: job, result (ok|error).
	JobRuns *prometheus.CounterVec

	rules, accounts *boundedLabel
}

// Series caps of the configuration-driven labels: a bundle has tens of
// rules and a deployment tens to hundreds of accounts; past the cap new
// values share the "other" series rather than growing Prometheus's memory.
const (
	maxRuleSeries    = 256
	maxAccountSeries = 1000
)

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
		DecisionRules: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_policy_decisions_by_rule_total", Help: "Policy decisions by stage, outcome and each rule that gave a reason (none: no rule spoke).",
		}, []string{"stage", "outcome", "rule"}),
		AccountDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_account_delivery_attempts_total", Help: "Delivery attempts by sending account (the organisation's account id), connector and outcome class.",
		}, []string{"account", "connector", "class"}),
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
		rules:    newBoundedLabel(maxRuleSeries, validRule),
		accounts: newBoundedLabel(maxAccountSeries, validAccount),
	}
	r.MustRegister(m.HTTPRequests, m.HTTPDuration, m.StageDuration, m.Decisions, m.DecisionRules, m.AccountDeliveries, m.PolicyErrors,
		m.ActionsFinal, m.Deliveries, m.DeliveryLatency, m.AccountFreezes, m.RateLimited, m.JobRuns)
	// Every stage × outcome series exists from the start at 0: a series
	// first scraped at its final value shows no increase, so a burst of
	// decisions inside one scrape interval would read as rate() = 0 and
	// the SLI rules (deploy/prometheus) would miss it.
	for _, stage := range []string{"submit", "send"} {
		for _, outcome := range []string{policies.OutcomeAllow, policies.OutcomeDeny, policies.OutcomeDefer, policies.OutcomeApprove} {
			m.Decisions.WithLabelValues(stage, outcome)
		}
	}
	if queueDepth != nil {
		m.QueueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "herald_delivery_queue_depth", Help: "Delivery jobs queued (due or scheduled).",
		}, queueDepth)
		r.MustRegister(m.QueueDepth)
	}
	return m
}

// ObserveDecision counts one policy decision at stage: by outcome, and by
// outcome and each rule that gave a reason. A rule named twice in one
// decision is counted once.
func (m *Metrics) ObserveDecision(stage string, d policies.Decision) {
	if m == nil {
		return
	}
	m.Decisions.WithLabelValues(stage, d.Outcome).Inc()
	if len(d.Reasons) == 0 {
		m.DecisionRules.WithLabelValues(stage, d.Outcome, "none").Inc()
		return
	}
	for i, r := range d.Reasons {
		if slices.ContainsFunc(d.Reasons[:i], func(p policies.Reason) bool { return p.Rule == r.Rule }) {
			continue
		}
		m.DecisionRules.WithLabelValues(stage, d.Outcome, m.rules.value(r.Rule)).Inc()
	}
}

// ObserveDelivery counts one delivery attempt through connector by
// account, with its outcome class, and what its error says about Telegram
// (ObserveSendError).
func (m *Metrics) ObserveDelivery(account, connector, class string, err error) {
	if m == nil {
		return
	}
	m.Deliveries.WithLabelValues(connector, class).Inc()
	m.AccountDeliveries.WithLabelValues(m.accounts.value(account), connector, class).Inc()
	m.ObserveSendError(connector, err)
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
