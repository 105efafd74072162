package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteDB adapts database/sql over modernc.org/sqlite (pure Go, no cgo).
// SQLite is the embedded single-node default: one process owns the file.
// Transactions run on one writer goroutine that group-commits the ones
// queued together (inTx); writes outside a transaction take the same
// in-process mutex (cheaper than SQLite's busy-wait); BEGIN IMMEDIATE makes
// a second process wait instead of failing a lock upgrade. Times are stored as INTEGER microseconds; the
// adapter converts time.Time arguments and scan targets, so queries are
// shared with PostgreSQL.
type sqliteDB struct {
	db      *sql.DB
	writeMu sync.Mutex
	stmts   stmtCache
	// The group-commit writer (inTx), started on first use.
	startWriter sync.Once
	queue       chan *txReq
	stopWriter  chan struct{}
	writerDone  chan struct{}
}

// maxCachedStatements bounds the statement cache. Herald's queries are a
// few dozen fixed texts plus a few filter combinations; the bound only
// guards against a caller building SQL with variable-length lists, whose
// texts are then prepared per call as before.
const maxCachedStatements = 256

// stmtCache keeps one prepared statement per SQL text. SQLite parses and
// plans a statement on every prepare, and modernc's connection-level Exec
// and Query prepare and finalize each call; a cached *sql.Stmt is prepared
// once per pooled connection (database/sql keeps the per-connection
// handles) and transactions borrow it with Tx.StmtContext. Multi-statement
// scripts (migrations) are never cached: a statement holds one command.
type stmtCache struct {
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

// get returns the cached statement for q, preparing it on first use, or
// nil when q should not be cached (the caller then runs q directly).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.m[q]
	c.mu.RUnlock()
	if ok {
		return st
	}
	if strings.Count(strings.TrimRight(strings.TrimSpace(q), ";"), ";") > 0 {
		return nil // a script
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if len(c.m) >= maxCachedStatements {
		return nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		// Not cached: running it directly reports the same error in context.
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		_ = st.Close()
	}
	c.m = nil
}

func openSQLite(ctx context.Context, path string) (*sqliteDB, error) {
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)&_pragma=busy_timeout(15000)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &sqliteDB{db: db, stopWriter: make(chan struct{})}, nil
}

var sqliteDialect = dialect{
	name: "sqlite",
	isUnique: func(err error) bool {
		var se *sqlite.Error
		if errors.As(err, &se) {
			return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
		}
		return false
	},
}

func (d *sqliteDB) dialect() dialect               { return sqliteDialect }
func (d *sqliteDB) ping(ctx context.Context) error { return d.db.PingContext(ctx) }
func (d *sqliteDB) close() {
	close(d.stopWriter)
	d.startWriter.Do(func() {}) // no writer starts after close
	if d.writerDone != nil {
		<-d.writerDone
	}
	d.stmts.close()
	d.db.Close()
}

func (d *sqliteDB) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if isWrite(q) {
		d.writeMu.Lock()
		defer d.writeMu.Unlock()
	}
	if st := d.stmts.get(ctx, d.db, q); st != nil {
		return sqlExec(ctx, stmtConn{st}, q, args...)
	}
	return sqlExec(ctx, d.db, q, args...)
}
func (d *sqliteDB) query(ctx context.Context, q string, args ...any) (rows, error) {
	if isWrite(q) {
		d.writeMu.Lock()
		defer d.writeMu.Unlock()
	}
	if st := d.stmts.get(ctx, d.db, q); st != nil {
		return sqlQuery(ctx, stmtConn{st}, q, args...)
	}
	return sqlQuery(ctx, d.db, q, args...)
}
func (d *sqliteDB) queryRow(ctx context.Context, q string, args ...any) row {
	r, err := d.query(ctx, q, args...)
	return &sqlRow{rows: r, err: err}
}

func (d *sqliteDB) deferExec(ctx context.Context, wrap func(error) error, q string, args ...any) error {
	return runNow(ctx, d, wrap, q, args...)
}

