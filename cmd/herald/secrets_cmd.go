package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/secrets"
	"github.com/heraldhq/herald/store"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Write and rotate secrets in Herald's secret store (Vault or the local encrypted file)",
	}
	cmd.AddCommand(newSecretsPutCmd(), newSecretsRotateCmd())
	return cmd
}

// withSecrets opens the configured secret store (and the database).
func withSecrets(cmd *cobra.Command, c *config, fn func(ctx context.Context, b *secretBackend, s *store.Store) error) error {
	return withStore(cmd, c, func(ctx context.Context, s *store.Store) error {
		b, err := openSecretBackend(ctx, c, slog.New(slog.NewJSONHandler(io.Discard, nil)))
		if err != nil {
			return err
		}
		defer b.close()
		return fn(ctx, b, s)
	})
}

func newSecretsPutCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "put PATH KEY=VALUE|KEY=- ...",
		Short: "Write a new version of a secret (KEY=- reads the value from standard input)",
		Long: `Write a new version of the secret at PATH, e.g. a bot token revoked and reissued in BotFather:

  herald secrets put herald/orgs/ORG/accounts/ACCOUNT token=-   < token.txt

The connector uses the new version on its next send, without a restart. Values never appear in
output or logs; prefer KEY=- so they stay out of shell history.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q: want KEY=VALUE or KEY=-", strings.SplitN(kv, "=", 2)[0])
				}
				if v == "-" {
					b, err := io.ReadAll(cmd.InOrStdin())
					if err != nil {
						return err
					}
					v = strings.TrimRight(string(b), "\r\n")
				}
				data[k] = v
			}
			return withSecrets(cmd, &c, func(ctx context.Context, b *secretBackend, s *store.Store) error {
				sec, err := b.Store.Put(ctx, args[0], data, secrets.NoCAS)
				if err != nil {
					return err
				}
				if org, ok := orgOfPath(args[0]); ok {
					if err := s.InTx(ctx, func(tx *store.Tx) error {
						_, err := tx.AppendLedger(ctx, org, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: "cli",
							Attrs: map[string]any{"secret": args[0], "old_version": sec.Version - 1, "new_version": sec.Version}})
						return err
					}); err != nil {
						return err
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: version %d\n", args[0], sec.Version)
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	secretsStoreFlags(cmd.Flags(), &c.Secrets)
	return cmd
}

// orgOfPath returns the organisation of a "herald/orgs/ORG/…" path.
func orgOfPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "herald/orgs/")
	if !ok {
		return "", false
	}
	org, _, _ := strings.Cut(rest, "/")
	return org, org != ""
}

func newSecretsRotateCmd() *cobra.Command {
	var (
		c   config
		org string
	)
	cmd := &cobra.Command{
		Use:   "rotate signing-key|pepper",
		Short: "Rotate the ledger checkpoint signing key, or an organisation's pseudonymisation pepper",
		Long: `Rotate now, outside the schedule. signing-key: new checkpoints are signed with the new version
(running servers pick it up within --key-refresh); old checkpoints keep verifying with the old
public key, which GET /v1/ledger/keys keeps publishing. pepper: new ledger refs use the new
version; old refs stay resolvable. Each rotation is a secret.rotated ledger entry.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"signing-key", "pepper"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSecrets(cmd, &c, func(ctx context.Context, b *secretBackend, s *store.Store) error {
				var (
					orgs       []string
					name       string
					oldV, newV int
					err        error
				)
				switch args[0] {
				case "signing-key":
					name = "ledger-signing-key"
					oldV, newV, err = b.RotateSigningKey(ctx)
					if err == nil {
						orgs, err = s.OrgIDs(ctx)
					}
				case "pepper":
					var id string
					if id, err = orgID(ctx, s, org); err == nil {
						name = "pepper/" + id
						orgs = []string{id}
						oldV, newV, err = b.Pepper.Rotate(ctx, id)
					}
				default:
					return fmt.Errorf("rotate %q: want signing-key or pepper", args[0])
				}
				if err != nil {
					return err
				}
				for _, o := range orgs {
					if err := s.InTx(ctx, func(tx *store.Tx) error {
						_, err := tx.AppendLedger(ctx, o, store.LedgerRecord{Kind: ledger.KindSecretRotated, Actor: "cli",
							Attrs: map[string]any{"secret": name, "old_version": oldV, "new_version": newV}})
						return err
					}); err != nil {
						return err
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s rotated: version %d → %d\n", name, oldV, newV)
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	secretsStoreFlags(cmd.Flags(), &c.Secrets)
	cmd.Flags().StringVar(&org, "org", "", "organisation (pepper; default: the only one)")
	return cmd
}
