package main

import (
	"context"

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
