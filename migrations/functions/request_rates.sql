-- Request rates shared by every replica: leases of a subject's per-second allowance.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Leases up to p_chunk requests of the subject's current one-second window, never
-- more than p_limit in all across replicas. The window is read from the database clock
-- after the row lock, so a caller that waited cannot reopen a window that has passed.
CREATE OR REPLACE FUNCTION request_rate_lease(
    p_subject text, p_chunk integer, p_limit integer,
    OUT leased integer, OUT window_left_ms integer
) LANGUAGE plpgsql AS $$
DECLARE
    v_row request_rate_windows%ROWTYPE;
    v_now numeric;
    v_window bigint;
BEGIN
    INSERT INTO request_rate_windows (subject, window_second, granted) VALUES (p_subject, 0, 0)
    ON CONFLICT DO NOTHING;
    SELECT * INTO v_row FROM request_rate_windows WHERE subject = p_subject FOR UPDATE;
    v_now := extract(epoch FROM clock_timestamp());
    v_window := floor(v_now);
    IF v_row.window_second <> v_window THEN
        v_row.granted := 0;
    END IF;
    leased := greatest(0, least(p_chunk, p_limit - v_row.granted));
    UPDATE request_rate_windows SET window_second = v_window, granted = v_row.granted + leased
    WHERE subject = p_subject;
    window_left_ms := greatest(1, ceil((v_window + 1 - v_now) * 1000))::integer;
END $$;
