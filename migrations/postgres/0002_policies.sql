-- Herald schema v2 (PostgreSQL): the policy lifecycle and decision records.

-- Every uploaded bundle version of an organisation. Versions count from 1 per
-- organisation and are never reused; rows are never deleted, so any decision's
-- bundle (by hash) can be reloaded for replay. At most one version per
-- organisation is active; an organisation without one is decided by the
-- bundle the binary ships (or --policy-dir).
CREATE TABLE policy_bundles (
    org_id       text NOT NULL REFERENCES orgs(id),
    version      integer NOT NULL CHECK (version > 0),
    hash         text NOT NULL,              -- policies.Bundle.Hash()
    files        jsonb NOT NULL,             -- {"path": "content"}: Rego and data.json, UTF-8
    author       text NOT NULL,              -- principal who uploaded it
    created_at   timestamptz NOT NULL,
    report       jsonb NOT NULL,             -- policies.TestReport of the bundle's own tests
    status       text NOT NULL CHECK (status IN ('candidate','active','retired','failed')),
    activated_at timestamptz,
    activated_by text NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, version)
);
CREATE UNIQUE INDEX policy_bundles_one_active ON policy_bundles (org_id) WHERE status = 'active';
CREATE INDEX policy_bundles_hash ON policy_bundles (org_id, hash);

-- The input and outcome of every policy decision, for replay and impact
-- preview. The input is the policies.Input, already PII-minimised (content
-- statistics, never text; contact ids, never names); when a contact is
-- present its Telegram chat id is removed as well.
CREATE TABLE decision_records (
    id          bigserial PRIMARY KEY,
    org_id      text NOT NULL,
    action_id   text NOT NULL,
    stage       text NOT NULL CHECK (stage IN ('submit','send')),
    at          timestamptz NOT NULL,
    bundle_hash text NOT NULL,
    input       jsonb NOT NULL,
    decision    jsonb NOT NULL,
    input_hash  text NOT NULL
);
CREATE INDEX decision_records_org_recent ON decision_records (org_id, id DESC);
CREATE INDEX decision_records_action ON decision_records (org_id, action_id, id);
