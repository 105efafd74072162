package store

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

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

// queryTracer puts each PostgreSQL query of a traced operation in a
// "db.query" span. Only the statement's operation (SELECT, INSERT, …) is an
// attribute: never the statement's arguments, which hold personal data.
// Queries outside a recording span (the worker's polls) are not traced.
type queryTracer struct{}

type querySpanKey struct{}

func (queryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	op, _, _ := strings.Cut(strings.TrimSpace(data.SQL), " ")
	ctx, span := telemetry.StartSpan(ctx, "db.query", attribute.String("db.system", "postgresql"),
		attribute.String("db.operation", strings.ToUpper(op)))
	return context.WithValue(ctx, querySpanKey{}, span)
}

func (queryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if span, ok := ctx.Value(querySpanKey{}).(trace.Span); ok {
		telemetry.EndSpan(span, data.Err)
	}
}

// A transaction's deferred statements travel in pgx batches (postgres.go):
// one "db.query" span per batch (one round trip), its operation "BATCH" and
// the number of statements in it — never their arguments.

func (queryTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	n := 0
	if data.Batch != nil {
		n = data.Batch.Len()
	}
	ctx, span := telemetry.StartSpan(ctx, "db.query", attribute.String("db.system", "postgresql"),
		attribute.String("db.operation", "BATCH"), attribute.Int("db.statements", n))
	return context.WithValue(ctx, querySpanKey{}, span)
}

func (queryTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (queryTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	if span, ok := ctx.Value(querySpanKey{}).(trace.Span); ok {
		telemetry.EndSpan(span, data.Err)
	}
}
