-- Bot API facade, inbound (issue 16): a bot's own webhook registered through
-- the facade, and the queue of updates Herald has processed (opt-outs,
-- blocks) that the bot receives by webhook or getUpdates.

-- One webhook per account (one account is one bot, as with Telegram). Herald's
-- own webhook with Telegram stays the one Telegram calls; this is where Herald
-- forwards each update after processing it. secret_token is the bot's own,
-- sent back to it in X-Telegram-Bot-Api-Secret-Token: it must be kept as is.
CREATE TABLE facade_webhooks (
    account_id         text PRIMARY KEY REFERENCES accounts(id),
    org_id             text NOT NULL REFERENCES orgs(id),
    token_id           text NOT NULL REFERENCES facade_tokens(id),
    url                text NOT NULL CHECK (url <> ''),
    secret_token       text NOT NULL DEFAULT '',
    max_connections    integer NOT NULL DEFAULT 40,
    allowed_updates    text NOT NULL DEFAULT '',   -- JSON array, '' = Telegram's default
    created_at         timestamptz NOT NULL,
    last_error_at      timestamptz,
    last_error_message text NOT NULL DEFAULT ''
);

-- Updates waiting for the bot, kept only for accounts with an active facade
-- token, deleted once confirmed (getUpdates offset) or forwarded (webhook), and
-- after a day at the latest, as Telegram does. The payload is the update as
-- Telegram sent it (a person's message): chat_id lets erasure find it.
CREATE TABLE facade_updates (
    account_id  text NOT NULL REFERENCES accounts(id),
    update_id   bigint NOT NULL,
    org_id      text NOT NULL REFERENCES orgs(id),
    kind        text NOT NULL,
    chat_id     text NOT NULL DEFAULT '',
    payload     text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, update_id)
);
CREATE INDEX facade_updates_received ON facade_updates (received_at);
CREATE INDEX facade_updates_chat ON facade_updates (org_id, chat_id);
