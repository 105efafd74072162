// Package drill runs recovery drills: back up the live database, restore
// the backup into a fresh database, start Herald's HTTP API on it, verify
// every organisation's ledger end to end against the signed checkpoints,
// check that every action accepted before the backup is present, and
// measure the recovery time (RTO) and the data-loss window (RPO).
//
// Invariants:
//   - A drill MUST NOT change the live database except to record its
//     result: one drill.completed ledger entry per organisation, which the
//     DPIA reads as evidence (dpia.KindDrillCompleted).
//   - RTO and RPO MUST be measured on the wall clock, not estimated.
//     RTO runs from the start of the restore (the primary is presumed
//     lost) until Herald answers ready on the restored database with every
//     ledger verified. RPO is the window of writes the backup would lose if
//     the primary failed at that moment: from the backup's consistent point
//     to the end of verification. Production RPO also depends on how often
//     backups (or WAL archives, docs/operations.md) are taken.
//   - A drill whose restore does not verify is recorded with ok=false; it
//     is never reported as a success.
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
	"github.com/heraldhq/herald/telemetry"
)

// Config is one drill.
type Config struct {
	// Source is the live store and SourceURL its database URL (postgres://…
	// or a SQLite path / "sqlite:PATH").
	Source    *store.Store
	SourceURL string
	// WorkDir holds the backup (and the restored SQLite file).
	WorkDir string
	// VerifierKeys are the ledger's public keys (every key that signed).
	VerifierKeys []string
	// PGBin is the directory of pg_dump and pg_restore; empty uses PATH.
	PGBin string
	// Keep leaves the restored database in place (for inspection).
	Keep bool
	Log  *slog.Logger
}

// OrgResult is one organisation's checks on the restored database.
type OrgResult struct {
	Org                 string `json:"org"`
	LedgerSize          uint64 `json:"ledger_size"`
	EntriesVerified     uint64 `json:"entries_verified"`
	CheckpointsVerified uint64 `json:"checkpoints_verified"`
	LastCheckpoint      uint64 `json:"last_checkpoint"`
	ActionsChecked      int    `json:"actions_checked"`
	Missing             int    `json:"actions_missing"`
	OK                  bool   `json:"ok"`
	Problem             string `json:"problem,omitempty"`
}

// Result is a drill's outcome.
type Result struct {
	Store       string        `json:"store"`
	Backup      string        `json:"backup"`
	BackupBytes int64         `json:"backup_bytes"`
	SnapshotAt  time.Time     `json:"snapshot_at"`
	RestoreAt   time.Time     `json:"restore_started_at"`
	VerifiedAt  time.Time     `json:"verified_at"`
	RTO         time.Duration `json:"rto_ns"`
	RPO         time.Duration `json:"rpo_ns"`
	RTOSeconds  float64       `json:"rto_seconds"`
	RPOSeconds  float64       `json:"rpo_seconds"`
	Orgs        []OrgResult   `json:"orgs"`
	OK          bool          `json:"ok"`
	// Restored is the restored database's URL when Keep was set.
	Restored string `json:"restored,omitempty"`
}

