-- The trace of each recorded transition: an auditor reading an action's
-- events (GET /v1/actions/{id}) can open the trace of the request or the
-- delivery attempt that made each move. NULL when tracing was off. A trace
-- id is random and names no person.
ALTER TABLE action_events ADD COLUMN trace_id text;
