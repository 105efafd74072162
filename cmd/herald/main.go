// Command herald is Herald's one binary: the gateway and delivery worker
// (serve), schema migrations (migrate), API keys (keys) and more. It is the
// composition root: the only place that wires stores, policies, connectors
// and the HTTP API together.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", describe(err))
		os.Exit(1)
	}
}

// describe renders an error for a person at a terminal, listing each
// invalid field of a validation error.
func describe(err error) string {
	var he *herald.Error
	if !errors.As(err, &he) || len(he.Fields) == 0 {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString(he.Message)
	for _, f := range he.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	return b.String()
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Herald: a policy-as-code compliance gateway for Telegram",
		Long: `Herald puts every outbound Telegram action (send, post, edit, delete, pin, …) through one
gateway that authenticates the caller, decides it by policy (consent, quiet hours, frequency caps,
risk), records it in a tamper-evident audit ledger before anything is sent, and delivers it.

Run "herald serve" to start it on an embedded database with a sandbox connector.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCmd(), newMigrateCmd(), newKeysCmd(), newPolicyCmd(), newVersionCmd(), newDevCmd(), newLedgerCmd(), newSecretsCmd(), newSLOCmd(), newDPIACmd(), newSubjectCmd(), newDrillCmd(), newOrgsCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Herald's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "herald", versionString())
		},
	}
}
