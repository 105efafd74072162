package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/heraldhq/herald/telemetry"
)

// pgDB adapts a pgx pool. PostgreSQL is the production store: several
// gateway replicas and workers share it, so locks are advisory transaction
// locks and queue claims use FOR UPDATE SKIP LOCKED.
type pgDB struct {
	pool *pgxpool.Pool
}

func openPostgres(ctx context.Context, url string) (*pgDB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx defaults to max(4, CPUs) connections; a gateway with a worker
		// keeps many sends in flight, each needing a connection for its
		// short transactions. pool_max_conns in the URL overrides this.
		cfg.MaxConns = defaultMaxConns
	}
	if telemetry.TracingEnabled() {
		cfg.ConnConfig.Tracer = queryTracer{} // db.query spans (store/tracing.go)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &pgDB{pool: pool}, nil
}

// defaultMaxConns is the pool size unless the URL sets pool_max_conns.
const defaultMaxConns = 32

var pgDialect = dialect{
	name:          "postgres",
	skipLocked:    "FOR UPDATE OF j SKIP LOCKED",
	advisoryLocks: true,
	isUnique: func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "23505"
	},
}

func (d *pgDB) dialect() dialect               { return pgDialect }
func (d *pgDB) ping(ctx context.Context) error { return d.pool.Ping(ctx) }
func (d *pgDB) close()                         { d.pool.Close() }
func (d *pgDB) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgExec(ctx, d.pool, sql, args...)
}
func (d *pgDB) query(ctx context.Context, sql string, args ...any) (rows, error) {
	return pgQuery(ctx, d.pool, sql, args...)
}
func (d *pgDB) queryRow(ctx context.Context, sql string, args ...any) row {
	return pgRow{d.pool.QueryRow(ctx, sql, args...)}
}
func (d *pgDB) deferExec(ctx context.Context, wrap func(error) error, sql string, args ...any) error {
	return runNow(ctx, d, wrap, sql, args...)
}

// inTx runs fn in a transaction on one pooled connection. Statements fn
// defers (deferExec) are not sent on their own: they travel in one pgx
// batch (one network round trip, one Sync) with the next statement that
// needs an answer, and the last of them with COMMIT. BEGIN itself is
// deferred the same way. A submit's transaction is thus four round trips
// (locks + facts, the commit's inserts + the ledger head read, the ledger
// entry + COMMIT) instead of one per statement.
func (d *pgDB) inTx(ctx context.Context, fn func(q querier) error) (err error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer conn.Release()
	t := &pgTx{c: conn.Conn(), pending: []pendingExec{{sql: "begin"}}}
	defer func() {
		if p := recover(); p != nil {
			t.rollback()
			panic(p)
		}
	}()
	if err := fn(t); err != nil {
		t.rollback()
		return err
	}
	t.pending = append(t.pending, pendingExec{sql: "commit"})
	tag, err := t.flush(ctx)
	if err != nil {
		t.rollback()
		return err
	}
	if tag.String() == "ROLLBACK" {
		// A failed statement whose error was not seen: PostgreSQL turns the
		// COMMIT of an aborted transaction into a rollback.
		return fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback)
	}
	return nil
}

// pendingExec is a statement deferred to the transaction's next round trip;
// wrap gives its error the context the caller would have added.
type pendingExec struct {
	sql  string
	args []any
	wrap func(error) error
}

// pgTx is a transaction in progress on one connection, with the
// statements deferred to its next round trip.
type pgTx struct {
	c       *pgx.Conn
	pending []pendingExec
	sent    bool // BEGIN has reached the server
}

// flush sends the pending statements (and nothing else) in one batch and
// returns the last one's command tag, or the first error.
func (t *pgTx) flush(ctx context.Context) (pgconn.CommandTag, error) {
	if len(t.pending) == 0 {
		return pgconn.CommandTag{}, nil
	}
	br, sent := t.send(ctx, nil)
	tag, err := drain(br, sent)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return tag, err
}

// send sends the pending statements and then last (when not nil) in one
// batch, and returns the pending statements it sent.
func (t *pgTx) send(ctx context.Context, last *pendingExec) (pgx.BatchResults, []pendingExec) {
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(t.pending)+1)}
	for _, p := range t.pending {
		b.Queue(p.sql, p.args...)
	}
	if last != nil {
		b.Queue(last.sql, last.args...)
	}
	sent := t.pending
	t.pending, t.sent = nil, true
	return t.c.SendBatch(ctx, b), sent
}

// drain reads the results of the deferred statements of a sent batch and
// returns the last tag, or the first error wrapped as its caller asked.
func drain(br pgx.BatchResults, sent []pendingExec) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	for _, p := range sent {
		var err error
		if tag, err = br.Exec(); err != nil {
			if p.wrap != nil {
				err = p.wrap(err)
			}
			return tag, err
		}
	}
	return tag, nil
}

func (t *pgTx) deferExec(_ context.Context, wrap func(error) error, sql string, args ...any) error {
	t.pending = append(t.pending, pendingExec{sql: sql, args: args, wrap: wrap})
	return nil
}

func (t *pgTx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if len(t.pending) == 0 {
		return pgExec(ctx, t.c, sql, args...)
	}
	br, sent := t.send(ctx, &pendingExec{sql: sql, args: args})
	defer br.Close()
	if _, err := drain(br, sent); err != nil {
		return 0, err
	}
	tag, err := br.Exec()
	return tag.RowsAffected(), err
}

func (t *pgTx) query(ctx context.Context, sql string, args ...any) (rows, error) {
	if len(t.pending) == 0 {
		return pgQuery(ctx, t.c, sql, args...)
	}
	br, sent := t.send(ctx, &pendingExec{sql: sql, args: args})
	if _, err := drain(br, sent); err != nil {
		_ = br.Close()
		return nil, err
	}
	r, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return batchRows{Rows: r, br: br}, nil
}

func (t *pgTx) queryRow(ctx context.Context, sql string, args ...any) row {
	if len(t.pending) == 0 {
		return pgRow{t.c.QueryRow(ctx, sql, args...)}
	}
	r, err := t.query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return batchRow{r.(batchRows)}
}

// batchRows are the rows of a batch's last query; closing them ends the batch.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

// batchRow gives batchRows QueryRow semantics.
type batchRow struct{ r batchRows }

func (r batchRow) Scan(dest ...any) error {
	defer r.r.Close()
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			return err
		}
		return errNoRows
	}
	if err := r.r.Rows.Scan(dest...); err != nil {
		return err
	}
	r.r.Close()
	return r.r.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rollback ends the transaction after a failure. A connection whose
// rollback fails is closed, so the pool never hands out a broken session.
func (t *pgTx) rollback() {
	t.pending = nil
	if !t.sent || t.c.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := t.c.Exec(ctx, "rollback"); err != nil {
		_ = t.c.Close(ctx)
	}
}

type pgConn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func pgExec(ctx context.Context, c pgConn, sql string, args ...any) (int64, error) {
	tag, err := c.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func pgQuery(ctx context.Context, c pgConn, sql string, args ...any) (rows, error) {
	r, err := c.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}
