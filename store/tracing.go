package store

import (
	"context"

	"github.com/heraldhq/herald/telemetry"
)

// withTraceID adds the trace id of ctx's span to a ledger entry's attrs
// (when tracing is on), so an auditor can go from an entry to its trace. A
// trace id is random, names no person, and the caller's map is not changed.
func withTraceID(ctx context.Context, attrs map[string]any) map[string]any {
	id := telemetry.TraceID(ctx)
	if id == "" {
		return attrs
	}
	out := make(map[string]any, len(attrs)+1)
	for k, v := range attrs {
		out[k] = v
	}
	out["trace_id"] = id
	return out
}
