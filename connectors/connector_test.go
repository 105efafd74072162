package connectors

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	base := errors.New("telegram said no")
	cases := []struct {
		name  string
		err   error
		class Class
		after time.Duration
	}{
		{"nil", nil, ClassNone, 0},
		{"retryable", &RetryableError{After: 3 * time.Second, Scope: "chat:1", Err: base}, ClassRetryable, 3 * time.Second},
		{"wrapped retryable", fmt.Errorf("send: %w", &RetryableError{After: time.Second, Err: base}), ClassRetryable, time.Second},
		{"permanent", &PermanentError{Code: "blocked", Suppress: true, Err: base}, ClassPermanent, 0},
		{"account stop", &AccountStopError{Code: "unauthorized", Err: base}, ClassAccountStop, 0},
		{"unknown", &UnknownError{Err: base}, ClassUnknown, 0},
		{"wrapped unknown", fmt.Errorf("x: %w", &UnknownError{Err: context.DeadlineExceeded}), ClassUnknown, 0},
		{"unclassified", base, ClassRetryable, 0},
		// An account stop outranks whatever it wraps.
		{"stop wrapping retryable", &AccountStopError{Code: "peer_flood", Err: &RetryableError{Err: base}}, ClassAccountStop, time.Duration(0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.err); got != c.class {
				t.Errorf("Classify = %v, want %v", got, c.class)
			}
			if c.name != "stop wrapping retryable" {
				if got := RetryAfter(c.err); got != c.after {
					t.Errorf("RetryAfter = %v, want %v", got, c.after)
				}
			}
			if c.err != nil && !errors.Is(c.err, base) && !errors.Is(c.err, context.DeadlineExceeded) {
				t.Errorf("%v does not unwrap to its cause", c.err)
			}
		})
	}
}

func TestClassStrings(t *testing.T) {
	want := map[Class]string{ClassNone: "none", ClassRetryable: "retryable", ClassPermanent: "permanent",
		ClassAccountStop: "account_stop", ClassUnknown: "unknown", Class(99): "invalid"}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), s)
		}
	}
}

func TestErrorTexts(t *testing.T) {
	for _, err := range []error{
		&RetryableError{After: time.Second, Scope: "bot:a", Err: errors.New("x")},
		&PermanentError{Code: "chat_not_found", Err: errors.New("x")},
		&AccountStopError{Code: "unauthorized", Freeze: time.Hour, Err: errors.New("x")},
		&UnknownError{Err: errors.New("x")},
	} {
		if err.Error() == "" {
			t.Errorf("%T has an empty message", err)
		}
	}
}
