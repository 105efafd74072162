-- Bot API facade (issue 16; SQLite: times are INTEGER microseconds): tokens a bot uses in place of its Telegram
-- token at /bot<token>/<method>, and the calls it made, so a retried call
-- finds the action its first attempt created instead of sending twice.

-- A facade token is shown once; like an API key only its prefix (to find
-- the row) and the SHA-256 of its secret are kept. It acts for one account
-- as principal (whose role bindings Casbin evaluates, as for any caller).
CREATE TABLE facade_tokens (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    account_id TEXT NOT NULL REFERENCES accounts(id),
    principal  TEXT NOT NULL CHECK (principal <> ''),
    role       TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    purpose    TEXT NOT NULL,          -- default purpose of governed calls
    deferral   TEXT NOT NULL CHECK (deferral IN ('retry_after','scheduled')),
    prefix     TEXT NOT NULL UNIQUE,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX facade_tokens_account ON facade_tokens (org_id, account_id, created_at);

-- One row per governed call that created an action: the call's hash (token,
-- method, parameters; never the parameters themselves) finds the action of
-- an identical earlier call.
CREATE TABLE facade_calls (
    token_id   TEXT NOT NULL REFERENCES facade_tokens(id),
    call_hash  TEXT NOT NULL,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    action_id  TEXT NOT NULL REFERENCES actions(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, call_hash, action_id)
);
CREATE INDEX facade_calls_latest ON facade_calls (token_id, call_hash, created_at DESC);
