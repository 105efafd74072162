package policies

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/topdown"
)

// ExplainTimeout is the deadline of an explained evaluation: tracing makes
// evaluation an order of magnitude slower, and an officer's dry run can wait
// where the send path cannot.
const ExplainTimeout = 2 * time.Second

// maxExplainLines bounds an explanation: a failing trace of a large bundle
// runs to thousands of lines, and an officer reads the first screens.
const maxExplainLines = 500

// Explain decides like Decide and also returns the trace lines of every
// expression that evaluated to false ("file:line: expr"), for
// ?explain=full. Tracing is slow; use it for dry runs, not the send path.
func (e *Engine) Explain(ctx context.Context, in Input) (Decision, []string, error) {
	buf := topdown.NewBufferTracer()
	d, err := e.decide(ctx, in, buf, max(e.timeout, ExplainTimeout))
	seen := map[string]bool{}
	var lines []string
	for _, ev := range *buf {
		if ev.Op != topdown.FailOp || ev.Location == nil || ev.Location.File == "" {
			continue
		}
		line := ev.Location.File + ":" + strconv.Itoa(ev.Location.Row) + ": " + strings.TrimSpace(string(ev.Location.Text))
		if seen[line] {
			continue
		}
		seen[line] = true
		lines = append(lines, line)
		if len(lines) == maxExplainLines {
			break
		}
	}
	return d, lines, err
}