// inTx runs fn in a transaction shared with the other transactions queued
// at the same moment (group commit): one writer goroutine takes every
// queued fn, runs them one after another in one SQLite transaction, each
// inside its own SAVEPOINT, and commits once. A fn that fails is rolled
// back to its savepoint alone; the others commit. Callers get their answer
// only after the shared COMMIT, so nobody sees a write that could still be
// lost.
//
// Invariants:
//   - fns of a group run serially, each seeing the writes of the ones
//     before it, exactly as if their transactions had run one after the
//     other: decide-under-lock stays exact (caps hold under concurrency).
//   - The writer never waits for more work: a lone submit commits at once;
//     groups form only when submits are already queued behind a commit.
//   - A group is bounded (maxGroup fns), so one burst cannot hold the
//     answers of early fns for long.
func (d *sqliteDB) inTx(ctx context.Context, fn func(q querier) error) error {
	d.startWriter.Do(func() {
		// Unbuffered: a request is either taken by the writer or still
		// its caller's, so none is stranded when the store closes.
		d.queue = make(chan *txReq)
		d.writerDone = make(chan struct{})
		go d.writer()
	})
	if d.queue == nil {
		return errors.New("begin: the store is closed")
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case d.queue <- r:
	case <-ctx.Done():
		return fmt.Errorf("begin: %w", ctx.Err())
	case <-d.writerDone:
		return errors.New("begin: the store is closed")
	}
	<-r.done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// maxGroup bounds the transactions one group commit holds.
const maxGroup = 64

// txReq is one caller's transaction waiting for the writer.
type txReq struct {
	ctx      context.Context
	fn       func(q querier) error
	err      error
	panicked any
	done     chan struct{}
}

// writer is the one goroutine that runs transactions (see inTx).
func (d *sqliteDB) writer() {
	defer close(d.writerDone)
	group := make([]*txReq, 0, maxGroup)
	for {
		var r *txReq
		select {
		case r = <-d.queue:
		case <-d.stopWriter:
			return
		}
		group = append(group[:0], r)
	more:
		for len(group) < maxGroup {
			select {
			case r := <-d.queue:
				group = append(group, r)
			default:
				break more
			}
		}
		d.commitGroup(group)
		for _, r := range group {
			close(r.done)
		}
		clear(group)
	}
}

// commitGroup runs the group's fns in one transaction and commits it.
func (d *sqliteDB) commitGroup(group []*txReq) {
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	fail := func(err error) {
		for _, r := range group {
			if r.err == nil && r.panicked == nil {
				r.err = err
			}
		}
	}
	// The transaction outlives any one caller's context: each fn's
	// statements run under its own caller's context instead.
	tx, err := d.db.BeginTx(context.Background(), nil)
	if err != nil {
		fail(fmt.Errorf("begin: %w", err))
		return
	}
	t := sqliteTx{tx: tx, db: d, borrowed: &borrowedStmts{m: map[string]*sql.Stmt{}}}
	bg := context.Background()
	alone := len(group) == 1
	ok := 0
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.err = fmt.Errorf("begin: %w", err)
			continue
		}
		if !alone {
			if _, err := t.exec(bg, "SAVEPOINT herald_group"); err != nil {
				_ = tx.Rollback()
				fail(fmt.Errorf("begin: savepoint: %w", err))
				return
			}
		}
		r.err, r.panicked = runFn(r, t)
		if r.err == nil && r.panicked == nil {
			ok++
			if !alone {
				if _, err := t.exec(bg, "RELEASE herald_group"); err != nil {
					_ = tx.Rollback()
					fail(fmt.Errorf("commit: release savepoint: %w", err))
					return
				}
			}
			continue
		}
		if alone {
			_ = tx.Rollback()
			return
		}
		// Undo this fn alone. Some SQLite errors (I/O, full disk) roll back
		// the whole transaction: then the group fails together.
		if _, err := t.exec(bg, "ROLLBACK TO herald_group"); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("group commit aborted by a failed transaction: %w", err))
			return
		}
		if _, err := t.exec(bg, "RELEASE herald_group"); err != nil {
			_ = tx.Rollback()
			fail(fmt.Errorf("group commit aborted by a failed transaction: %w", err))
			return
		}
	}
	if ok == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		fail(fmt.Errorf("commit: %w", err))
	}
}

// runFn runs one caller's fn, turning a panic into a value the caller
// re-raises on its own goroutine.
func runFn(r *txReq, t sqliteTx) (err error, panicked any) {
	defer func() {
		if p := recover(); p != nil {
			panicked = p
		}
	}()
	return r.fn(t), nil
}

// isWrite reports whether a statement outside a transaction writes, so it
// takes the writer mutex.
func isWrite(q string) bool {
	q = strings.TrimSpace(q)
	if len(q) < 6 {
		return false
	}
	switch strings.ToUpper(q[:6]) {
	case "SELECT", "PRAGMA":
		return false
	}
	return true
}

