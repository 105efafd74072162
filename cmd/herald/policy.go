package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldhq/herald/gateway"
	"github.com/heraldhq/herald/policies"
	"github.com/heraldhq/herald/store"
)

// newPolicyCmd is "herald policy": test and check bundles locally, and
// push, activate, preview and replay them on the database like "herald keys".
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, check, push, activate, preview and replay policy bundles",
		Long: `Work with Rego policy bundles. "test" and "check" run locally on a directory (default: the
built-in bundle); "push", "list", "activate", "impact" and "replay" work on the database, per
organisation, like the /v1/policies API. Every push and activation is a ledger entry.`,
	}
	cmd.AddCommand(newPolicyTestCmd(), newPolicyCheckCmd(), newPolicyPushCmd(), newPolicyListCmd(),
		newPolicyActivateCmd(), newPolicyImpactCmd(), newPolicyReplayCmd())
	return cmd
}

// bundleArg loads the bundle in args[0], or the built-in one.
func bundleArg(args []string) (policies.Bundle, string, error) {
	if len(args) == 0 {
		return policies.DefaultBundle(), "built-in bundle", nil
	}
	b, err := policies.LoadBundleDir(args[0])
	return b, args[0], err
}

// printProblems lists compile problems as file:line: message.
func printProblems(w io.Writer, err error) error {
	var ce *policies.CompileError
	if !errors.As(err, &ce) {
		return err
	}
	for _, p := range ce.Problems {
		fmt.Fprintln(w, p.String())
	}
	return fmt.Errorf("the bundle does not compile (%d problems)", len(ce.Problems))
}

