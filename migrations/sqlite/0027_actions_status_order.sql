-- Listing actions by status newest first (GET /v1/actions?status=…, the
-- console's Today, Actions and Approvals pages) reads the index in order
-- and stops at the page size, instead of sorting every action of that
-- status or scanning every action for a rare one (issue 17).
CREATE INDEX actions_org_status_id ON actions (org_id, status, id DESC);
