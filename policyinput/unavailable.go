package policyinput

import (
	"context"
	"errors"

	"github.com/heraldhq/herald/policies"
)

// Unavailable reports whether a decision error means the policy could not
// be evaluated for a passing reason (its deadline, a cancelled or expired
// context): Herald's load, not a verdict on the action. Such a decision
// MUST NOT deny: the submit answers 503 policy_unavailable with nothing
// stored, and the worker retries the send in seconds. Any other error (an
// undefined or off-schema decision, a built-in failing on bad data) is the
// bundle's verdict and fails closed.
func Unavailable(err error) bool {
	return err != nil && (errors.Is(err, policies.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, context.Canceled))
}
