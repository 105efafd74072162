-- Ledger: signed checkpoints, pruning anchors, payload tombstones, and the
-- indexes the ledger API filters on. See docs/audit.md.

-- Every signed checkpoint of an org's log. A checkpoint commits to entries
-- [0, size); note is the whole signed note (C2SP tlog-checkpoint), so it is
-- exported byte for byte. Rows are never updated or deleted.
CREATE TABLE ledger_checkpoints (
    org_id     text NOT NULL,
    size       bigint NOT NULL,
    root       text NOT NULL,          -- standard base64, as in the note
    note       text NOT NULL,
    key_id     text NOT NULL,          -- signer name + "+" + key hash (hex)
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, size)
);

-- Trust anchors written when entries [0, size) were pruned (ledger.Anchor).
-- Anchors are never deleted; a later pruning adds a new one.
CREATE TABLE ledger_anchors (
    org_id     text NOT NULL,
    size       bigint NOT NULL,
    anchor     jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, size)
);

-- Payloads deleted by retention or erasure leave a tombstone, so an export
-- can tell "purged" (marked as such) from "missing" (not exported).
CREATE TABLE ledger_payload_tombstones (
    org_id    text NOT NULL,
    hash      text NOT NULL,
    reason    text NOT NULL,           -- "retention" or "erasure"
    purged_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, hash)
);

CREATE INDEX ledger_payloads_created ON ledger_payloads (org_id, created_at);
CREATE INDEX ledger_entries_action ON ledger_entries (org_id, (refs->>'action'), seq);
CREATE INDEX ledger_entries_contact ON ledger_entries (org_id, (refs->>'contact')) WHERE payload_hash <> '';

-- Entries stay append-only; the one exception is pruning: a DELETE of an
-- entry below a persisted anchor of its org (written in the same
-- transaction, see store.PruneLedger).
CREATE OR REPLACE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (
        SELECT 1 FROM ledger_anchors a WHERE a.org_id = OLD.org_id AND a.size > OLD.seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ledger entries are append-only (% refused)', TG_OP;
END;
$$;

CREATE FUNCTION ledger_rows_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only (% refused)', TG_TABLE_NAME, TG_OP;
END;
$$;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_append_only();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_append_only();
CREATE TRIGGER ledger_anchors_no_update BEFORE UPDATE OR DELETE ON ledger_anchors
    FOR EACH ROW EXECUTE FUNCTION ledger_rows_append_only();
CREATE TRIGGER ledger_anchors_no_truncate BEFORE TRUNCATE ON ledger_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_rows_append_only();
