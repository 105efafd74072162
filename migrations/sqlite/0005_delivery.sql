-- Per-account send leases: only the lease holder sends for an account, so
-- one process's rate-limit buckets are the account's buckets.
CREATE TABLE account_leases (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id),
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Telegram webhooks: the secret-token header is checked against this hash.
ALTER TABLE accounts ADD COLUMN webhook_secret_hash TEXT NOT NULL DEFAULT '';
