-- Risk inputs count an account's recent blocks on every decision.
CREATE INDEX actions_account_error ON actions (account_id, error_code, updated_at);
