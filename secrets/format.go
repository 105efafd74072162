package secrets

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"
)

// redacted replaces every value when a Secret is printed.
const redacted = "[REDACTED]"

// keys returns the sorted data keys: names of fields are not secret and help
// an operator see which fields a secret has.
func (s Secret) keys() []string {
	ks := make([]string, 0, len(s.Data))
	for k := range s.Data {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// String describes the secret without its values.
func (s Secret) String() string {
	var b strings.Builder
	b.WriteString("secret{path=")
	b.WriteString(strconv.Quote(s.Path))
	b.WriteString(" version=")
	b.WriteString(strconv.Itoa(s.Version))
	if !s.UpdatedAt.IsZero() {
		b.WriteString(" updated=")
		b.WriteString(s.UpdatedAt.UTC().Format(time.RFC3339))
	}
	b.WriteString(" data=")
	b.WriteString(redactedData(s.keys()))
	b.WriteString("}")
	return b.String()
}

func redactedData(keys []string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + redacted
	}
	return "map[" + strings.Join(parts, " ") + "]"
}

// GoString makes %#v as safe as %v.
func (s Secret) GoString() string { return "secrets." + s.String() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s, %q,
// %x …) prints the redacted form; without it %x or %d would walk the struct
// and print the values.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		io.WriteString(f, strconv.Quote(s.String()))
	case 'v':
		if f.Flag('#') {
			io.WriteString(f, s.GoString())
			return
		}
		io.WriteString(f, s.String())
	default:
		io.WriteString(f, s.String())
	}
}

// LogValue implements slog.LogValuer: a Secret logged with any handler shows
// its path, version and field names only.
func (s Secret) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("path", s.Path),
		slog.Int("version", s.Version),
		slog.Any("fields", s.keys()),
	}
	if !s.UpdatedAt.IsZero() {
		attrs = append(attrs, slog.Time("updated_at", s.UpdatedAt))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON redacts the values: a Secret that ends up in an API response
// or an exported document by mistake still carries no secret. Stores
// serialise their own records, never a Secret.
func (s Secret) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Path      string    `json:"path"`
		Version   int       `json:"version"`
		Fields    []string  `json:"fields"`
		UpdatedAt time.Time `json:"updated_at,omitzero"`
	}{s.Path, s.Version, s.keys(), s.UpdatedAt})
}
