package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/ledger"
)

func newSubjectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subject",
		Short: "Work with data-subject request answers",
	}
	cmd.AddCommand(newSubjectVerifyCmd())
	return cmd
}

func newSubjectVerifyCmd() *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "verify [FILE | -]",
		Short: "Verify an access/portability export offline",
		Long: `Checks every ledger entry of a subject export (GET /v1/subject-requests/{id}/export) against
the organisation's signed log: the checkpoint's signature with the given public key(s), the RFC 6962
audit path to its root, and that each enclosed entry hashes to the proven leaf. It needs nothing but
the file and the key(s) published at GET /v1/ledger/keys; the keys inside the export are not
trusted. Exits with status 1 when any entry does not verify.

  herald subject verify export.json --key 'herald/ledger+…'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(keys) == 0 {
				return errors.New("name the log's public key(s) with --key (GET /v1/ledger/keys publishes them)")
			}
			vs, err := ledger.NewVerifiers(keys...)
			if err != nil {
				return err
			}
			var r io.Reader = cmd.InOrStdin()
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			var x dpia.SubjectExport
			if err := json.NewDecoder(r).Decode(&x); err != nil {
				return fmt.Errorf("read the export: %w", err)
			}
			n, err := dpia.VerifySubjectExport(&x, vs)
			if err != nil {
				return fmt.Errorf("the export does not verify: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK: %d ledger entries about the person are in the signed log (request %s, %s)\n", n, x.Request.ID, x.Request.Kind)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "verifier key (name+hash+key), repeatable")
	return cmd
}