func newPolicyTestCmd() *cobra.Command {
	var (
		coverage  bool
		threshold float64
	)
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run a bundle's Rego tests with coverage (like opa test --coverage)",
		Long: `Run the *_test.rego tests of the bundle in DIR (default: the built-in bundle) and print the
result and the coverage of the policy files (test files excluded). Exits 1 when a test fails,
when there are no tests, or when coverage is below --threshold.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, name, err := bundleArg(args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rep, err := policies.RunTests(cmd.Context(), b)
			if err != nil {
				return printProblems(out, err)
			}
			printTestReport(out, rep, coverage)
			switch {
			case rep.Failed > 0:
				return fmt.Errorf("%s: %d of %d tests failed", name, rep.Failed, rep.Failed+rep.Passed)
			case rep.Passed == 0:
				return fmt.Errorf("%s has no tests; a bundle without tests cannot be activated", name)
			case threshold > 0 && rep.Coverage < threshold:
				return fmt.Errorf("%s: coverage %.2f%% is below the threshold %.2f%%", name, rep.Coverage, threshold)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&coverage, "coverage", true, "print coverage per file and the lines no test reached")
	cmd.Flags().Float64Var(&threshold, "threshold", 0, "fail when coverage of the policy files is below this percentage")
	return cmd
}

func printTestReport(w io.Writer, rep policies.TestReport, coverage bool) {
	for _, f := range rep.Failures {
		loc := f.File
		if f.Line > 0 {
			loc += ":" + strconv.Itoa(f.Line)
		}
		fmt.Fprintf(w, "FAIL: %s (%s)\n  %s\n", f.Name, loc, f.Message)
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w, "--------------------------------------------------------------------------------")
	}
	total := rep.Passed + rep.Failed
	if rep.Passed > 0 {
		fmt.Fprintf(w, "PASS: %d/%d\n", rep.Passed, total)
	}
	if rep.Failed > 0 {
		fmt.Fprintf(w, "FAIL: %d/%d\n", rep.Failed, total)
	}
	if rep.Skipped > 0 {
		fmt.Fprintf(w, "SKIPPED: %d\n", rep.Skipped)
	}
	fmt.Fprintf(w, "Coverage: %.2f%% of policy lines (%.2f%% counting test files, as opa test does)\n", rep.Coverage, rep.CoverageWithTests)
	if !coverage {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range slices.Sorted(maps.Keys(rep.FileCoverage)) {
		fmt.Fprintf(tw, "  %s\t%6.2f%%\n", f, rep.FileCoverage[f])
	}
	_ = tw.Flush()
	if len(rep.NotCovered) > 0 {
		fmt.Fprintln(w, "Not covered:")
		for _, r := range rep.NotCovered {
			fmt.Fprintln(w, "  "+r)
		}
	}
}

func newPolicyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check [DIR]",
		Short: "Compile a bundle strictly and report problems as file:line",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, name, err := bundleArg(args)
			if err != nil {
				return err
			}
			if _, err := policies.Compile(cmd.Context(), b); err != nil {
				return printProblems(cmd.OutOrStdout(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s compiles: %d files, hash %s\n", name, len(b.Files), b.Hash())
			return nil
		},
	}
}

// policyStoreCmd builds a database-backed policy subcommand with the
// store flags and --org.
func policyStoreCmd(use, short string, args cobra.PositionalArgs, setup func(cmd *cobra.Command),
	run func(ctx context.Context, cmd *cobra.Command, args []string, s *store.Store, org string) error) *cobra.Command {
	var (
		c   config
		org string
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  short + ".\n" + configHelp,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd, &c, func(ctx context.Context, s *store.Store) error {
				id, err := orgID(ctx, s, org)
				if err != nil {
					return err
				}
				return run(ctx, cmd, args, s, id)
			})
		},
	}
	storeFlags(cmd.Flags(), &c)
	cmd.Flags().StringVar(&org, "org", "", "organisation id (default: the only one)")
	if setup != nil {
		setup(cmd)
	}
	return cmd
}

func versionArg(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, fmt.Errorf("version %q: want a positive number (see herald policy list)", s)
	}
	return v, nil
}

func newPolicyPushCmd() *cobra.Command {
	var author string
	return policyStoreCmd("push DIR", "Upload a bundle as the organisation's next version (compiled, tested, stored; not activated)",
		cobra.ExactArgs(1), func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&author, "author", "cli", "who uploads the bundle (recorded in the ledger)")
		},
		func(ctx context.Context, cmd *cobra.Command, args []string, s *store.Store, org string) error {
			b, err := policies.LoadBundleDir(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			p := &gateway.Policies{Store: s, Registry: policies.NewRegistry(nil, nil)}
			pb, err := p.Upload(ctx, org, author, b)
			if err != nil {
				return err
			}
			printTestReport(out, pb.Report, false)
			fmt.Fprintf(out, "stored as version %d (%s), hash %s\n", pb.Version, pb.Status, pb.Hash)
			if pb.Status == store.PolicyFailed {
				return fmt.Errorf("version %d failed its tests and cannot be activated", pb.Version)
			}
			return nil
		})
}

func newPolicyListCmd() *cobra.Command {
	return policyStoreCmd("list", "List the organisation's bundle versions, newest first",
		cobra.NoArgs, nil,
		func(ctx context.Context, cmd *cobra.Command, _ []string, s *store.Store, org string) error {
			bs, err := s.ListPolicyBundles(ctx, org)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tSTATUS\tHASH\tAUTHOR\tCREATED\tTESTS\tCOVERAGE")
			for _, b := range bs {
				fmt.Fprintf(w, "%d\t%s\t%.12s\t%s\t%s\t%d/%d\t%.1f%%\n", b.Version, b.Status, b.Hash, b.Author,
					b.CreatedAt.Format(time.RFC3339), b.Report.Passed, b.Report.Passed+b.Report.Failed, b.Report.Coverage)
			}
			if len(bs) == 0 {
				fmt.Fprintln(w, "(none: the built-in bundle decides)")
			}
			return w.Flush()
		})
}

func newPolicyActivateCmd() *cobra.Command {
	var actor string
	return policyStoreCmd("activate VERSION", "Activate a version (an older one: rollback); every replica switches within seconds",
		cobra.ExactArgs(1), func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&actor, "actor", "cli", "who activates (recorded in the ledger)")
		},
		func(ctx context.Context, cmd *cobra.Command, args []string, s *store.Store, org string) error {
			v, err := versionArg(args[0])
			if err != nil {
				return err
			}
			pb, err := s.ActivatePolicyBundle(ctx, org, v, actor)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version %d is active (hash %s)\n", pb.Version, pb.Hash)
			return nil
		})
}

func newPolicyImpactCmd() *cobra.Command {
	var limit int
	return policyStoreCmd("impact VERSION", "Preview what a version would decide differently over the last decisions",
		cobra.ExactArgs(1), func(cmd *cobra.Command) {
			cmd.Flags().IntVar(&limit, "limit", gateway.DefaultImpactLimit, "how many recent decisions to replay")
		},
		func(ctx context.Context, cmd *cobra.Command, args []string, s *store.Store, org string) error {
			v, err := versionArg(args[0])
			if err != nil {
				return err
			}
			p := &gateway.Policies{Store: s, Registry: policies.NewRegistry(nil, nil)}
			rep, err := p.Impact(ctx, org, v, limit)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "version %d over the last %d decisions: %d would change (%.1f ms)\n", v, rep.Evaluated, rep.Changed, rep.DurationMS)
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TRANSITION\tCOUNT\tEXAMPLES")
			for _, tr := range slices.Sorted(maps.Keys(rep.Transitions)) {
				fmt.Fprintf(w, "%s\t%d\t%s\n", tr, rep.Transitions[tr], strings.Join(rep.Examples[tr], " "))
			}
			if rep.Errors > 0 {
				fmt.Fprintf(w, "(policy errors, failed closed)\t%d\t\n", rep.Errors)
			}
			return w.Flush()
		})
}

func newPolicyReplayCmd() *cobra.Command {
	var policyDir string
	return policyStoreCmd("replay ACTION-ID", "Re-decide an action's recorded inputs with the bundle that decided them and check the decisions reproduce",
		cobra.ExactArgs(1), func(cmd *cobra.Command) {
			cmd.Flags().StringVar(&policyDir, "policy-dir", "", "the bundle the server ran with --policy-dir, if any (else the built-in one)")
		},
		func(ctx context.Context, cmd *cobra.Command, args []string, s *store.Store, org string) error {
			def := policies.DefaultBundle()
			if policyDir != "" {
				var err error
				if def, err = policies.LoadBundleDir(policyDir); err != nil {
					return err
				}
			}
			e, err := policies.Compile(ctx, def)
			if err != nil {
				return fmt.Errorf("compile the default bundle: %w", err)
			}
			p := &gateway.Policies{Store: s, Registry: policies.NewRegistry(e, nil)}
			rep, err := p.Replay(ctx, org, args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, d := range rep.Decisions {
				verdict := "reproduced"
				if !d.Reproduced {
					verdict = "DIFFERS"
					if len(d.Differences) > 0 {
						verdict += " in " + strings.Join(d.Differences, ", ")
					}
				}
				fmt.Fprintf(out, "%s  %-6s  bundle %.12s  recorded %-7s  replayed %-7s  %s\n", d.At.Format(time.RFC3339), d.Stage,
					d.BundleHash, d.Recorded.Outcome, d.Replayed.Replayed.Outcome, verdict)
				if d.Error != "" {
					fmt.Fprintln(out, "  error: "+d.Error)
				}
				if d.InputHashMatches == nil {
					fmt.Fprintln(out, "  (input minimised for storage: the decision is compared, not the input hash)")
				}
			}
			if !rep.Reproduced {
				return fmt.Errorf("action %s: the recorded decisions do not reproduce", args[0])
			}
			fmt.Fprintf(out, "action %s: all %d decisions reproduce exactly\n", args[0], len(rep.Decisions))
			return nil
		})
}
