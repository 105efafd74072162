package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/slo"
	"github.com/heraldhq/herald/store"
)

func newSLOCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "Service level objectives: did Herald meet them?",
	}
	cmd.AddCommand(newSLOReportCmd())
	return cmd
}

func newSLOReportCmd() *cobra.Command {
	var (
		c             config
		from, to, org string
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compute the SLIs from the database: publish latency and delivery errors after retries",
		Long: `Compute the SLIs over the actions whose final outcome (delivered, failed, unknown) falls in
[--from, --to): p50/p95/p99 publish latency (due time to delivered), the error ratio after retries,
and the share of each error budget left, overall, by connector and by account. Without --org the
report covers every organisation (the deployment's SLO). Times are RFC 3339 or YYYY-MM-DD (UTC).

Objectives: 95 % of deliveries within 5 s; at most 0.5 % of actions failed or unknown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				end := s.Now()
				if to != "" {
					t, err := parseDay(to)
					if err != nil {
						return fmt.Errorf("--to: %w", err)
					}
					end = t
				}
				start := end.Add(-7 * 24 * time.Hour)
				if from != "" {
					t, err := parseDay(from)
					if err != nil {
						return fmt.Errorf("--from: %w", err)
					}
					start = t
				}
				if !start.Before(end) {
					return fmt.Errorf("--from (%s) must be before --to (%s)", start.Format(time.RFC3339), end.Format(time.RFC3339))
				}
				if org != "" {
					id, err := orgID(ctx, s, org)
					if err != nil {
						return err
					}
					org = id
				}
				outcomes, err := s.SLOOutcomes(ctx, org, start, end)
				if err != nil {
					return err
				}
				r := slo.Compute(org, start, end, outcomes, slo.DefaultObjectives)
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(r)
				}
				return slo.WriteTable(out, r)
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&from, "from", "", "start of the window, inclusive (default: 7 days before --to)")
	cmd.Flags().StringVar(&to, "to", "", "end of the window, exclusive (default: now)")
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: every organisation)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// parseDay reads an RFC 3339 time or a UTC date.
func parseDay(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", v)
	}
	return t, nil
}
