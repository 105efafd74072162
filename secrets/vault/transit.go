package vault

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/hashicorp/vault/api"

	"github.com/heraldhq/herald/secrets"
)

// Transit key types Herald uses.
const (
	// KeyAES256 encrypts what Herald stores itself (session snapshots,
	// exports).
	KeyAES256 = "aes256-gcm96"
	// KeyEd25519 signs ledger checkpoints.
	KeyEd25519 = "ed25519"
)

// rewrapBatch bounds one rewrap request so a large backlog does not produce
// a request Vault rejects for size.
const rewrapBatch = 256

// KeyInfo describes a Transit key's versions.
type KeyInfo struct {
	Name                 string
	Type                 string
	LatestVersion        int
	MinDecryptionVersion int
}

// CreateKey creates a Transit key of the given type if it does not exist; an
// existing key is left unchanged.
func (c *Client) CreateKey(ctx context.Context, key, keyType string) error {
	_, err := c.write(ctx, c.transit+"/keys/"+key, map[string]any{"type": keyType})
	return wrapErr(ctx, "create key", c.transit+"/keys/"+key, err)
}

// KeyInfo reads a Transit key's metadata.
func (c *Client) KeyInfo(ctx context.Context, key string) (KeyInfo, error) {
	data, err := c.readKey(ctx, key)
	if err != nil {
		return KeyInfo{}, err
	}
	info := KeyInfo{Name: key}
	info.Type, _ = data["type"].(string)
	if info.LatestVersion, err = intField(data["latest_version"]); err != nil {
		return KeyInfo{}, fmt.Errorf("vault: key %s: latest_version: %w", key, err)
	}
	if info.MinDecryptionVersion, err = intField(data["min_decryption_version"]); err != nil {
		return KeyInfo{}, fmt.Errorf("vault: key %s: min_decryption_version: %w", key, err)
	}
	return info, nil
}

func (c *Client) readKey(ctx context.Context, key string) (map[string]any, error) {
	s, err := c.read(ctx, c.transit+"/keys/"+key, nil)
	if err != nil {
		return nil, wrapErr(ctx, "read key", c.transit+"/keys/"+key, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("vault: read key %s/keys/%s: %w", c.transit, key, secrets.ErrNotFound)
	}
	return s.Data, nil
}

// RotateKey adds a new version to a Transit key; new encryptions and
// signatures use it, older versions still decrypt and verify until
// SetMinDecryptionVersion raises the floor.
func (c *Client) RotateKey(ctx context.Context, key string) (oldVersion, newVersion int, err error) {
	before, err := c.KeyInfo(ctx, key)
	if err != nil {
		return 0, 0, err
	}
	_, err = c.write(ctx, c.transit+"/keys/"+key+"/rotate", nil)
	if err != nil {
		return 0, 0, wrapErr(ctx, "rotate key", c.transit+"/keys/"+key, err)
	}
	after, err := c.KeyInfo(ctx, key)
	if err != nil {
		return 0, 0, err
	}
	return before.LatestVersion, after.LatestVersion, nil
}

// Encrypt encrypts plaintext with the latest version of key and returns
// Vault's ciphertext ("vault:v<N>:…"), safe to store anywhere.
func (c *Client) Encrypt(ctx context.Context, key string, plaintext []byte) (string, error) {
	s, err := c.write(ctx, c.transit+"/encrypt/"+key, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext),
	})
	if err != nil {
		return "", wrapErr(ctx, "encrypt with", c.transit+"/keys/"+key, err)
	}
	ct, _ := dataString(s, "ciphertext")
	if ct == "" {
		return "", fmt.Errorf("vault: encrypt with %s/keys/%s: no ciphertext in response", c.transit, key)
	}
	return ct, nil
}

