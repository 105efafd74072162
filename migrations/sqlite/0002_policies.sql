-- Herald schema v2 (SQLite): the policy lifecycle and decision records.
-- Times are INTEGER microseconds since the Unix epoch (UTC); JSON is TEXT.
-- See the PostgreSQL migration for the meaning of each column.

CREATE TABLE policy_bundles (
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    version      INTEGER NOT NULL CHECK (version > 0),
    hash         TEXT NOT NULL,
    files        TEXT NOT NULL,
    author       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    report       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('candidate','active','retired','failed')),
    activated_at INTEGER,
    activated_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (org_id, version)
);
CREATE UNIQUE INDEX policy_bundles_one_active ON policy_bundles (org_id) WHERE status = 'active';
CREATE INDEX policy_bundles_hash ON policy_bundles (org_id, hash);

CREATE TABLE decision_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      TEXT NOT NULL,
    action_id   TEXT NOT NULL,
    stage       TEXT NOT NULL CHECK (stage IN ('submit','send')),
    at          INTEGER NOT NULL,
    bundle_hash TEXT NOT NULL,
    input       TEXT NOT NULL,
    decision    TEXT NOT NULL,
    input_hash  TEXT NOT NULL
);
CREATE INDEX decision_records_org_recent ON decision_records (org_id, id DESC);
CREATE INDEX decision_records_action ON decision_records (org_id, action_id, id);
