package vault

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Credentials print redacted in every fmt verb and in slog, so that logging
// a Config by mistake does not log a token or secret id.

// String implements fmt.Stringer.
func (TokenAuth) String() string { return "vault.TokenAuth{Token:[REDACTED]}" }

// Format implements fmt.Formatter.
func (a TokenAuth) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

// LogValue implements slog.LogValuer.
func (TokenAuth) LogValue() slog.Value { return slog.StringValue("token") }

// String implements fmt.Stringer.
func (a *AppRoleAuth) String() string {
	return fmt.Sprintf("vault.AppRoleAuth{Mount:%q RoleID:%q SecretID:[REDACTED]}", a.Mount, a.RoleID)
}

// Format implements fmt.Formatter.
func (a *AppRoleAuth) Format(f fmt.State, _ rune) { io.WriteString(f, a.String()) }

// LogValue implements slog.LogValuer.
func (a *AppRoleAuth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", "approle"), slog.String("mount", a.Mount), slog.String("role_id", a.RoleID))
}

// MarshalJSON implements json.Marshaler (slog's JSON handler marshals
// structs such as Config with encoding/json).
func (TokenAuth) MarshalJSON() ([]byte, error) { return []byte(`{"method":"token"}`), nil }

// MarshalJSON implements json.Marshaler.
func (a *AppRoleAuth) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"method": "approle", "mount": a.Mount, "role_id": a.RoleID})
}
