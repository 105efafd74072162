-- The auditor's desk (dpia/): each organisation's editable DPIA action plan.
-- The DPIA itself is generated from the live system and never stored; its
-- hash goes to the ledger (dpia.generated, dpia.approved) instead.
CREATE TABLE dpia_plans (
    org_id     text PRIMARY KEY REFERENCES orgs(id),
    plan       jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);
