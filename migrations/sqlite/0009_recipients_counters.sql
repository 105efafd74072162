-- Wave 2, issue 10/11 (w10a): one recipient key per person, and send
-- counters kept in the same transaction as the action. See the PostgreSQL
-- migration of the same number for the meaning of each column.

ALTER TABLE actions ADD COLUMN recipient TEXT NOT NULL DEFAULT '';
UPDATE actions SET recipient = COALESCE((SELECT c.chat_id FROM contacts c WHERE c.id = actions.contact_id), target);
CREATE INDEX actions_org_recipient_send ON actions (org_id, recipient, send_at);

ALTER TABLE contacts ADD COLUMN username TEXT NOT NULL DEFAULT '';
CREATE INDEX contacts_org_username ON contacts (org_id, username);

CREATE TABLE send_counters (
    account_id TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    bucket     INTEGER NOT NULL,
    org_id     TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (account_id, scope, bucket)
) WITHOUT ROWID;

-- Times are INTEGER microseconds since the epoch. Backfill as in the
-- PostgreSQL migration: hourly for 8 days, by minute for 2 hours, by second
-- for 2 minutes.
INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r3', send_at / 3600000000, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > (CAST(strftime('%s', 'now') AS INTEGER) - 8 * 86400) * 1000000
GROUP BY account_id, send_at / 3600000000;

INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r4', send_at / 60000000, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > (CAST(strftime('%s', 'now') AS INTEGER) - 7200) * 1000000
GROUP BY account_id, send_at / 60000000;

INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r2', send_at / 1000000, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > (CAST(strftime('%s', 'now') AS INTEGER) - 120) * 1000000
GROUP BY account_id, send_at / 1000000;
