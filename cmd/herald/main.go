// Command herald is Herald's one binary: the gateway and delivery worker
// (serve), schema migrations (migrate), API keys (keys) and more. It is the
// composition root: the only place that wires stores, policies, connectors
// and the HTTP API together.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
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
	root.AddCommand(newServeCmd(), newMigrateCmd(), newKeysCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Herald's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "herald", version)
		},
	}
}
