-- Campaign approval (issue 13 §4): a campaign that needs approval is
-- approved once, as a whole, by the same staged four-eyes rules as an
-- action (stages from the policy, the requester never approves, one vote
-- per person, expiry). approval_stages/approval_votes reference actions,
-- so a campaign's request and votes live here, keyed by the campaign.
-- The prediction is the dry run the approver saw (counts by outcome and
-- rule, and a few rendered samples: personal data, erased with the org).

CREATE TABLE campaign_approvals (
    campaign_id  TEXT PRIMARY KEY REFERENCES campaigns(id),
    org_id       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','expired')),
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    reasons      TEXT NOT NULL,
    stages       TEXT NOT NULL,
    prediction   TEXT NOT NULL,
    decided_at   INTEGER,
    -- the ledger entry (campaign.approved) every recipient's action refers to
    ledger_seq   INTEGER
);
CREATE INDEX campaign_approvals_pending ON campaign_approvals (org_id, status);

CREATE TABLE campaign_approval_votes (
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    org_id      TEXT NOT NULL,
    stage       INTEGER NOT NULL,
    principal   TEXT NOT NULL,
    vote        TEXT NOT NULL CHECK (vote IN ('approve','reject')),
    at          INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, principal)
);
