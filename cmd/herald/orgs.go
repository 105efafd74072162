package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/store"
)

// The orgs commands mirror /v1/orgs for the platform team, working on the
// database directly (offline, bootstrap, break-glass). Each change is a
// ledger entry in the platform's chain and the organisation's own, with
// actor "cli", exactly as through the API.

func newOrgsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orgs",
		Short: "Create, list, rename, suspend, resume and delete organisations (platform scope)",
	}
	cmd.AddCommand(newOrgsCreateCmd(), newOrgsListCmd(), newOrgsRenameCmd(),
		newOrgsSuspendCmd(true), newOrgsSuspendCmd(false), newOrgsDeleteCmd())
	return cmd
}

const cliActor = "cli"

func newOrgsCreateCmd() *cobra.Command {
	var (
		c              config
		name, timezone string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an organisation and print its id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				var o herald.Org
				err := s.InTx(ctx, func(tx *store.Tx) (err error) {
					o, err = tx.CreateOrgAs(ctx, name, timezone, cliActor)
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), o.ID)
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&name, "name", "", "the organisation's name (required)")
	cmd.Flags().StringVar(&timezone, "timezone", "UTC", "the organisation's IANA time zone")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newOrgsListCmd() *cobra.Command {
	var c config
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List organisations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				orgs, err := s.ListOrgs(ctx)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tTIMEZONE\tCREATED\tSTATE")
				for _, o := range orgs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", o.ID, o.Name, o.Timezone, o.CreatedAt.Format(time.RFC3339), o.Status())
				}
				return w.Flush()
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	return cmd
}

func newOrgsRenameCmd() *cobra.Command {
	var (
		c    config
		name string
	)
	cmd := &cobra.Command{
		Use:   "rename ORG-ID",
		Short: "Rename an organisation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				return s.InTx(ctx, func(tx *store.Tx) error {
					o, err := tx.RenameOrg(ctx, args[0], name, cliActor)
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s renamed to %q\n", o.ID, o.Name)
					}
					return err
				})
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&name, "name", "", "the new name (required)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// newOrgsSuspendCmd builds "suspend" (suspend=true) or "resume".
func newOrgsSuspendCmd(suspend bool) *cobra.Command {
	var c config
	use, short, done := "resume ORG-ID", "Resume a suspended organisation (its keys work and its queue runs again)", "resumed"
	if suspend {
		use, short, done = "suspend ORG-ID", "Suspend an organisation: its keys and sessions get 403 and its queue is held", "suspended"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				return s.InTx(ctx, func(tx *store.Tx) error {
					o, err := tx.SetOrgSuspended(ctx, args[0], suspend, cliActor)
					if err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", o.ID, done)
					}
					return err
				})
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	return cmd
}

func newOrgsDeleteCmd() *cobra.Command {
	var (
		c   config
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "delete ORG-ID",
		Short: "Delete an organisation: erase all its personal data, keep its ledger verifying, sign a final checkpoint",
		Long: `Erase every contact, consent history, message content, ledger payload, person and key of the
organisation, in one transaction; its ledger entries stay (the chain still verifies) and a final
checkpoint is signed over them. The organisation stays listed as "deleted". This cannot be undone.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("deleting an organisation erases its personal data for good: confirm with --yes")
			}
			return withSecrets(cmd, &c, func(ctx context.Context, b *secretBackend, s *store.Store) error {
				var er store.OrgErasure
				err := s.InTx(ctx, func(tx *store.Tx) (err error) {
					_, er, err = tx.DeleteOrg(ctx, args[0], cliActor)
					return err
				})
				if err != nil {
					return err
				}
				cp, _, err := store.NewLedgerLogs(s, "", b.Signer).Checkpoint(ctx, args[0])
				if err != nil {
					return fmt.Errorf("organisation deleted, but its final checkpoint could not be signed (the server's checkpoint job signs it): %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s deleted: %d contacts, %d ledger payloads, %d actions erased; %d keys and %d people revoked; final checkpoint at size %d\n",
					args[0], er.Contacts, er.PayloadsDeleted, er.ActionsErased, er.KeysRevoked, er.PeopleRevoked, cp.Size)
				return nil
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	secretsStoreFlags(cmd.Flags(), &c.Secrets)
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the erasure")
	return cmd
}

// ledgerOrgID is orgID for the ledger commands, which also accept the
// platform's own chain (--org platform): it has no organisation row.
func ledgerOrgID(ctx context.Context, s *store.Store, org string) (string, error) {
	if org == store.PlatformLedger {
		return org, nil
	}
	return orgID(ctx, s, org)
}
