package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/connectors"
)

// Connector is a connectors.Connector that waits on a Limiter before each
// send and feeds Telegram's retry_after back into it as a scoped penalty.
type Connector struct {
	next connectors.Connector
	lim  *Limiter
}

// Wrap decorates next with l.
func Wrap(next connectors.Connector, l *Limiter) *Connector {
	return &Connector{next: next, lim: l}
}

// Send waits for d's scopes, sends, and penalizes the scope of a
// RetryableError. A wait that ends early is returned as retryable: nothing
// was sent.
func (c *Connector) Send(ctx context.Context, d connectors.Delivery) (connectors.Receipt, error) {
	if err := c.lim.Wait(ctx, d); err != nil {
		var re *connectors.RetryableError
		if errors.As(err, &re) {
			return connectors.Receipt{}, err
		}
		return connectors.Receipt{}, &connectors.RetryableError{Err: fmt.Errorf("not sent: %w", err)}
	}
	rec, err := c.next.Send(ctx, d)
	var re *connectors.RetryableError
	if errors.As(err, &re) && re.After > 0 {
		c.lim.Penalize(re.Scope, time.Now().Add(re.After))
	}
	return rec, err
}
