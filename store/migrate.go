package store

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/heraldhq/herald/migrations"
)

// Migration is one embedded schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the embedded migrations for this store's database, in order.
func (s *Store) Migrations() ([]Migration, error) {
	fsys, dir := fs.FS(migrations.SQLite), "sqlite"
	if s.d.name == "postgres" {
		fsys, dir = migrations.Postgres, "postgres"
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		b, err := fs.ReadFile(fsys, dir+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction, and returns the schema
// version afterwards. Running it again is a no-op. On PostgreSQL an advisory
// lock keeps two starting replicas from migrating at once.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	ms, err := s.Migrations()
	if err != nil {
		return 0, err
	}
	if _, err := s.q.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at text NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	version := 0
	for _, m := range ms {
		err := s.InTx(ctx, func(tx *Tx) error {
			if err := tx.Lock(ctx, "herald.migrate"); err != nil {
				return err
			}
			var n int
			if err := tx.q.queryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
				return fmt.Errorf("read schema version: %w", err)
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.q.exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			_, err := tx.q.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, s.now().Format("2006-01-02T15:04:05.000000Z07:00"))
			return err
		})
		if err != nil {
			return version, err
		}
		version = m.Version
	}
	return version, nil
}

// SchemaVersion returns the highest applied migration, 0 for an empty database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	err := s.q.queryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}
