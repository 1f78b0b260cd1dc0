-- Request rates shared by every replica: leases of a subject's per-second allowance.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Leases up to p_asked requests of the subject's current one-second window, never more
-- than p_limit in all across replicas, and never more than half of what is left (at
-- least one): a replica that leases and does not spend strands at most half of the
-- rest, so the others keep being admitted until the window is really used up. The
-- window is read from the database clock after the row lock, so a caller that waited
-- cannot reopen a window that has passed. `unleased` is what is left in the window
-- after this lease: 0 means every replica should refuse until the window ends.
CREATE OR REPLACE FUNCTION request_rate_lease(
    p_subject text, p_asked integer, p_limit integer,
    OUT leased integer, OUT unleased integer, OUT window_left_ms integer
) LANGUAGE plpgsql AS $$
DECLARE
    v_row request_rate_windows%ROWTYPE;
    v_now numeric;
    v_window bigint;
    v_left integer;
BEGIN
    INSERT INTO request_rate_windows (subject, window_second, granted) VALUES (p_subject, 0, 0)
    ON CONFLICT DO NOTHING;
    SELECT * INTO v_row FROM request_rate_windows WHERE subject = p_subject FOR UPDATE;
    v_now := extract(epoch FROM clock_timestamp());
    v_window := floor(v_now);
    IF v_row.window_second <> v_window THEN
        v_row.granted := 0;
    END IF;
    v_left := greatest(0, p_limit - v_row.granted);
    leased := least(greatest(p_asked, 1), v_left, greatest(1, (v_left + 1) / 2));
    unleased := v_left - leased;
    UPDATE request_rate_windows SET window_second = v_window, granted = v_row.granted + leased
    WHERE subject = p_subject;
    window_left_ms := greatest(1, ceil((v_window + 1 - v_now) * 1000))::integer;
END $$;
