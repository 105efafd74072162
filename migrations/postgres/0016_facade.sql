-- Bot API facade (issue 16): tokens a bot uses in place of its Telegram
-- token at /bot<token>/<method>, and the calls it made, so a retried call
-- finds the action its first attempt created instead of sending twice.

-- A facade token is shown once; like an API key only its prefix (to find
-- the row) and the SHA-256 of its secret are kept. It acts for one account
-- as principal (whose role bindings Casbin evaluates, as for any caller).
CREATE TABLE facade_tokens (
    id         text PRIMARY KEY,
    org_id     text NOT NULL REFERENCES orgs(id),
    account_id text NOT NULL REFERENCES accounts(id),
    principal  text NOT NULL CHECK (principal <> ''),
    role       text NOT NULL,
    name       text NOT NULL DEFAULT '',
    purpose    text NOT NULL,          -- default purpose of governed calls
    deferral   text NOT NULL CHECK (deferral IN ('retry_after','scheduled')),
    prefix     text NOT NULL UNIQUE,
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX facade_tokens_account ON facade_tokens (org_id, account_id, created_at);

-- One row per governed call that created an action: the call's hash (token,
-- method, parameters; never the parameters themselves) finds the action of
-- an identical earlier call.
CREATE TABLE facade_calls (
    token_id   text NOT NULL REFERENCES facade_tokens(id),
    call_hash  text NOT NULL,
    org_id     text NOT NULL REFERENCES orgs(id),
    action_id  text NOT NULL REFERENCES actions(id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (token_id, call_hash, action_id)
);
CREATE INDEX facade_calls_latest ON facade_calls (token_id, call_hash, created_at DESC);
