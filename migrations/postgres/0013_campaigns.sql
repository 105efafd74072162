-- Campaigns (issue 13): contact tags and attributes, saved segments,
-- campaigns and their recipients. A campaign's recipients are materialised
-- when its fan-out starts (the segment is evaluated then, not when it was
-- saved); each recipient row names the action the pipeline created for it,
-- so a fan-out that stopped half way resumes where it was.

CREATE TABLE contact_tags (
    contact_id text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    org_id     text NOT NULL,
    tag        text NOT NULL,
    PRIMARY KEY (contact_id, tag)
);
CREATE INDEX contact_tags_org_tag ON contact_tags (org_id, tag, contact_id);

-- Attributes are template variables ({{first_name}}); they are personal
-- data and go with the contact on erasure.
CREATE TABLE contact_attributes (
    contact_id text NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    org_id     text NOT NULL,
    name       text NOT NULL,
    value      text NOT NULL,
    PRIMARY KEY (contact_id, name)
);

CREATE TABLE segments (
    id          text PRIMARY KEY,
    org_id      text NOT NULL REFERENCES orgs(id),
    name        text NOT NULL,
    filter      text NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE campaigns (
    id           text PRIMARY KEY,
    org_id       text NOT NULL REFERENCES orgs(id),
    name         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('draft','scheduled','running','paused','completed','cancelled')),
    spec         text NOT NULL,
    created_by   text NOT NULL,
    -- the principal the fan-out submits as (whoever scheduled it)
    run_as       text NOT NULL DEFAULT '',
    start_at     timestamptz,
    end_at       timestamptz,
    materialized boolean NOT NULL DEFAULT false,
    lease_owner  text NOT NULL DEFAULT '',
    lease_until  timestamptz,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX campaigns_org ON campaigns (org_id, id DESC);
CREATE INDEX campaigns_due ON campaigns (status, start_at);

CREATE TABLE campaign_recipients (
    campaign_id text NOT NULL REFERENCES campaigns(id),
    org_id      text NOT NULL,
    contact_id  text NOT NULL,
    seq         bigint NOT NULL,
    account_id  text NOT NULL,
    send_at     timestamptz NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending','submitted','invalid','skipped','cancelled')),
    action_id   text,
    reason      text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_pending ON campaign_recipients (campaign_id, status, seq);
CREATE INDEX campaign_recipients_action ON campaign_recipients (action_id);

-- "Last contacted" segment filters and per-contact cap previews read actions by contact.
CREATE INDEX actions_org_contact_send ON actions (org_id, contact_id, send_at);
