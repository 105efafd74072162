package mtproto

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/gotd/td/telegram/dcs"
)

// writeCounter counts successful writes on all connections of one account's
// client. A call that fails with the counter unchanged since it began wrote
// nothing, so Telegram cannot have acted on it; any write in between (even a
// ping or an ack of another call) makes the outcome unknown. That errs on the
// safe side: an unknown send is surfaced to an operator, never resent.
type writeCounter struct{ n atomic.Uint64 }

func (w *writeCounter) load() uint64 { return w.n.Load() }

// dial wraps next so that every connection it opens counts into w.
func (w *writeCounter) dial(next dcs.DialFunc) dcs.DialFunc {
	if next == nil {
		var d net.Dialer
		next = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, w: w}, nil
	}
}

type countingConn struct {
	net.Conn
	w *writeCounter
}

// Write counts a write that put any byte on the wire: a partial frame is
// discarded by the server, but counting it keeps the rule simple and safe.
func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.w.n.Add(1)
	}
	return n, err
}
