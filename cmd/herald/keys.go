package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/ledger"
	"github.com/heraldhq/herald/store"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list and revoke API keys",
		Long:  "Manage API keys directly in the database (for bootstrapping and break-glass). Keys are stored as hashes; a new key is printed once.",
	}
	cmd.AddCommand(newKeysCreateCmd(), newKeysListCmd(), newKeysRevokeCmd())
	return cmd
}

// withStore runs fn with the configured store, after flag resolution.
func withStore(cmd *cobra.Command, c *config, fn func(ctx context.Context, s *store.Store) error) error {
	if err := resolve(cmd); err != nil {
		return err
	}
	log, err := c.cliLogger()
	if err != nil {
		return err
	}
	s, err := openStore(cmd.Context(), c, log)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(cmd.Context(), s)
}

// orgFlag resolves --org, defaulting to the only organisation when there is one.
func orgID(ctx context.Context, s *store.Store, org string) (string, error) {
	if org != "" {
		o, err := s.GetOrg(ctx, org)
		return o.ID, err
	}
	ids, err := s.OrgIDs(ctx)
	if err != nil {
		return "", err
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("there are %d organisations: name one with --org", len(ids))
	}
	return ids[0], nil
}

func newKeysCreateCmd() *cobra.Command {
	var (
		c                    config
		org, principal, role string
		name                 string
		ttl                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an API key and print it once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := orgID(ctx, s, org)
				if err != nil {
					return err
				}
				var exp *time.Time
				if ttl > 0 {
					t := s.Now().Add(ttl)
					exp = &t
				}
				var token string
				err = s.InTx(ctx, func(tx *store.Tx) error {
					k, tok, err := tx.CreateAPIKey(ctx, id, principal, role, name, exp)
					if err != nil {
						return err
					}
					token = tok
					_, err = tx.AppendLedger(ctx, id, store.LedgerRecord{Kind: ledger.KindKeyCreated, Actor: "cli",
						Refs: map[string]string{"key": k.ID}, Attrs: map[string]any{"role": k.Role, "principal": k.Principal}})
					if err != nil {
						return err
					}
					// The key's principal gets the role through a binding.
					_, err = tx.EnsureRole(ctx, id, principal, role, "cli")
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), token)
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	cmd.Flags().StringVar(&principal, "principal", "", "who the key acts as (required)")
	cmd.Flags().StringVar(&role, "role", herald.RoleOperator, "role: admin, compliance_officer, operator, approver or auditor")
	cmd.Flags().StringVar(&name, "name", "", "a label for the key")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "expire the key after this long (0 = never)")
	_ = cmd.MarkFlagRequired("principal")
	return cmd
}

func newKeysListCmd() *cobra.Command {
	var (
		c   config
		org string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (prefixes only; secrets are never stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := orgID(ctx, s, org)
				if err != nil {
					return err
				}
				keys, err := s.ListAPIKeys(ctx, id)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tPREFIX\tPRINCIPAL\tROLE\tNAME\tCREATED\tSTATE")
				for _, k := range keys {
					state := "active"
					switch {
					case k.RevokedAt != nil:
						state = "revoked"
					case k.ExpiresAt != nil && !s.Now().Before(*k.ExpiresAt):
						state = "expired"
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Principal, k.Role, k.Name, k.CreatedAt.Format(time.RFC3339), state)
				}
				return w.Flush()
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	return cmd
}

func newKeysRevokeCmd() *cobra.Command {
	var (
		c   config
		org string
	)
	cmd := &cobra.Command{
		Use:   "revoke ID-OR-PREFIX",
		Short: "Revoke an API key (it stops working at once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := orgID(ctx, s, org)
				if err != nil {
					return err
				}
				return s.InTx(ctx, func(tx *store.Tx) error {
					k, err := tx.RevokeAPIKey(ctx, id, args[0])
					if err != nil {
						return err
					}
					if _, err := tx.AppendLedger(ctx, id, store.LedgerRecord{Kind: ledger.KindKeyRevoked, Actor: "cli",
						Refs: map[string]string{"key": k.ID}}); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "revoked %s (%s)\n", k.ID, k.Prefix)
					return nil
				})
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	return cmd
}
