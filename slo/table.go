package slo

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTable renders r for a person at a terminal.
func WriteTable(w io.Writer, r Report) error {
	fmt.Fprintf(w, "SLO report %s → %s", r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339))
	if r.Org != "" {
		fmt.Fprintf(w, " (org %s)", r.Org)
	}
	fmt.Fprintf(w, "\nObjectives: %.0f%% delivered within %s; errors after retries ≤ %.2f%%\n\n",
		r.Objectives.LatencyTarget*100, r.Objectives.LatencyThreshold, r.Objectives.MaxErrorRatio*100)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCOPE\tDELIVERED\tFAILED\tUNKNOWN\tP50\tP95\tP99\tERRORS\tLATENCY BUDGET\tERROR BUDGET\tMET")
	row := func(scope string, f Figures) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%.3f%%\t%s\t%s\t%s\n", scope, f.Delivered, f.Failed, f.Unknown,
			seconds(f.P50), seconds(f.P95), seconds(f.P99), f.ErrorRatio*100,
			percent(f.LatencyBudgetLeft), percent(f.ErrorBudgetLeft), met(f))
	}
	row("all", r.Overall)
	for _, f := range r.ByConnector {
		row("connector "+f.Connector, f)
	}
	for _, f := range r.ByAccount {
		row("account "+f.Account+" ("+f.Connector+")", f)
	}
	return tw.Flush()
}

func seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3fs", *v)
}

func percent(v float64) string { return fmt.Sprintf("%.1f%%", v*100) }

func met(f Figures) string {
	switch {
	case f.LatencyMet && f.ErrorsMet:
		return "yes"
	case !f.LatencyMet && !f.ErrorsMet:
		return "no (latency, errors)"
	case !f.LatencyMet:
		return "no (latency)"
	}
	return "no (errors)"
}
