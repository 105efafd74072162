package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

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

func (d *pgDB) inTx(ctx context.Context, fn func(q querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(pgTx{tx}) })
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

type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgExec(ctx, t.tx, sql, args...)
}
func (t pgTx) query(ctx context.Context, sql string, args ...any) (rows, error) {
	return pgQuery(ctx, t.tx, sql, args...)
}
func (t pgTx) queryRow(ctx context.Context, sql string, args ...any) row {
	return pgRow{t.tx.QueryRow(ctx, sql, args...)}
}

type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}
