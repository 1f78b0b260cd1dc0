-- Issue 11: one home for each rule. The per-minute velocity cap is the gateway's
-- (risk.rs PER_MINUTE_COUNT_MAX, also in /openapi.json); risk_record keeps as many
-- recent times as the currency's limit needs, so the schema no longer repeats the cap.
ALTER TABLE risk_limits DROP CONSTRAINT risk_limits_per_minute_count_max_check;
ALTER TABLE risk_limits ADD CONSTRAINT risk_limits_per_minute_count_max_check CHECK (per_minute_count_max >= 1);
COMMENT ON COLUMN risk_counters.recent_at IS
    'times of the last movements within 60 s, newest last: as many as the currency''s per_minute_count_max';
