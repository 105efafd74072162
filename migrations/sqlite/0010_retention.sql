-- Per-organisation retention configuration (store.RetentionConfig; floors,
-- ceilings and defaults in docs/audit.md §7.1). No row: the defaults.
CREATE TABLE org_retention (
    org_id                      TEXT PRIMARY KEY REFERENCES orgs(id),
    ledger_entries_days         INTEGER NOT NULL,
    decision_inputs_days        INTEGER NOT NULL,
    payloads_days               INTEGER NOT NULL,
    receipts_days               INTEGER NOT NULL,
    drop_content_after_delivery INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    updated_by                  TEXT NOT NULL
);

-- When the retention job last recorded a retention.ran entry for an org:
-- a run that removed nothing is recorded at most once a day.
CREATE TABLE retention_runs (
    org_id      TEXT PRIMARY KEY REFERENCES orgs(id),
    recorded_at INTEGER NOT NULL
);
