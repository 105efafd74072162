-- Tracing across the queue: the W3C traceparent of the request that queued
-- a delivery job, so the worker's spans join the action's trace (in any
-- process). Empty when tracing is off.
ALTER TABLE jobs ADD COLUMN trace_parent text NOT NULL DEFAULT '';

-- The SLO report (herald slo report, GET /v1/slo) reads final outcomes by
-- time; without this it scans every event.
CREATE INDEX action_events_outcomes ON action_events (at) WHERE to_status IN ('delivered', 'failed', 'unknown');
