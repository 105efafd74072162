package main

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/heraldhq/herald/connectors"
	"github.com/heraldhq/herald/delivery"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// probes are the scrape-time gauges of a serving process: queue ages and
// unknown actions from the database, and the readiness of the database and
// the secret store (the same checks as /readyz).
func probes(s *store.Store, secretsReady func(context.Context) error) telemetry.Probes {
	return telemetry.Probes{
		Queue: s.QueueHealth,
		Dependencies: map[string]func(context.Context) error{
			"database": s.Ping,
			"secrets":  secretsReady,
		},
	}
}

// traced wraps the parts of a serving process in spans when tracing is on
// (see telemetry.SetupTracing). Off, every part is returned as it is: not
// even a no-op wrapper stands in the request path.
type traced struct{ on bool }

// handler wraps the HTTP API in a server span per request (telemetry.TraceHTTP).
func (t traced) handler(h http.Handler) http.Handler {
	if !t.on {
		return h
	}
	return telemetry.TraceHTTP(h)
}

// connector wraps a connector twice: the outer span ("delivery.send")
// covers the rate limiter's wait and the call, the inner one
// ("telegram.call") the call alone.
func (t traced) connector(name string, inner connectors.Connector, limit func(connectors.Connector) connectors.Connector) connectors.Connector {
	if !t.on {
		return limit(inner)
	}
	return telemetry.TraceConnector(name, "delivery.send", limit(telemetry.TraceConnector(name, "telegram.call", inner)))
}

// decider wraps the worker's policy decider: a "policy.decide" span with
// the stage, the outcome and the bundle hash.
func (t traced) decider(d delivery.Decider) delivery.Decider {
	if !t.on {
		return d
	}
	return tracedDecider{d}
}

type tracedDecider struct{ delivery.Decider }

func (t tracedDecider) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	ctx, span := telemetry.StartSpan(ctx, "policy.decide")
	d, err := t.Decider.Decide(ctx, in)
	telemetry.EndDecisionSpan(span, in.Stage, d.Outcome, d.BundleHash, err)
	return d, err
}

// traceVault wraps the Vault client's transport in client spans when
// tracing is on (KV reads, Transit signing, logins). otelhttp records the
// method and the URL path (mount and secret path: org and account ids,
// never values) and no headers, so the Vault token stays out of spans.
func traceVault(rt http.RoundTripper) http.RoundTripper {
	if !telemetry.TracingEnabled() {
		return rt
	}
	return otelhttp.NewTransport(rt)
}
