-- Campaigns (issue 13): contact tags and attributes, saved segments,
-- campaigns and their recipients. A campaign's recipients are materialised
-- when its fan-out starts (the segment is evaluated then, not when it was
-- saved); each recipient row names the action the pipeline created for it,
-- so a fan-out that stopped half way resumes where it was.

CREATE TABLE contact_tags (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_org_tag ON contact_tags (org_id, tag, contact_id);

-- Attributes are template variables ({{first_name}}); they are personal
-- data and go with the contact on erasure.
CREATE TABLE contact_attributes (
    contact_id TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    org_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (contact_id, name)
);

CREATE TABLE segments (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    filter      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('draft','scheduled','running','paused','completed','cancelled')),
    spec         TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    -- the principal the fan-out submits as (whoever scheduled it)
    run_as       TEXT NOT NULL DEFAULT '',
    start_at     INTEGER,
    end_at       INTEGER,
    materialized INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT NOT NULL DEFAULT '',
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX campaigns_org ON campaigns (org_id, id DESC);
CREATE INDEX campaigns_due ON campaigns (status, start_at);

CREATE TABLE campaign_recipients (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    org_id      TEXT NOT NULL,
    contact_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    account_id  TEXT NOT NULL,
    send_at     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending','submitted','invalid','skipped','cancelled')),
    action_id   TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients (campaign_id, status, seq);
CREATE INDEX campaign_recipients_action ON campaign_recipients (action_id);

-- "Last contacted" segment filters and per-contact cap previews read actions by contact.
CREATE INDEX actions_org_contact_send ON actions (org_id, contact_id, send_at);
