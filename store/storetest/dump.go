package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldhq/herald/store"
)

// Dump returns every row of every table of a store opened by Open, as
// text, for tests that prove some datum is gone from the whole database
// (erasure): pg_dump --data-only on PostgreSQL; on SQLite, each table's rows
// read through a separate connection, BLOBs as their raw bytes. On
// PostgreSQL, bytea columns appear hex-encoded (\x…): grep for both forms.
func Dump(t testing.TB, s *store.Store) string {
	t.Helper()
	u := DatabaseURL(t, s)
	if !strings.HasPrefix(u, "sqlite:") {
		out, err := exec.Command("pg_dump", "--data-only", "--no-owner", u).Output()
		if err != nil {
			t.Fatalf("pg_dump (scripts/test installs it): %v", err)
		}
		return string(out)
	}
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Clean(strings.TrimPrefix(u, "sqlite:"))+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		fmt.Fprintf(&b, "-- %s\n", table)
		rows, err := db.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteByte('\t')
				}
				switch v := v.(type) {
				case []byte:
					b.Write(v)
				default:
					fmt.Fprint(&b, v)
				}
			}
			b.WriteByte('\n')
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
