-- Per-account send leases: only the lease holder sends for an account, so
-- one process's rate-limit buckets are the account's buckets across replicas.
CREATE TABLE account_leases (
    account_id text PRIMARY KEY REFERENCES accounts(id),
    owner      text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Telegram webhooks: the secret-token header Telegram sends is checked
-- against this hash; the secret itself is shown once when set.
ALTER TABLE accounts ADD COLUMN webhook_secret_hash text NOT NULL DEFAULT '';
