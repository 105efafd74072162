package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/heraldhq/herald/secrets"
)

// The KV v2 calls go through Logical() rather than api.KVv2 so that every
// error is built here (KVv2's parse errors may quote the data).

// Get returns the latest version of path.
func (c *Client) Get(ctx context.Context, path string) (secrets.Secret, error) {
	s, err := c.read(ctx, c.kv+"/data/"+path, nil)
	if err != nil {
		return secrets.Secret{}, wrapErr(ctx, "get", c.kv+"/"+path, err)
	}
	return c.parseRead(path, 0, s)
}

// GetVersion returns one version of path.
func (c *Client) GetVersion(ctx context.Context, path string, version int) (secrets.Secret, error) {
	s, err := c.read(ctx, c.kv+"/data/"+path,
		map[string][]string{"version": {strconv.Itoa(version)}})
	if err != nil {
		return secrets.Secret{}, wrapErr(ctx, fmt.Sprintf("get version %d of", version), c.kv+"/"+path, err)
	}
	return c.parseRead(path, version, s)
}

// Put writes data as a new version of path, with check-and-set unless cas
// is secrets.NoCAS.
func (c *Client) Put(ctx context.Context, path string, data map[string]string, cas int) (secrets.Secret, error) {
	d := make(map[string]any, len(data))
	for k, v := range data {
		d[k] = v
	}
	body := map[string]any{"data": d}
	if cas >= 0 {
		body["options"] = map[string]any{"cas": cas}
	}
	s, err := c.write(ctx, c.kv+"/data/"+path, body)
	if err != nil {
		return secrets.Secret{}, wrapErr(ctx, fmt.Sprintf("put (cas %d)", cas), c.kv+"/"+path, err)
	}
	if s == nil || s.Data == nil {
		return secrets.Secret{}, fmt.Errorf("vault: put %s/%s: empty response", c.kv, path)
	}
	v, err := intField(s.Data["version"])
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("vault: put %s/%s: version: %w", c.kv, path, err)
	}
	return secrets.Secret{Path: path, Version: v, UpdatedAt: timeField(s.Data["created_time"])}, nil
}

// Versions returns the current version of path from its metadata.
func (c *Client) Versions(ctx context.Context, path string) (int, error) {
	s, err := c.read(ctx, c.kv+"/metadata/"+path, nil)
	if err != nil {
		return 0, wrapErr(ctx, "read metadata of", c.kv+"/"+path, err)
	}
	if s == nil || s.Data == nil {
		return 0, fmt.Errorf("vault: read metadata of %s/%s: %w", c.kv, path, secrets.ErrNotFound)
	}
	v, err := intField(s.Data["current_version"])
	if err != nil {
		return 0, fmt.Errorf("vault: read metadata of %s/%s: current_version: %w", c.kv, path, err)
	}
	return v, nil
}

// parseRead turns a KV v2 read response into a Secret. A nil response or
// nil data means the path or version does not exist or was deleted.
func (c *Client) parseRead(path string, version int, s *api.Secret) (secrets.Secret, error) {
	what := fmt.Sprintf("%s/%s", c.kv, path)
	if version > 0 {
		what += fmt.Sprintf(" version %d", version)
	}
	if s == nil || s.Data == nil {
		return secrets.Secret{}, fmt.Errorf("vault: get %s: %w", what, secrets.ErrNotFound)
	}
	raw, _ := s.Data["data"].(map[string]any)
	md, _ := s.Data["metadata"].(map[string]any)
	if raw == nil {
		return secrets.Secret{}, fmt.Errorf("vault: get %s: deleted: %w", what, secrets.ErrNotFound)
	}
	out := secrets.Secret{Path: path, Data: make(map[string]string, len(raw))}
	for k, v := range raw {
		str, ok := v.(string)
		if !ok {
			// Name the field and type, never the value.
			return secrets.Secret{}, fmt.Errorf("vault: get %s: field %q is a %T, want string", what, k, v)
		}
		out.Data[k] = str
	}
	v, err := intField(md["version"])
	if err != nil {
		return secrets.Secret{}, fmt.Errorf("vault: get %s: metadata version: %w", what, err)
	}
	out.Version = v
	out.UpdatedAt = timeField(md["created_time"])
	return out, nil
}

func intField(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	case float64:
		return int(n), nil
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case string:
		return strconv.Atoi(n)
	default:
		return 0, fmt.Errorf("unexpected %T", v)
	}
}

func timeField(v any) time.Time {
	s, _ := v.(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
