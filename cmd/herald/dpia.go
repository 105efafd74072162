package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/dpia"
	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/store"
)

// dpiaGenerator is the generator the server and the CLI share: the live
// store, the ledger verified against the given keys, the built-in
// retention configuration (the retention job's), and what this deployment
// is (secret store, pepper, opt-out keywords).
func dpiaGenerator(s *store.Store, logs *store.LedgerLogs, keys func() []string, c *config) *dpia.Generator {
	ss := "local"
	if c.Secrets.VaultAddr != "" {
		ss = "vault"
	}
	kw := c.OptOutKeywords
	if len(kw) == 0 {
		kw = gateway.DefaultOptOutKeywords
	}
	// herald serve always names people in the ledger by the pepper's keyed
	// hashes (SetPseudonymizer), so a deployment is pseudonymised by construction.
	return &dpia.Generator{Store: s, Ledger: logs, Keys: keys, Retention: dpia.ConfiguredRetention{Store: s},
		Deployment: dpia.Deployment{SecretStore: ss, Pseudonymised: true, OptOutKeywords: kw}}
}

func newDPIACmd() *cobra.Command {
	var (
		c      config
		org    string
		format string
		out    string
		keys   []string
	)
	cmd := &cobra.Command{
		Use:   "dpia",
		Short: "Generate the organisation's DPIA or record of processing from the live system",
		Long: `Generate the data protection impact assessment (GDPR Art. 35(7), CNIL structure) of an
organisation from the live database, as GET /v1/dpia does: the data map, legal bases counted from
consent records, readers from the role bindings, risks with live evidence, the action plan and the
validation state. The ledger is verified end to end against the given verifier keys (GET
/v1/ledger/keys publishes them); without --key the report states that it was not verified.

Generating records a dpia.generated ledger entry with the report's hash (docs/dpia.md).

  herald dpia --org ORG --format pdf --out dpia.pdf --key 'herald/ledger+…'
  herald dpia --format ropa-csv > ropa.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case "json", "markdown", "html", "pdf", "ropa-json", "ropa-csv":
			default:
				return fmt.Errorf("--format must be json, markdown, html, pdf, ropa-json or ropa-csv (got %q)", format)
			}
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := orgID(ctx, s, org)
				if err != nil {
					return err
				}
				g := dpiaGenerator(s, ledgerLogs(s, ""), func() []string { return keys }, &c)
				rep, err := g.Generate(ctx, id)
				if err != nil {
					return err
				}
				var b bytes.Buffer
				if err := renderDPIA(&b, rep, format); err != nil {
					return err
				}
				e, err := dpia.Record(ctx, s, rep, "cli", format)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if out != "" && out != "-" {
					if err := os.WriteFile(out, b.Bytes(), 0o600); err != nil {
						return fmt.Errorf("write %s: %w", out, err)
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: report %s, recorded at ledger seq %d\n", out, rep.Hash, e.Seq)
					return nil
				}
				_, err = w.Write(b.Bytes())
				return err
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringSliceVar(&c.OptOutKeywords, "opt-out-keywords", nil, "the opt-out keywords the server uses (default: the built-in list)")
	cmd.Flags().StringVar(&c.Secrets.VaultAddr, "vault-addr", "", "the Vault address the server uses (empty: the encrypted local file)")
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	cmd.Flags().StringVar(&format, "format", "markdown", "json, markdown, html, pdf, ropa-json or ropa-csv")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write to this file instead of standard output")
	cmd.Flags().StringArrayVar(&keys, "key", nil, "ledger verifier key (name+hash+key), repeatable")
	return cmd
}

func renderDPIA(w io.Writer, rep *dpia.Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "markdown":
		return rep.Markdown(w)
	case "html":
		return rep.HTML(w)
	case "pdf":
		return rep.PDF(w)
	case "ropa-json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep.RoPA())
	default:
		return rep.RoPA().WriteCSV(w)
	}
}
