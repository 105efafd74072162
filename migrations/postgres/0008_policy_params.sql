-- Per-organisation overrides of the policy bundle's parameters (caps,
-- windows, thresholds), merged over data.herald.params by the policy.
CREATE TABLE org_policy_params (
    org_id     text PRIMARY KEY REFERENCES orgs(id),
    params     jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);
