-- Approval stages of actions whose decision was "approve", the votes cast
-- on them (one per person per action: separation of duties), and human
-- overrides of overridable denials.
CREATE TABLE approval_stages (
    action_id text NOT NULL REFERENCES actions(id),
    org_id    text NOT NULL,
    stage     integer NOT NULL,
    role      text NOT NULL,
    mode      text NOT NULL CHECK (mode IN ('any','all')),
    approvers jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (action_id, stage)
);

CREATE TABLE approval_votes (
    action_id text NOT NULL REFERENCES actions(id),
    org_id    text NOT NULL,
    stage     integer NOT NULL,
    principal text NOT NULL,
    vote      text NOT NULL CHECK (vote IN ('approve','reject')),
    at        timestamptz NOT NULL,
    PRIMARY KEY (action_id, principal)
);

CREATE TABLE action_overrides (
    action_id text PRIMARY KEY REFERENCES actions(id),
    org_id    text NOT NULL,
    principal text NOT NULL,
    rules     jsonb NOT NULL,
    at        timestamptz NOT NULL
);
CREATE INDEX actions_org_status ON actions (org_id, status);
