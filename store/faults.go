package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/heraldhq/herald"
)

// IsUnavailable reports whether err is an infrastructure fault of the
// database rather than an answer about the data: the server is restarting,
// unreachable, out of connections, or the transaction lost a conflict it
// may win on a second try. Callers MUST treat such errors as temporary
// (503 with Retry-After, retry the transaction) and MUST NOT turn them into
// a permanent business decision (a denial, a failed delivery).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var he *herald.Error
	if errors.As(err, &he) {
		return he.Code == herald.CodeUnavailable
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources (too many connections, disk full)
			strings.HasPrefix(pgErr.Code, "57P"), // admin/crash shutdown, cannot connect now
			pgErr.Code == "40001",                // serialization failure
			pgErr.Code == "40P01",                // deadlock detected
			pgErr.Code == "55P03":                // lock not available
			return true
		}
		return false
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff { // primary result code
		case 5, 6, 10, 13: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		strings.Contains(err.Error(), "conn closed") // pgx's pool reports a connection that died under it so
}

// LogKey is what may be logged of a lock key or any other identifier that
// embeds personal data (a chat id) or a client's secret (an Idempotency-Key):
// a short, stable digest that lets an operator correlate log lines without
// learning the value.
func LogKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "h:" + hex.EncodeToString(sum[:6])
}
