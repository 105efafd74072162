package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldhq/herald/connectors"
)

// TraceConnector decorates a connector with a span per Send named span
// ("delivery.send" around the rate limiter and the call, "telegram.call"
// around the call alone), with the connector, the action kind and the
// outcome class as attributes. The chat, the text and the account's
// secrets are never attributes.
func TraceConnector(connector, span string, c connectors.Connector) connectors.Connector {
	return tracedConnector{Connector: c, name: connector, span: span}
}

type tracedConnector struct {
	connectors.Connector
	name, span string
}

func (t tracedConnector) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	ctx, span := Tracer().Start(ctx, t.span, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("herald.connector", t.name), attribute.String("herald.action.kind", d.Kind),
		attribute.String("herald.action.id", d.ActionID), attribute.Int("herald.job.attempt", d.Attempt)))
	r, err := t.Connector.Send(ctx, d)
	if span.IsRecording() {
		span.SetAttributes(attribute.String("herald.delivery.class", connectors.Classify(err).String()))
		if after := connectors.RetryAfter(err); after > 0 {
			span.SetAttributes(attribute.Float64("herald.delivery.retry_after_seconds", after.Seconds()))
		}
	}
	EndSpan(span, err)
	return r, err
}
