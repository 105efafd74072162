-- Per-organisation overrides of the policy bundle's parameters (caps,
-- windows, thresholds), merged over data.herald.params by the policy.
CREATE TABLE org_policy_params (
    org_id     TEXT PRIMARY KEY REFERENCES orgs(id),
    params     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);