type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func sqlExec(ctx context.Context, c sqlConn, q string, args ...any) (int64, error) {
	res, err := c.ExecContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func sqlQuery(ctx context.Context, c sqlConn, q string, args ...any) (rows, error) {
	r, err := c.QueryContext(ctx, q, sqliteArgs(args)...)
	if err != nil {
		return nil, err
	}
	return &sqlRows{r}, nil
}

// stmtConn runs a prepared statement through the sqlConn interface; the
// query text is the statement's own.
type stmtConn struct{ st *sql.Stmt }

func (c stmtConn) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return c.st.ExecContext(ctx, args...)
}
func (c stmtConn) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return c.st.QueryContext(ctx, args...)
}

type sqliteTx struct {
	tx *sql.Tx
	db *sqliteDB
	// borrowed holds this transaction's handle of each cached statement:
	// database/sql keeps every Tx.StmtContext handle until the transaction
	// ends, so borrowing per call would grow a long transaction (a
	// million-row import) by one handle per statement executed.
	borrowed *borrowedStmts
}

type borrowedStmts struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt borrows the cached statement for q on the transaction's connection,
// once per transaction and SQL text; the borrowed handle is closed when the
// transaction ends (closing it never finalizes the cached statement).
func (t sqliteTx) stmt(ctx context.Context, q string) *sql.Stmt {
	t.borrowed.mu.Lock()
	defer t.borrowed.mu.Unlock()
	if st, ok := t.borrowed.m[q]; ok {
		return st
	}
	st := t.db.stmts.get(ctx, t.db.db, q)
	if st != nil {
		st = t.tx.StmtContext(ctx, st)
	}
	t.borrowed.m[q] = st // nil too: q is not cacheable
	return st
}

func (t sqliteTx) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if st := t.stmt(ctx, q); st != nil {
		return sqlExec(ctx, stmtConn{st}, q, args...)
	}
	return sqlExec(ctx, t.tx, q, args...)
}
func (t sqliteTx) query(ctx context.Context, q string, args ...any) (rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return sqlQuery(ctx, stmtConn{st}, q, args...)
	}
	return sqlQuery(ctx, t.tx, q, args...)
}
func (t sqliteTx) deferExec(ctx context.Context, wrap func(error) error, q string, args ...any) error {
	return runNow(ctx, t, wrap, q, args...)
}
func (t sqliteTx) queryRow(ctx context.Context, q string, args ...any) row {
	r, err := t.query(ctx, q, args...)
	return &sqlRow{rows: r, err: err}
}

// sqliteArgs converts time arguments to microseconds since the epoch.
func sqliteArgs(args []any) []any {
	out := args
	for i, a := range args {
		var v any
		switch t := a.(type) {
		case time.Time:
			v = t.UnixMicro()
		case *time.Time:
			if t == nil {
				v = nil
			} else {
				v = t.UnixMicro()
			}
		default:
			continue
		}
		if &out[0] == &args[0] {
			out = append([]any(nil), args...)
		}
		out[i] = v
	}
	return out
}

type sqlRows struct{ r *sql.Rows }

func (r *sqlRows) Next() bool { return r.r.Next() }
func (r *sqlRows) Err() error { return r.r.Err() }
func (r *sqlRows) Close()     { _ = r.r.Close() }
func (r *sqlRows) Scan(dest ...any) error {
	var fix []func()
	conv := dest
	for i, d := range dest {
		switch t := d.(type) {
		case *time.Time:
			var n sql.NullInt64
			if &conv[0] == &dest[0] {
				conv = append([]any(nil), dest...)
			}
			conv[i] = &n
			fix = append(fix, func() { *t = time.UnixMicro(n.Int64).UTC() })
		case **time.Time:
			var n sql.NullInt64
			if &conv[0] == &dest[0] {
				conv = append([]any(nil), dest...)
			}
			conv[i] = &n
			fix = append(fix, func() {
				if n.Valid {
					v := time.UnixMicro(n.Int64).UTC()
					*t = &v
				} else {
					*t = nil
				}
			})
		}
	}
	if err := r.r.Scan(conv...); err != nil {
		return err
	}
	for _, f := range fix {
		f()
	}
	return nil
}

// sqlRow gives database/sql query results QueryRow semantics.
type sqlRow struct {
	rows rows
	err  error
}

func (r *sqlRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return errNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Err()
}
