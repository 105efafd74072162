-- The auditor's desk (dpia/): each organisation's editable DPIA action plan.
-- The DPIA itself is generated from the live system and never stored; its
-- hash goes to the ledger (dpia.generated, dpia.approved) instead.
CREATE TABLE dpia_plans (
    org_id     TEXT PRIMARY KEY REFERENCES orgs(id),
    plan       TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL
);

-- Data-subject requests (GDPR Art. 12–22): answered within 30 days,
-- extendable once by 60 (Art. 12(3)). contact_id has no foreign key: an
-- erasure request outlives the contact it erased.
CREATE TABLE subject_requests (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    kind         TEXT NOT NULL CHECK (kind IN ('access','rectification','erasure','portability','restriction','objection','human_review')),
    contact_id   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open','completed','lifted')),
    received_at  INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    extended     INTEGER NOT NULL DEFAULT 0,
    completed_at INTEGER,
    lifted_at    INTEGER,
    created_by   TEXT NOT NULL,
    completed_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subject_requests_org ON subject_requests (org_id, received_at);
CREATE INDEX subject_requests_open ON subject_requests (status, due_at);

-- Restriction (Art. 18) and objection (Art. 21) mark the contact; policy
-- denies every purpose (restriction) or legitimate-interest and marketing
-- purposes (objection) until lifted.
ALTER TABLE contacts ADD COLUMN restricted_at INTEGER;
ALTER TABLE contacts ADD COLUMN objected_at INTEGER;

-- Personal data breaches (GDPR Art. 33): the supervisory authority is to be
-- notified within 72 hours of detection. affected_subjects is computed from
-- the ledger (distinct people in the window on the accounts concerned).
CREATE TABLE incidents (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES orgs(id),
    title             TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    detected_at       INTEGER NOT NULL,
    deadline_at       INTEGER NOT NULL,
    window_from       INTEGER NOT NULL,
    window_to         INTEGER NOT NULL,
    accounts          TEXT NOT NULL,
    affected_subjects INTEGER NOT NULL,
    affected_actions  INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('open','notified')),
    notified_at       INTEGER,
    created_at        INTEGER NOT NULL,
    created_by        TEXT NOT NULL
);
CREATE INDEX incidents_org ON incidents (org_id, detected_at);
