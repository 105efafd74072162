package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing. One trace per action: the HTTP request, every pipeline stage
// (authorize, render, decide, commit), and — carried across the queue in
// the job's trace context — the worker's delivery, send-time decision,
// rate-limiter wait, connector call and outcome, in every process.
//
// Invariants:
//   - Tracing is off unless configured (OTEL_TRACES_EXPORTER=otlp, or an
//     OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT /
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Off, the global provider is
//     OpenTelemetry's no-op and the HTTP handler is not wrapped: nothing is
//     allocated or exported.
//   - Span attributes MUST NOT carry message text, chat ids of people,
//     contact fields, keys or tokens: only ids Herald issues (action,
//     account), bounded values (stage, outcome, class, connector) and the
//     policy bundle hash. TestTracedSubmitToDeliverAcrossTwoProcesses greps
//     every exported attribute.

// TracerName is the instrumentation scope of Herald's spans.
const TracerName = "github.com/heraldhq/herald"

// Tracer returns Herald's tracer from the global provider (a no-op until
// SetupTracing installs one).
func Tracer() trace.Tracer { return otel.Tracer(TracerName) }

// TracingEnabled reports whether the environment configures trace export.
func TracingEnabled() bool {
	switch strings.ToLower(os.Getenv("OTEL_TRACES_EXPORTER")) {
	case "otlp":
		return true
	case "":
		return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	}
	return false // "none", or an exporter Herald does not ship
}

// SetupTracing installs a global tracer provider exporting over OTLP when
// the environment asks for it (see TracingEnabled), and returns its
// shutdown (which flushes pending spans). The exporter, endpoint, headers
// and sampler come from the standard variables: OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf, the default, or grpc), OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: parent-based,
// always on), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func SetupTracing(ctx context.Context, version string) (shutdown func(context.Context) error, enabled bool, err error) {
	if !TracingEnabled() {
		return func(context.Context) error { return nil }, false, nil
	}
	var exp sdktrace.SpanExporter
	proto := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, false, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: Herald exports traces over http/protobuf or grpc", proto)
	}
	if err != nil {
		return nil, false, fmt.Errorf("trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(serviceName()), semconv.ServiceVersion(version)))
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, true, nil
}

func serviceName() string {
	if n := os.Getenv("OTEL_SERVICE_NAME"); n != "" {
		return n
	}
	return "herald"
}

// StartSpan starts a span of Herald's tracer. attrs MUST follow the no-PII
// rule above.
func StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return Tracer().Start(ctx, name, trace.WithAttributes(attrs...))
}

// EndSpan records err (if any) on span and ends it.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, "error")
		span.SetAttributes(attribute.String("herald.error_kind", fmt.Sprintf("%T", err)))
	}
	span.End()
}

// TraceParent encodes ctx's span context as a W3C traceparent ("" when ctx
// carries no sampled span), for storing with a queued job.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// WithTraceParent returns ctx carrying the remote span context of a stored
// traceparent, so spans started from it join the action's trace.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// TraceID returns the trace id of ctx's span, or "" when there is none (so
// ledger entries and events name their trace only when tracing is on).
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// EndDecisionSpan ends a policy decision's span with what an auditor needs
// to find the decision again: the stage, the outcome and the bundle hash.
func EndDecisionSpan(span trace.Span, stage, outcome, bundleHash string, err error) {
	span.SetAttributes(attribute.String("herald.policy.stage", stage), attribute.String("herald.policy.outcome", outcome),
		attribute.String("herald.policy.bundle_hash", bundleHash))
	EndSpan(span, err)
}

// StartJobSpan starts the worker's span for one claimed job, joining the
// trace of the request that queued it (traceparent stored with the job), so
// every attempt — retries too, in any process — is part of the action's
// trace. A "worker.claim" child records how long the job waited past due.
func StartJobSpan(ctx context.Context, traceParent, actionID string, attempt int, due time.Time) (context.Context, trace.Span) {
	ctx = WithTraceParent(ctx, traceParent)
	ctx, span := Tracer().Start(ctx, "worker.deliver", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("herald.action.id", actionID), attribute.Int("herald.job.attempt", attempt)))
	if span.IsRecording() {
		_, claim := Tracer().Start(ctx, "worker.claim",
			trace.WithAttributes(attribute.Float64("herald.queue.wait_seconds", max(time.Since(due).Seconds(), 0))))
		claim.End()
	}
	return ctx, span
}

// TraceHTTP wraps an HTTP handler: one server span per request, joining an
// incoming traceparent. Span names carry the method only (paths hold ids);
// otelhttp records no headers, no query and no bodies.
func TraceHTTP(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return "HTTP " + r.Method
	}))
}
