-- Herald schema v1 (PostgreSQL). Every tenant row carries org_id; every query filters on it.

CREATE TABLE orgs (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    timezone    text NOT NULL DEFAULT 'UTC',
    created_at  timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    org_id       text NOT NULL REFERENCES orgs(id),
    principal    text NOT NULL,
    role         text NOT NULL,
    name         text NOT NULL DEFAULT '',
    prefix       text NOT NULL UNIQUE,
    hash         text NOT NULL,          -- SHA-256 of the secret part; the secret is never stored
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE accounts (
    id             text PRIMARY KEY,
    org_id         text NOT NULL REFERENCES orgs(id),
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('bot','user')),
    connector      text NOT NULL CHECK (connector IN ('sandbox','botapi','mtproto')),
    status         text NOT NULL CHECK (status IN ('active','paused','frozen','disabled')),
    secret_ref     text NOT NULL DEFAULT '',
    paid_broadcast boolean NOT NULL DEFAULT false,
    frozen_until   timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX accounts_org ON accounts (org_id, id);

CREATE TABLE contacts (
    id              text PRIMARY KEY,
    org_id          text NOT NULL REFERENCES orgs(id),
    chat_id         text NOT NULL,
    timezone        text NOT NULL DEFAULT '',
    language        text NOT NULL DEFAULT '',
    opted_out_at    timestamptz,
    opt_out_source  text NOT NULL DEFAULT '',
    last_inbound_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (org_id, chat_id)
);

CREATE TABLE consents (
    contact_id  text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    purpose     text NOT NULL,
    basis       text NOT NULL CHECK (basis IN ('consent','legitimate_interest','contract')),
    source      text NOT NULL CHECK (source <> ''),
    granted_at  timestamptz NOT NULL,
    PRIMARY KEY (contact_id, purpose)
);

CREATE TABLE actions (
    id              text PRIMARY KEY,
    org_id          text NOT NULL REFERENCES orgs(id),
    account_id      text NOT NULL REFERENCES accounts(id),
    kind            text NOT NULL,
    purpose         text NOT NULL,
    target          text NOT NULL,
    contact_id      text REFERENCES contacts(id) ON DELETE SET NULL,
    content         jsonb NOT NULL,
    status          text NOT NULL,
    send_at         timestamptz NOT NULL,
    schedule_at     timestamptz,
    idempotency_key text,
    request_hash    text NOT NULL DEFAULT '',
    submitted_by    text NOT NULL,
    decision        jsonb,
    receipt         jsonb,
    attempts        integer NOT NULL DEFAULT 0,
    error_code      text NOT NULL DEFAULT '',
    error_message   text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (org_id, idempotency_key)
);
CREATE INDEX actions_org_created ON actions (org_id, id DESC);
CREATE INDEX actions_org_target_send ON actions (org_id, target, send_at);
CREATE INDEX actions_account_send ON actions (account_id, send_at);

CREATE TABLE action_events (
    id         bigserial PRIMARY KEY,
    action_id  text NOT NULL REFERENCES actions(id),
    org_id     text NOT NULL,
    from_status text NOT NULL DEFAULT '',
    to_status  text NOT NULL,
    at         timestamptz NOT NULL,
    actor      text NOT NULL,
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX action_events_action ON action_events (action_id, id);

-- The durable delivery queue: a transactional outbox. A row is inserted in the
-- same transaction as the action's move to scheduled, claimed with
-- FOR UPDATE SKIP LOCKED under a lease, and deleted in the transaction that
-- records the outcome.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    action_id    text NOT NULL UNIQUE REFERENCES actions(id),
    org_id       text NOT NULL,
    account_id   text NOT NULL,
    run_at       timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    locked_by    text NOT NULL DEFAULT '',
    locked_until timestamptz,
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at);

-- The audit ledger: one hash chain per organisation.
CREATE TABLE ledger_heads (
    org_id text PRIMARY KEY,
    seq    bigint NOT NULL,
    hash   text NOT NULL,
    time   timestamptz NOT NULL
);

CREATE TABLE ledger_entries (
    org_id       text NOT NULL,
    seq          bigint NOT NULL,
    time         timestamptz NOT NULL,
    kind         text NOT NULL,
    actor        text NOT NULL,
    refs         jsonb,
    attrs        jsonb,
    payload_hash text NOT NULL DEFAULT '',
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    PRIMARY KEY (org_id, seq)
);

CREATE TABLE ledger_payloads (
    org_id     text NOT NULL,
    hash       text NOT NULL,
    salt       bytea NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, hash)
);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();
