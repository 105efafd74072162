package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// PolicyParams returns org's overrides of the policy parameters, or nil.
func (q *queries) PolicyParams(ctx context.Context, org string) (map[string]any, error) {
	var raw string
	err := q.q.queryRow(ctx, `SELECT params FROM org_policy_params WHERE org_id = $1`, org).Scan(&raw)
	if err == errNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy params: %w", err)
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return nil, fmt.Errorf("decode policy params: %w", err)
	}
	return p, nil
}

// SetPolicyParams replaces org's overrides (validated by the caller) and
// records a policy.params_changed entry with the hash of the new overrides.
func (t *Tx) SetPolicyParams(ctx context.Context, org string, params map[string]any, actor string) error {
	b, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode policy params: %w", err)
	}
	if _, err := t.q.exec(ctx, `INSERT INTO org_policy_params (org_id, params, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (org_id) DO UPDATE SET params = excluded.params, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		org, string(b), t.now(), actor); err != nil {
		return fmt.Errorf("store policy params: %w", err)
	}
	sum := sha256.Sum256(b)
	_, err = t.AppendLedger(ctx, org, LedgerRecord{Kind: "policy.params_changed", Actor: actor,
		Attrs: map[string]any{"params_hash": hex.EncodeToString(sum[:])}, Payload: b})
	return err
}
