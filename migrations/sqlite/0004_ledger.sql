-- Ledger: signed checkpoints, pruning anchors, payload tombstones, and the
-- indexes the ledger API filters on. See docs/audit.md and the PostgreSQL
-- twin of this file.

CREATE TABLE ledger_checkpoints (
    org_id     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    root       TEXT NOT NULL,
    note       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, size)
);

CREATE TABLE ledger_anchors (
    org_id     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    anchor     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, size)
);

CREATE TABLE ledger_payload_tombstones (
    org_id    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    purged_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, hash)
);

CREATE INDEX ledger_payloads_created ON ledger_payloads (org_id, created_at);
CREATE INDEX ledger_entries_action ON ledger_entries (org_id, json_extract(refs, '$.action'), seq);
CREATE INDEX ledger_entries_contact ON ledger_entries (org_id, json_extract(refs, '$.contact')) WHERE payload_hash <> '';

-- Entries stay append-only, except pruning behind a persisted anchor.
DROP TRIGGER ledger_entries_no_delete;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    WHEN NOT EXISTS (SELECT 1 FROM ledger_anchors a WHERE a.org_id = OLD.org_id AND a.size > OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only (DELETE refused)');
END;

CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger checkpoints are append-only (UPDATE refused)');
END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'ledger checkpoints are append-only (DELETE refused)');
END;
CREATE TRIGGER ledger_anchors_no_update BEFORE UPDATE ON ledger_anchors
BEGIN
    SELECT RAISE(ABORT, 'ledger anchors are append-only (UPDATE refused)');
END;
CREATE TRIGGER ledger_anchors_no_delete BEFORE DELETE ON ledger_anchors
BEGIN
    SELECT RAISE(ABORT, 'ledger anchors are append-only (DELETE refused)');
END;
