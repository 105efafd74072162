-- The auditor's desk (dpia/): each organisation's editable DPIA action plan.
-- The DPIA itself is generated from the live system and never stored; its
-- hash goes to the ledger (dpia.generated, dpia.approved) instead.
CREATE TABLE dpia_plans (
    org_id     text PRIMARY KEY REFERENCES orgs(id),
    plan       jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

-- Data-subject requests (GDPR Art. 12–22): answered within 30 days,
-- extendable once by 60 (Art. 12(3)). contact_id has no foreign key: an
-- erasure request outlives the contact it erased.
CREATE TABLE subject_requests (
    id           text PRIMARY KEY,
    org_id       text NOT NULL REFERENCES orgs(id),
    kind         text NOT NULL CHECK (kind IN ('access','rectification','erasure','portability','restriction','objection','human_review')),
    contact_id   text NOT NULL,
    status       text NOT NULL CHECK (status IN ('open','completed','lifted')),
    received_at  timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    extended     boolean NOT NULL DEFAULT false,
    completed_at timestamptz,
    lifted_at    timestamptz,
    created_by   text NOT NULL,
    completed_by text NOT NULL DEFAULT ''
);
CREATE INDEX subject_requests_org ON subject_requests (org_id, received_at);
CREATE INDEX subject_requests_open ON subject_requests (status, due_at);

-- Restriction (Art. 18) and objection (Art. 21) mark the contact; policy
-- denies every purpose (restriction) or legitimate-interest and marketing
-- purposes (objection) until lifted.
ALTER TABLE contacts ADD COLUMN restricted_at timestamptz;
ALTER TABLE contacts ADD COLUMN objected_at timestamptz;

-- Personal data breaches (GDPR Art. 33): the supervisory authority is to be
-- notified within 72 hours of detection. affected_subjects is computed from
-- the ledger (distinct people in the window on the accounts concerned).
CREATE TABLE incidents (
    id                text PRIMARY KEY,
    org_id            text NOT NULL REFERENCES orgs(id),
    title             text NOT NULL,
    description       text NOT NULL DEFAULT '',
    detected_at       timestamptz NOT NULL,
    deadline_at       timestamptz NOT NULL,
    window_from       timestamptz NOT NULL,
    window_to         timestamptz NOT NULL,
    accounts          text NOT NULL,
    affected_subjects integer NOT NULL,
    affected_actions  integer NOT NULL,
    status            text NOT NULL CHECK (status IN ('open','notified')),
    notified_at       timestamptz,
    created_at        timestamptz NOT NULL,
    created_by        text NOT NULL
);
CREATE INDEX incidents_org ON incidents (org_id, detected_at);
