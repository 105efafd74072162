-- Bot API facade, inbound (issue 16; SQLite: times are INTEGER microseconds): a bot's own webhook registered through
-- the facade, and the queue of updates Herald has processed (opt-outs,
-- blocks) that the bot receives by webhook or getUpdates.

-- One webhook per account (one account is one bot, as with Telegram). Herald's
-- own webhook with Telegram stays the one Telegram calls; this is where Herald
-- forwards each update after processing it. secret_token is the bot's own,
-- sent back to it in X-Telegram-Bot-Api-Secret-Token: it must be kept as is.
CREATE TABLE facade_webhooks (
    account_id         TEXT PRIMARY KEY REFERENCES accounts(id),
    org_id             TEXT NOT NULL REFERENCES orgs(id),
    token_id           TEXT NOT NULL REFERENCES facade_tokens(id),
    url                TEXT NOT NULL CHECK (url <> ''),
    secret_token       TEXT NOT NULL DEFAULT '',
    max_connections    INTEGER NOT NULL DEFAULT 40,
    allowed_updates    TEXT NOT NULL DEFAULT '',   -- JSON array, '' = Telegram's default
    created_at         INTEGER NOT NULL,
    last_error_at      INTEGER,
    last_error_message TEXT NOT NULL DEFAULT ''
);

-- Updates waiting for the bot, kept only for accounts with an active facade
-- token, deleted once confirmed (getUpdates offset) or forwarded (webhook), and
-- after a day at the latest, as Telegram does. The payload is the update as
-- Telegram sent it (a person's message): chat_id lets erasure find it.
CREATE TABLE facade_updates (
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    update_id   INTEGER NOT NULL,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL,
    chat_id     TEXT NOT NULL DEFAULT '',
    payload     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, update_id)
);
CREATE INDEX facade_updates_received ON facade_updates (received_at);
CREATE INDEX facade_updates_chat ON facade_updates (org_id, chat_id);
