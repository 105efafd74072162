package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/connectors/telegramtest"
)

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Tools for development, demos and load tests (never for production traffic)",
	}
	cmd.AddCommand(newTelegramFakeCmd(), newLoadCmd(), newOPACompareCmd())
	return cmd
}

func newTelegramFakeCmd() *cobra.Command {
	var (
		listen                 string
		serverErrors, dropRate float64
		seed                   int64
	)
	cmd := &cobra.Command{
		Use:   "telegram-fake",
		Short: "Run a fake Telegram Bot API that enforces Telegram's limits",
		Long: `Run the in-repo fake Bot API (connectors/telegramtest) on a local address. It accepts any
well-formed bot token, enforces Telegram's flood limits (about 30 msg/s per bot, 1 msg/s per chat,
20 msg/min per group) with 429 and retry_after, and can inject faults. Point Herald at it with
--botapi-url http://ADDR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fake := telegramtest.NewUnstarted(telegramtest.Options{AcceptAnyToken: true,
				ServerErrorRate: serverErrors, DropBeforeRate: dropRate, Seed: seed})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.OutOrStdout(), "fake Telegram Bot API on http://%s (use --botapi-url http://%s)\n", ln.Addr(), ln.Addr())
			go func() {
				<-cmd.Context().Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			st := fake.Stats()
			fmt.Fprintf(cmd.OutOrStdout(), "accepted %d, 429s %d, injected 5xx %d, dropped %d\n", st.Accepted, st.TooManyRequests, st.ServerErrors, st.DroppedBefore)
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to listen on")
	cmd.Flags().Float64Var(&serverErrors, "server-error-rate", 0, "fraction of requests answered 500 without being executed")
	cmd.Flags().Float64Var(&dropRate, "drop-rate", 0, "fraction of connections closed before executing the request")
	cmd.Flags().Int64Var(&seed, "seed", 1, "seed of the fault injection")
	return cmd
}
