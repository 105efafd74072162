-- Wave 2, issue 10/11 (w10a): one recipient key per person, and send
-- counters kept in the same transaction as the action.

-- recipient is the resolved key a person is counted by, however an action
-- addressed them (contact id, chat id, @username, MTProto peer): the
-- canonical chat of the contact when there is one, else the canonical chat.
ALTER TABLE actions ADD COLUMN recipient text NOT NULL DEFAULT '';
UPDATE actions SET recipient = COALESCE((SELECT c.chat_id FROM contacts c WHERE c.id = actions.contact_id), target);
CREATE INDEX actions_org_recipient_send ON actions (org_id, recipient, send_at);

-- A contact's public @username (lower case, without "@"), so an action
-- addressed to it is that contact.
ALTER TABLE contacts ADD COLUMN username text NOT NULL DEFAULT '';
CREATE INDEX contacts_org_username ON contacts (org_id, username);

-- Time-bucketed counters per sending account. scope says what is counted
-- and the bucket width: r1 / r2 / r3 = reserved sends (counted statuses) by
-- send_at in 100 ms / 1 s / 1 h buckets (r4: 1 min); s1 / s2 = sends that started (moved
-- to sending) by start time in 100 ms / 1 s buckets; b3 = blocks by hour;
-- q3 / f3 / p3 = Bot API 429, FLOOD_WAIT and PEER_FLOOD answers by hour.
-- bucket = floor(unix time / width).
CREATE TABLE send_counters (
    account_id text   NOT NULL,
    scope      text   NOT NULL,
    bucket     bigint NOT NULL,
    org_id     text   NOT NULL,
    n          bigint NOT NULL,
    PRIMARY KEY (account_id, scope, bucket)
);

-- Backfill the reservations: hourly for the last 8 days (the longest window
-- read), by minute for the last 2 hours and by second for the last 2
-- minutes (the current hour and minute are read at those widths).
INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r3', floor(extract(epoch FROM send_at) / 3600)::bigint, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > now() - interval '8 days'
GROUP BY account_id, floor(extract(epoch FROM send_at) / 3600)::bigint;

INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r4', floor(extract(epoch FROM send_at) / 60)::bigint, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > now() - interval '2 hours'
GROUP BY account_id, floor(extract(epoch FROM send_at) / 60)::bigint;

INSERT INTO send_counters (account_id, scope, bucket, org_id, n)
SELECT account_id, 'r2', floor(extract(epoch FROM send_at))::bigint, min(org_id), count(*)
FROM actions
WHERE status IN ('pending_approval', 'scheduled', 'sending', 'delivered', 'unknown')
  AND send_at > now() - interval '2 minutes'
GROUP BY account_id, floor(extract(epoch FROM send_at))::bigint;
