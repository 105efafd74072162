package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/drill"
	"github.com/heraldhq/herald/store"
)

// errDrillFailed is returned (exit status 1) after a failed drill's report.
var errDrillFailed = errors.New("the recovery drill failed (see the report above)")

func newDrillCmd() *cobra.Command {
	var (
		c       config
		keys    []string
		workDir string
		pgBin   string
		keep    bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Run a recovery drill: back up, restore, verify, measure RTO and RPO",
		Long: `Backs up the live database (SQLite: VACUUM INTO, an online consistent copy; PostgreSQL:
pg_dump), restores it into a fresh database (a new file; a new database on the same server),
starts Herald's HTTP API on it and waits until it is ready, verifies every organisation's ledger
end to end against the signed checkpoints, checks that every action accepted before the backup is
present, and reports the measured RTO and RPO. The result of each organisation is recorded in the
live ledger (drill.completed) and shown in the DPIA. Exit status 1 when the drill fails.

  herald drill --key 'herald/ledger+…'                      # embedded SQLite in --data-dir
  herald drill --database-url postgres://… --key '…'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(keys) == 0 {
				return errors.New("name the ledger's public key(s) with --key (GET /v1/ledger/keys publishes them)")
			}
			var res *drill.Result
			err := withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				src := c.databaseURL()
				wd := workDir
				if wd == "" {
					wd = filepath.Join(c.DataDir, "drills")
				}
				var err error
				res, err = drill.Run(ctx, drill.Config{Source: s, SourceURL: src, WorkDir: wd, VerifierKeys: keys, PGBin: pgBin, Keep: keep})
				return err
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				state := "OK"
				if !res.OK {
					state = "FAILED"
				}
				fmt.Fprintf(w, "recovery drill %s on %s: RTO %.3fs, RPO %.3fs (backup %d bytes)\n", state, res.Store, res.RTOSeconds, res.RPOSeconds, res.BackupBytes)
				for _, o := range res.Orgs {
					fmt.Fprintf(w, "  org %s: ledger %d entries verified, %d checkpoints, last checkpoint %d; %d accepted actions checked, %d missing %s\n",
						o.Org, o.EntriesVerified, o.CheckpointsVerified, o.LastCheckpoint, o.ActionsChecked, o.Missing, o.Problem)
				}
				if res.Restored != "" {
					fmt.Fprintf(w, "  restored database kept: %s\n", res.Restored)
				}
			}
			if !res.OK {
				return errDrillFailed
			}
			return nil
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringArrayVar(&keys, "key", nil, "ledger verifier key (name+hash+key), repeatable")
	cmd.Flags().StringVar(&workDir, "work-dir", "", "where the backup and the restored SQLite file go (default: --data-dir/drills)")
	cmd.Flags().StringVar(&pgBin, "pg-bin", os.Getenv("HERALD_PG_BIN"), "directory of pg_dump and pg_restore (default: PATH)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the restored database for inspection")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
