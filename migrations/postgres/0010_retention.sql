-- Per-organisation retention configuration (store.RetentionConfig; floors,
-- ceilings and defaults in docs/audit.md §7.1). No row: the defaults.
CREATE TABLE org_retention (
    org_id                      text PRIMARY KEY REFERENCES orgs(id),
    ledger_entries_days         integer NOT NULL,
    decision_inputs_days        integer NOT NULL,
    payloads_days               integer NOT NULL,
    receipts_days               integer NOT NULL,
    drop_content_after_delivery boolean NOT NULL,
    updated_at                  timestamptz NOT NULL,
    updated_by                  text NOT NULL
);

-- When the retention job last recorded a retention.ran entry for an org:
-- a run that removed nothing is recorded at most once a day.
CREATE TABLE retention_runs (
    org_id      text PRIMARY KEY REFERENCES orgs(id),
    recorded_at timestamptz NOT NULL
);
