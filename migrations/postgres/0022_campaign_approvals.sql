-- Campaign approval (issue 13 §4): a campaign that needs approval is
-- approved once, as a whole, by the same staged four-eyes rules as an
-- action (stages from the policy, the requester never approves, one vote
-- per person, expiry). approval_stages/approval_votes reference actions,
-- so a campaign's request and votes live here, keyed by the campaign.
-- The prediction is the dry run the approver saw (counts by outcome and
-- rule, and a few rendered samples: personal data, erased with the org).

CREATE TABLE campaign_approvals (
    campaign_id  text PRIMARY KEY REFERENCES campaigns(id),
    org_id       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending','approved','rejected','expired')),
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL,
    reasons      text NOT NULL,
    stages       text NOT NULL,
    prediction   text NOT NULL,
    decided_at   timestamptz,
    -- the ledger entry (campaign.approved) every recipient's action refers to
    ledger_seq   bigint
);
CREATE INDEX campaign_approvals_pending ON campaign_approvals (org_id, status);

CREATE TABLE campaign_approval_votes (
    campaign_id text NOT NULL REFERENCES campaigns(id),
    org_id      text NOT NULL,
    stage       integer NOT NULL,
    principal   text NOT NULL,
    vote        text NOT NULL CHECK (vote IN ('approve','reject')),
    at          timestamptz NOT NULL,
    PRIMARY KEY (campaign_id, principal)
);