// Run performs the drill and records its result in the source's ledger.
func Run(ctx context.Context, c Config) (*Result, error) {
	if len(c.VerifierKeys) == 0 {
		return nil, errors.New("drill: the ledger's verifier keys are required to verify the restore")
	}
	verifiers, err := ledger.NewVerifiers(c.VerifierKeys...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.WorkDir, 0o700); err != nil {
		return nil, fmt.Errorf("drill: work directory: %w", err)
	}
	res := &Result{Store: c.Source.Dialect()}
	orgs, err := c.Source.OrgIDs(ctx)
	if err != nil {
		return nil, err
	}
	// What must survive: everything accepted and every entry written
	// before the backup's consistent point.
	type before struct {
		actions []string
		size    uint64
	}
	want := map[string]before{}
	for _, org := range orgs {
		ids, err := c.Source.AcceptedActionIDs(ctx, org, c.Source.Now())
		if err != nil {
			return nil, err
		}
		size, err := c.Source.LedgerSize(ctx, org)
		if err != nil {
			return nil, err
		}
		want[org] = before{ids, size}
	}

	res.SnapshotAt = time.Now().UTC()
	restoredURL, cleanup, err := backupAndRestore(ctx, c, res)
	if err != nil {
		return nil, err
	}
	if !c.Keep {
		defer cleanup()
	} else {
		res.Restored = restoredURL
	}
	restored, err := store.Open(ctx, restoredURL)
	if err != nil {
		return nil, fmt.Errorf("drill: open the restored database: %w", err)
	}
	defer restored.Close()
	if _, err := restored.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("drill: migrate the restored database: %w", err)
	}
	if err := serveReady(ctx, restored); err != nil {
		return nil, err
	}
	logs := store.NewLedgerLogs(restored, "", nil)
	res.OK = true
	for _, org := range orgs {
		or := OrgResult{Org: org, LedgerSize: want[org].size, ActionsChecked: len(want[org].actions), OK: true}
		rep, err := logs.VerifyLedger(ctx, org, store.LedgerExportOptions{}, verifiers)
		switch {
		case err != nil:
			or.OK, or.Problem = false, err.Error()
		case !rep.OK:
			or.OK, or.Problem = false, rep.Problem
		case rep.From+rep.Entries < want[org].size:
			or.OK, or.Problem = false, fmt.Sprintf("the restored ledger has %d entries, the source had %d before the backup", rep.From+rep.Entries, want[org].size)
		}
		or.EntriesVerified, or.CheckpointsVerified = rep.Entries, rep.Checkpoints
		if cp, err := restored.LatestLedgerCheckpoint(ctx, org); err == nil {
			or.LastCheckpoint = cp.Size
		}
		missing, err := restored.MissingActions(ctx, org, want[org].actions)
		if err != nil {
			return nil, err
		}
		if or.Missing = len(missing); or.Missing > 0 {
			or.OK = false
			or.Problem += fmt.Sprintf("; %d accepted actions missing", or.Missing)
		}
		res.OK = res.OK && or.OK
		res.Orgs = append(res.Orgs, or)
	}
	res.VerifiedAt = time.Now().UTC()
	res.RTO = res.VerifiedAt.Sub(res.RestoreAt)
	res.RPO = res.VerifiedAt.Sub(res.SnapshotAt)
	res.RTOSeconds, res.RPOSeconds = res.RTO.Seconds(), res.RPO.Seconds()
	for _, or := range res.Orgs {
		if _, err := c.Source.RecordLedger(ctx, or.Org, store.LedgerRecord{Kind: dpia.KindDrillCompleted, Actor: "drill",
			Attrs: map[string]any{"ok": or.OK, "store": res.Store, "rto_seconds": res.RTOSeconds, "rpo_seconds": res.RPOSeconds,
				"entries_verified": or.EntriesVerified, "checkpoints_verified": or.CheckpointsVerified,
				"actions_checked": or.ActionsChecked, "actions_missing": or.Missing}}); err != nil {
			return res, fmt.Errorf("drill: record the result of org %q: %w", or.Org, err)
		}
	}
	return res, nil
}

// backupAndRestore backs the source up and restores it into a fresh
// database, returning its URL and how to remove it.
func backupAndRestore(ctx context.Context, c Config, res *Result) (string, func(), error) {
	suffix := randomSuffix()
	if c.Source.Dialect() == "sqlite" {
		res.Backup = filepath.Join(c.WorkDir, "herald-backup-"+suffix+".db")
		if err := c.Source.BackupSQLite(ctx, res.Backup); err != nil {
			return "", nil, err
		}
		res.BackupBytes = fileSize(res.Backup)
		res.RestoreAt = time.Now().UTC()
		// Restoring a SQLite backup is copying the file into place.
		restored := filepath.Join(c.WorkDir, "herald-restored-"+suffix+".db")
		if err := copyFile(res.Backup, restored); err != nil {
			return "", nil, err
		}
		return "sqlite:" + restored, func() {
			for _, p := range []string{restored, restored + "-wal", restored + "-shm", res.Backup} {
				_ = os.Remove(p)
			}
		}, nil
	}
	res.Backup = filepath.Join(c.WorkDir, "herald-backup-"+suffix+".dump")
	if out, err := exec.CommandContext(ctx, bin(c, "pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
		"--file", res.Backup, c.SourceURL).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("drill: pg_dump: %w: %s", err, out)
	}
	res.BackupBytes = fileSize(res.Backup)
	res.RestoreAt = time.Now().UTC()
	u, err := url.Parse(c.SourceURL)
	if err != nil {
		return "", nil, fmt.Errorf("drill: database URL: %w", err)
	}
	name := "herald_drill_" + suffix
	admin, err := pgx.Connect(ctx, c.SourceURL)
	if err != nil {
		return "", nil, fmt.Errorf("drill: connect to create the restore database: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("drill: create the restore database: %w", err)
	}
	u.Path = "/" + name
	restoredURL := u.String()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, c.SourceURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
		_ = os.Remove(res.Backup)
	}
	if out, err := exec.CommandContext(ctx, bin(c, "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
		"--dbname", restoredURL, res.Backup).CombinedOutput(); err != nil {
		drop()
		return "", nil, fmt.Errorf("drill: pg_restore: %w: %s", err, out)
	}
	return restoredURL, drop, nil
}

// serveReady starts Herald's HTTP API on the restored store, on a real
// socket, and waits for /readyz: the restored database serves requests.
func serveReady(ctx context.Context, s *store.Store) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("drill: listen: %w", err)
	}
	srv := &http.Server{Handler: (&gateway.Server{Store: s, Metrics: telemetry.New(nil)}).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("drill: Herald on the restored database is not ready: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func bin(c Config, name string) string {
	if c.PGBin != "" {
		return filepath.Join(c.PGBin, name)
	}
	return name
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("drill: read backup: %w", err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		return fmt.Errorf("drill: restore backup: %w", err)
	}
	return nil
}
