package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

// errNotVerified is returned (exit status 1) after a failed verification's
// report was printed.
var errNotVerified = errors.New("the ledger does not verify (see the report above)")

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Verify, prove and export the audit ledger",
		Long: `The audit ledger is one hash-chained, Merkle-tree-committed, signed log per organisation
(docs/audit.md). "herald ledger verify FILE --key VKEY" checks an export offline with nothing but
the export and the public key(s) published at GET /v1/ledger/keys.`,
	}
	cmd.AddCommand(newLedgerVerifyCmd(), newLedgerProveCmd(), newLedgerExportCmd())
	return cmd
}

// ledgerLogs opens the read side of the ledger on s. The CLI never signs:
// checkpoints are the server's (CheckpointJob, POST /v1/ledger/checkpoint).
func ledgerLogs(s *store.Store, host string) *store.LedgerLogs {
	return store.NewLedgerLogs(s, host, nil)
}

func newLedgerVerifyCmd() *cobra.Command {
	var (
		c      config
		keys   []string
		online bool
		org    string
	)
	cmd := &cobra.Command{
		Use:   "verify [FILE | -]",
		Short: "Verify an export offline (or the live database with --online)",
		Long: `Verify recomputes every entry hash and the Merkle tree, checks every checkpoint's signature
against the given verifier keys and the tree's root at its size, checks retained payloads, and
prints a report naming the first bad seq. It exits with status 1 when the ledger does not verify.

  herald ledger verify export.jsonl --key 'herald.example/org/2026-11+116a89bf+AWAJ…'
  herald ledger verify --online --org ORG --key … (streams an export of the live database)

Pass --key once per key that ever signed the log (key rotation keeps old checkpoints valid).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				return errors.New("name the log's public key(s) with --key (GET /v1/ledger/keys publishes them)")
			}
			vs, err := ledger.NewVerifiers(keys...)
			if err != nil {
				return err
			}
			var rep ledger.Report
			switch {
			case online && len(args) > 0:
				return errors.New("give either FILE or --online, not both")
			case online:
				err = withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
					id, err := ledgerOrgID(ctx, s, org)
					if err != nil {
						return err
					}
					rep, err = ledgerLogs(s, "").VerifyLedger(ctx, id, store.LedgerExportOptions{}, vs)
					return err
				})
			case len(args) == 0:
				return errors.New("name an export file (or - for standard input), or use --online")
			default:
				var r io.Reader = cmd.InOrStdin()
				if args[0] != "-" {
					f, err := os.Open(args[0])
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				rep, err = ledger.Verify(cmd.Context(), r, vs)
			}
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.String())
			if !rep.OK {
				return errNotVerified
			}
			return nil
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringArrayVar(&keys, "key", nil, "verifier key (name+hash+key), repeatable")
	cmd.Flags().BoolVar(&online, "online", false, "verify the live database instead of an export file")
	cmd.Flags().StringVar(&org, "org", "", "organisation id, with --online (default: the only one)")
	return cmd
}

func newLedgerProveCmd() *cobra.Command {
	var (
		c    config
		org  string
		size uint64
	)
	cmd := &cobra.Command{
		Use:   "prove SEQ",
		Short: "Print an inclusion proof of entry SEQ that a third party can check",
		Long: `Prints a self-contained inclusion bundle (JSON): the entry, its hash, the RFC 6962 audit path
and the signed checkpoint it leads to. Anyone checks it with the public key only
(ledger.VerifyInclusionBundle, or any RFC 6962 verifier plus a signed-note verifier).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 53)
			if err != nil {
				return fmt.Errorf("SEQ %q is not a sequence number", args[0])
			}
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := ledgerOrgID(ctx, s, org)
				if err != nil {
					return err
				}
				b, err := ledgerLogs(s, "").ProveInclusion(ctx, id, seq, size)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	cmd.Flags().Uint64Var(&size, "size", 0, "prove against the signed checkpoint at this size (default: the latest)")
	return cmd
}

func newLedgerExportCmd() *cobra.Command {
	var (
		c        config
		org      string
		from, to uint64
		format   string
		out      string
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a verifiable export (JSONL) or a CSV view of the ledger",
		Long: `Streams org's ledger to standard output (or --output): entries, retained payloads (purged ones
marked) and the signed checkpoints in range, in constant memory. --to is exclusive. An export that
does not start at genesis starts at the latest checkpoint at or before --from and carries its
anchor, so it verifies on its own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "jsonl" && format != "csv" {
				return fmt.Errorf("--format must be jsonl or csv, not %q", format)
			}
			if to != 0 && to <= from {
				return fmt.Errorf("--to (%d, exclusive) must be above --from (%d)", to, from)
			}
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := ledgerOrgID(ctx, s, org)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if out != "" && out != "-" {
					f, err := os.Create(out)
					if err != nil {
						return err
					}
					defer f.Close()
					w = f
				}
				logs := ledgerLogs(s, "")
				opts := store.LedgerExportOptions{From: from, To: to}
				if format == "csv" {
					h, err := logs.LedgerExportHeader(ctx, id, opts)
					if err != nil {
						return err
					}
					return ledger.WriteCSV(w, s.LedgerEntriesRange(ctx, id, max(from, h.From), h.To))
				}
				if _, err := logs.ExportLedger(ctx, id, opts, w); err != nil {
					return err
				}
				if f, ok := w.(*os.File); ok && f != os.Stdout {
					return f.Sync()
				}
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	cmd.Flags().Uint64Var(&from, "from", 0, "first seq")
	cmd.Flags().Uint64Var(&to, "to", 0, "one past the last seq (default: the whole log)")
	cmd.Flags().StringVar(&format, "format", "jsonl", "jsonl (verifiable) or csv (a view for people)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of standard output")
	return cmd
}
