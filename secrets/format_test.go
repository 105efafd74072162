package secrets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/secrets"
)

const leakValue = "123456:AAF-leak-canary-value"

func leakSecret() secrets.Secret {
	return secrets.Secret{
		Path:      "herald/orgs/acme/accounts/1/bot_token",
		Version:   3,
		Data:      map[string]string{"token": leakValue, "api_hash": leakValue + "-2"},
		UpdatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestSecretNeverPrintsValues covers every way a Secret reaches text: fmt
// verbs, nesting in other values, slog (JSON and text), encoding/json.
func TestSecretNeverPrintsValues(t *testing.T) {
	s := leakSecret()
	ptr := &s
	nested := struct {
		Account string
		Secret  secrets.Secret
	}{"acct", s}

	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, s), fmt.Sprintf(verb, ptr), fmt.Sprintf(verb, nested))
	}
	out = append(out, s.String(), s.GoString(), fmt.Sprint(s), fmt.Sprintln(s, []secrets.Secret{s}, map[string]secrets.Secret{"a": s}))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{
		slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
	} {
		l := slog.New(h)
		l.Debug("secret read", "secret", s, "ptr", ptr, slog.Any("any", s), slog.Group("g", "s", s))
		l.Info("nested", "v", nested)
	}
	out = append(out, buf.String())

	j, err := json.Marshal(map[string]any{"s": s, "p": ptr, "n": nested})
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(j))

	err = fmt.Errorf("wrapping %v: %w", s, errors.New("boom"))
	out = append(out, err.Error())

	for _, o := range out {
		if strings.Contains(o, leakValue) {
			t.Fatalf("secret value leaked: %s", o)
		}
	}
	// The redacted form still helps an operator.
	if !strings.Contains(s.String(), "bot_token") || !strings.Contains(s.String(), "version=3") || !strings.Contains(s.String(), "api_hash:[REDACTED]") {
		t.Errorf("String() = %s, want path, version and field names", s)
	}
	if !strings.Contains(buf.String(), `"version":3`) {
		t.Errorf("slog output lacks the version: %s", buf.String())
	}
}

func TestClone(t *testing.T) {
	s := leakSecret()
	c := s.Clone()
	c.Data["token"] = "x"
	if s.Data["token"] != leakValue {
		t.Fatal("Clone shares the Data map")
	}
}
