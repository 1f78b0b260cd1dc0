-- Request rates per API key and per wallet (issue 7), shared by every replica: each
-- subject's current one-second window and how many requests replicas have leased from
-- it. Replicas lease in chunks, so this row is touched once per chunk, never inside a
-- payment's transaction. UNLOGGED: no WAL for a counter that may reset after a crash.
CREATE UNLOGGED TABLE request_rate_windows (
    subject         text PRIMARY KEY,       -- 'key:<key id>' or 'wallet:<wallet id>'
    window_second   bigint NOT NULL,        -- unix second, by the database clock
    granted         integer NOT NULL CHECK (granted >= 0)
);
