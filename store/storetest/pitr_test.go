package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// TestPointInTimeRecovery follows the PITR runbook (docs/operations.md)
// on a throwaway cluster: WAL archiving on, a base backup, Herald writes
// before and after a target time, the primary is dropped, and a new
// cluster restored from the base backup and the archive to the target time
// holds exactly the entries written before it, with a ledger that verifies
// against the checkpoint signed before the backup.
func TestPointInTimeRecovery(t *testing.T) {
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parent is private to root, and the cluster runs as
	// the postgres user.
	root, err := os.MkdirTemp("", "herald-pitr-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	owner := ""
	chown := func(string) {}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres system user: %v", err)
		}
		owner = u.Username
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		chown = func(p string) {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pg := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if owner != "" {
			cmd = exec.Command("runuser", append([]string{"-u", owner, "--", filepath.Join(bin, name)}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	archive, primary, base, restored := filepath.Join(root, "archive"), filepath.Join(root, "primary"), filepath.Join(root, "base"), filepath.Join(root, "restored")
	for _, d := range []string{archive, base} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		chown(d)
	}
	chown(root)
	pg("initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	port1, _ := freePort()
	opts := func(port int) string {
		return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c wal_level=replica -c archive_mode=on -c archive_timeout=1 "+
			"-c archive_command='test ! -f %s/%%f && cp %%p %s/%%f'", port, root, archive, archive)
	}
	pg("pg_ctl", "-D", primary, "-o", opts(port1), "-l", filepath.Join(root, "primary.log"), "-w", "start")
	stopped := false
	stop := func(dir string) {
		pg("pg_ctl", "-D", dir, "-m", "fast", "-w", "stop")
	}
	t.Cleanup(func() {
		if !stopped {
			stop(primary)
		}
	})
	ctx := context.Background()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port1)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE herald"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/herald?sslmode=disable", port1)
	s, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org, err := s.CreateOrg(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	record := func(kind string) {
		t.Helper()
		if _, err := s.RecordLedger(ctx, org.ID, store.LedgerRecord{Kind: kind, Actor: "pitr-test"}); err != nil {
			t.Fatal(err)
		}
	}
	skey, vkey, _ := ledger.GenerateKey("herald-test/pitr")
	signer, _ := ledger.NewSigner(skey)
	logs := store.NewLedgerLogs(s, "", signer)
	record("test.before_backup")
	if _, _, err := logs.Checkpoint(ctx, org.ID); err != nil {
		t.Fatal(err)
	}
	pg("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(port1), "-U", "postgres", "-D", filepath.Join(base, "data"), "-X", "none", "--checkpoint=fast")
	record("test.kept")
	time.Sleep(1100 * time.Millisecond) // the target falls strictly between the two commits
	var target time.Time
	if err := pgxQueryTime(ctx, dbURL, &target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	record("test.after_target")
	sizeBefore, err := s.LedgerSize(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := execSQL(ctx, dbURL, "SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	time.Sleep(2 * time.Second) // archive_timeout = 1 s: the last segment is archived
	stop(primary)
	stopped = true

	// The primary is gone. Restore the base backup and replay the archive to the target.
	if err := os.Rename(filepath.Join(base, "data"), restored); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("\nrestore_command = 'cp %s/%%f %%p'\nrecovery_target_time = '%s'\nrecovery_target_action = 'promote'\n",
		archive, target.UTC().Format("2006-01-02 15:04:05.999999+00"))
	f, err := os.OpenFile(filepath.Join(restored, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(conf)
	f.Close()
	if err := os.WriteFile(filepath.Join(restored, "recovery.signal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	chown(filepath.Join(restored, "recovery.signal"))
	port2, _ := freePort()
	pg("pg_ctl", "-D", restored, "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c archive_mode=off", port2, root),
		"-l", filepath.Join(root, "restored.log"), "-w", "-t", "120", "start")
	defer stop(restored)
	rURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/herald?sslmode=disable", port2)
	var r *store.Store
	for deadline := time.Now().Add(60 * time.Second); ; {
		// Recovery ends with a promotion; until then the server is read-only.
		if r, err = store.Open(ctx, rURL); err == nil {
			var inRecovery bool
			if err = pgxQueryBool(ctx, rURL, "SELECT pg_is_in_recovery()", &inRecovery); err == nil && !inRecovery {
				break
			}
			r.Close()
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(root, "restored.log"))
			t.Fatalf("the restored cluster did not finish recovery: %v\n%s", err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer r.Close()
	es, err := r.LedgerEntries(ctx, org.ID, store.LedgerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, e := range es {
		kinds[e.Kind] = true
	}
	if !kinds["test.before_backup"] || !kinds["test.kept"] || kinds["test.after_target"] {
		t.Fatalf("restored to %s: entries %v; want before_backup and kept, not after_target", target, kinds)
	}
	if uint64(len(es)) != sizeBefore-1 {
		t.Errorf("restored %d entries, want %d (all but the one after the target)", len(es), sizeBefore-1)
	}
	vs, _ := ledger.NewVerifiers(vkey)
	rep, err := store.NewLedgerLogs(r, "", nil).VerifyLedger(ctx, org.ID, store.LedgerExportOptions{}, vs)
	if err != nil || !rep.OK || rep.Checkpoints != 1 {
		t.Fatalf("restored ledger: %+v, %v", rep, err)
	}
}

func pgxQueryTime(ctx context.Context, url string, dst *time.Time) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, "SELECT clock_timestamp()").Scan(dst)
}

func pgxQueryBool(ctx context.Context, url, sql string, dst *bool) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.QueryRow(ctx, sql).Scan(dst)
}

func execSQL(ctx context.Context, url, sql string) error {
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}
