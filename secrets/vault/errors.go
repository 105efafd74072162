package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/heraldhq/herald/secrets"
)

// wrapErr maps a Vault client error to the secrets sentinels. The message
// names the operation and path only: it is rebuilt from the status code and
// Vault's error list, never from a request body, so no value can leak.
func wrapErr(ctx context.Context, op, path string, err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		msg := fmt.Sprintf("vault: %s %s: HTTP %d", op, path, re.StatusCode)
		if !re.RawError && len(re.Errors) > 0 {
			msg += ": " + strings.Join(re.Errors, "; ")
		}
		switch {
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s: %w", msg, secrets.ErrNotFound)
		case re.StatusCode == http.StatusBadRequest && containsAny(re.Errors, "check-and-set"):
			return fmt.Errorf("%s: %w", msg, secrets.ErrCASMismatch)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w", msg, secrets.ErrPermissionDenied)
		case re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500:
			// 503 is sealed or standby without a leader; 429 is a rate
			// limit: all retryable.
			return fmt.Errorf("%s: %w", msg, secrets.ErrUnavailable)
		default:
			return errors.New(msg)
		}
	}
	if errors.Is(err, api.ErrSecretNotFound) {
		return fmt.Errorf("vault: %s %s: %w", op, path, secrets.ErrNotFound)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("vault: %s %s: %w", op, path, context.Canceled)
	}
	// Transport errors (connection refused, reset, timeout) and our own
	// deadline: Vault is unreachable or not answering.
	return fmt.Errorf("vault: %s %s: %w: %w", op, path, secrets.ErrUnavailable, err)
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
