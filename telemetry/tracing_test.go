package telemetry_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/heraldhq/herald/telemetry"
)

func clearOTEL(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		t.Setenv(k, "")
	}
}

// TestTracingIsOffByDefault: with no OTEL_* configuration nothing is set
// up, spans do not record and no trace context reaches a job.
func TestTracingIsOffByDefault(t *testing.T) {
	clearOTEL(t)
	otel.SetTracerProvider(noop.NewTracerProvider())
	shutdown, on, err := telemetry.SetupTracing(context.Background(), "test")
	if err != nil || on {
		t.Fatalf("SetupTracing with no configuration: on=%v err=%v", on, err)
	}
	defer shutdown(context.Background())
	ctx, span := telemetry.StartSpan(context.Background(), "x")
	if span.IsRecording() || telemetry.TraceParent(ctx) != "" || telemetry.TraceID(ctx) != "" {
		t.Fatal("an unconfigured Herald records spans or stores trace context")
	}
	jctx, jspan := telemetry.StartJobSpan(context.Background(), "", "a1", 0, time.Now())
	if jspan.IsRecording() || telemetry.TraceID(jctx) != "" {
		t.Fatal("a job span records with tracing off")
	}
}

func TestTracingConfiguration(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		on   bool
		fail bool
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_TRACES_EXPORTER": "none"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, true},
	} {
		clearOTEL(t)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		shutdown, on, err := telemetry.SetupTracing(context.Background(), "test")
		if (err != nil) != tc.fail || on != tc.on {
			t.Errorf("%v: on=%v err=%v, want on=%v fail=%v", tc.env, on, err, tc.on, tc.fail)
		}
		if err == nil {
			sctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_ = shutdown(sctx)
			cancel()
		}
	}
	otel.SetTracerProvider(noop.NewTracerProvider())
}

// TestTraceContextCrossesTheQueue: the traceparent stored with a job puts
// the worker's spans in the submitting request's trace, as a child of the
// span that queued it.
func TestTraceContextCrossesTheQueue(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	defer otel.SetTracerProvider(noop.NewTracerProvider())

	ctx, submit := telemetry.StartSpan(context.Background(), "pipeline.commit")
	stored := telemetry.TraceParent(ctx)
	submit.End()
	if stored == "" {
		t.Fatal("no traceparent for a recording span")
	}
	// Another process: a fresh context, the stored string only.
	wctx, deliver := telemetry.StartJobSpan(context.Background(), stored, "action-1", 2, time.Now().Add(-time.Second))
	deliver.End()
	if telemetry.TraceID(wctx) != submit.SpanContext().TraceID().String() {
		t.Fatalf("worker trace %s, want the submit's %s", telemetry.TraceID(wctx), submit.SpanContext().TraceID())
	}
	spans := exp.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	d, c := byName["worker.deliver"], byName["worker.claim"]
	if d.Parent.SpanID() != submit.SpanContext().SpanID() || c.Parent.SpanID() != d.SpanContext.SpanID() {
		t.Fatalf("parents: deliver→%s (want %s), claim→%s (want %s)", d.Parent.SpanID(), submit.SpanContext().SpanID(),
			c.Parent.SpanID(), d.SpanContext.SpanID())
	}
	for _, a := range c.Attributes {
		if a.Key == "herald.queue.wait_seconds" && a.Value.AsFloat64() < 1 {
			t.Fatalf("queue wait %v, want ≥ 1 s", a.Value.AsFloat64())
		}
	}
}
