-- Approval stages of actions whose decision was "approve", the votes cast
-- on them (one per person per action: separation of duties), and human
-- overrides of overridable denials.
CREATE TABLE approval_stages (
    action_id TEXT NOT NULL REFERENCES actions(id),
    org_id    TEXT NOT NULL,
    stage     INTEGER NOT NULL,
    role      TEXT NOT NULL,
    mode      TEXT NOT NULL CHECK (mode IN ('any','all')),
    approvers TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (action_id, stage)
);

CREATE TABLE approval_votes (
    action_id TEXT NOT NULL REFERENCES actions(id),
    org_id    TEXT NOT NULL,
    stage     INTEGER NOT NULL,
    principal TEXT NOT NULL,
    vote      TEXT NOT NULL CHECK (vote IN ('approve','reject')),
    at        INTEGER NOT NULL,
    PRIMARY KEY (action_id, principal)
);

CREATE TABLE action_overrides (
    action_id TEXT PRIMARY KEY REFERENCES actions(id),
    org_id    TEXT NOT NULL,
    principal TEXT NOT NULL,
    rules     TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX actions_org_status ON actions (org_id, status);