// Decrypt decrypts a ciphertext produced by Encrypt or Rewrap.
func (c *Client) Decrypt(ctx context.Context, key, ciphertext string) ([]byte, error) {
	s, err := c.write(ctx, c.transit+"/decrypt/"+key, map[string]any{
		"ciphertext": ciphertext,
	})
	if err != nil {
		return nil, wrapErr(ctx, "decrypt with", c.transit+"/keys/"+key, err)
	}
	pt, ok := dataString(s, "plaintext")
	if !ok {
		return nil, fmt.Errorf("vault: decrypt with %s/keys/%s: no plaintext in response", c.transit, key)
	}
	out, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("vault: decrypt with %s/keys/%s: plaintext is not base64", c.transit, key)
	}
	return out, nil
}

// Rewrap re-encrypts ciphertexts under the latest key version without the
// plaintext ever leaving Vault. The result is in the same order.
func (c *Client) Rewrap(ctx context.Context, key string, ciphertexts []string) ([]string, error) {
	out := make([]string, 0, len(ciphertexts))
	for start := 0; start < len(ciphertexts); start += rewrapBatch {
		batch := ciphertexts[start:min(start+rewrapBatch, len(ciphertexts))]
		input := make([]map[string]any, len(batch))
		for i, ct := range batch {
			input[i] = map[string]any{"ciphertext": ct}
		}
		s, err := c.write(ctx, c.transit+"/rewrap/"+key, map[string]any{"batch_input": input})
		if err != nil {
			return nil, wrapErr(ctx, "rewrap with", c.transit+"/keys/"+key, err)
		}
		var results []any
		if s != nil && s.Data != nil {
			results, _ = s.Data["batch_results"].([]any)
		}
		if len(results) != len(batch) {
			return nil, fmt.Errorf("vault: rewrap with %s/keys/%s: %d results for %d ciphertexts", c.transit, key, len(results), len(batch))
		}
		for i, r := range results {
			m, _ := r.(map[string]any)
			if e, _ := m["error"].(string); e != "" {
				return nil, fmt.Errorf("vault: rewrap with %s/keys/%s: ciphertext %d: %s", c.transit, key, start+i, e)
			}
			ct, _ := m["ciphertext"].(string)
			if ct == "" {
				return nil, fmt.Errorf("vault: rewrap with %s/keys/%s: ciphertext %d: empty result", c.transit, key, start+i)
			}
			out = append(out, ct)
		}
	}
	return out, nil
}

// SetMinDecryptionVersion makes Vault refuse ciphertexts older than version.
// Call it only once every stored ciphertext has been rewrapped.
func (c *Client) SetMinDecryptionVersion(ctx context.Context, key string, version int) error {
	_, err := c.write(ctx, c.transit+"/keys/"+key+"/config", map[string]any{
		"min_decryption_version": version,
	})
	return wrapErr(ctx, fmt.Sprintf("set min_decryption_version %d on", version), c.transit+"/keys/"+key, err)
}

// RewrapAll completes a rotation of an encryption key: it rewraps every
// ciphertext to the latest version, hands the results to save (which MUST
// persist them durably before returning), and only then raises
// min_decryption_version so the old versions can no longer decrypt. If save
// fails, the floor is not raised and nothing becomes unreadable.
func (c *Client) RewrapAll(ctx context.Context, key string, ciphertexts []string, save func(ctx context.Context, rewrapped []string) error) (minVersion int, err error) {
	info, err := c.KeyInfo(ctx, key)
	if err != nil {
		return 0, err
	}
	rewrapped, err := c.Rewrap(ctx, key, ciphertexts)
	if err != nil {
		return 0, err
	}
	if err := save(ctx, rewrapped); err != nil {
		return 0, fmt.Errorf("vault: rewrap all with %s/keys/%s: save: %w", c.transit, key, err)
	}
	if info.LatestVersion > info.MinDecryptionVersion {
		if err := c.SetMinDecryptionVersion(ctx, key, info.LatestVersion); err != nil {
			return 0, err
		}
	}
	return info.LatestVersion, nil
}

func dataString(s *api.Secret, k string) (string, bool) {
	if s == nil || s.Data == nil {
		return "", false
	}
	v, ok := s.Data[k].(string)
	return v, ok
}
