-- Herald schema v1 (SQLite). Times are INTEGER microseconds since the Unix
-- epoch (UTC); the store converts. Every tenant row carries org_id.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    principal    TEXT NOT NULL,
    role         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    prefix       TEXT NOT NULL UNIQUE,
    hash         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE accounts (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('bot','user')),
    connector      TEXT NOT NULL CHECK (connector IN ('sandbox','botapi','mtproto')),
    status         TEXT NOT NULL CHECK (status IN ('active','paused','frozen','disabled')),
    secret_ref     TEXT NOT NULL DEFAULT '',
    paid_broadcast INTEGER NOT NULL DEFAULT 0,
    frozen_until   INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX accounts_org ON accounts (org_id, id);

CREATE TABLE contacts (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    chat_id         TEXT NOT NULL,
    timezone        TEXT NOT NULL DEFAULT '',
    language        TEXT NOT NULL DEFAULT '',
    opted_out_at    INTEGER,
    opt_out_source  TEXT NOT NULL DEFAULT '',
    last_inbound_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (org_id, chat_id)
);

CREATE TABLE consents (
    contact_id  TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    basis       TEXT NOT NULL CHECK (basis IN ('consent','legitimate_interest','contract')),
    source      TEXT NOT NULL CHECK (source <> ''),
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (contact_id, purpose)
);

CREATE TABLE actions (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id),
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    kind            TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    target          TEXT NOT NULL,
    contact_id      TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    content         TEXT NOT NULL,
    status          TEXT NOT NULL,
    send_at         INTEGER NOT NULL,
    schedule_at     INTEGER,
    idempotency_key TEXT,
    request_hash    TEXT NOT NULL DEFAULT '',
    submitted_by    TEXT NOT NULL,
    decision        TEXT,
    receipt         TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    error_code      TEXT NOT NULL DEFAULT '',
    error_message   TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (org_id, idempotency_key)
);
CREATE INDEX actions_org_created ON actions (org_id, id DESC);
CREATE INDEX actions_org_target_send ON actions (org_id, target, send_at);
CREATE INDEX actions_account_send ON actions (account_id, send_at);

CREATE TABLE action_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id   TEXT NOT NULL REFERENCES actions(id),
    org_id      TEXT NOT NULL,
    from_status TEXT NOT NULL DEFAULT '',
    to_status   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX action_events_action ON action_events (action_id, id);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id    TEXT NOT NULL UNIQUE REFERENCES actions(id),
    org_id       TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    locked_by    TEXT NOT NULL DEFAULT '',
    locked_until INTEGER,
    last_error   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at);

CREATE TABLE ledger_heads (
    org_id TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL,
    hash   TEXT NOT NULL,
    time   INTEGER NOT NULL
);

CREATE TABLE ledger_entries (
    org_id       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    time         INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    refs         TEXT,
    attrs        TEXT,
    payload_hash TEXT NOT NULL DEFAULT '',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE TABLE ledger_payloads (
    org_id     TEXT NOT NULL,
    hash       TEXT NOT NULL,
    salt       BLOB NOT NULL,
    data       BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, hash)
);

CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only (UPDATE refused)');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only (DELETE refused)');
END;
