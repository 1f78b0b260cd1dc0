-- Balances at an instant, through the xid clock (migration 0032 explains the clock).
--
-- Assumes what the gateway guarantees: the database's clock does not step back, and
-- every transaction that posts connects as the gateway's role (pg_stat_activity shows
-- a role's own transactions, so the clock sees every writer).
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- One tick, unless one was taken in the last p_every_seconds (every replica's sweeper
-- calls this; a race makes two ticks, both true). The activity is read first and the
-- next xid after, in a later statement with a later snapshot, so a transaction seen
-- finished already had its xid below it. Client backends only: autovacuum and
-- replication never post. A second's margin covers a transaction that has started but
-- not yet published its start.
CREATE OR REPLACE FUNCTION xid_clock_tick(p_every_seconds integer) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_settled_before timestamptz;
    v_next_xid xid8;
BEGIN
    -- The latest tick by the index's end: every replica asks this every second of a
    -- table that grows a row a minute (EXISTS … WHERE at > clock_timestamp() - …
    -- scanned it from the oldest row: a volatile call bounds no index, and a generic
    -- plan guesses a third of the rows match).
    IF (SELECT max(at) FROM xid_clock) > clock_timestamp() - make_interval(secs => p_every_seconds) THEN
        RETURN false;
    END IF;
    SELECT least(min(xact_start), clock_timestamp() - interval '1 second') INTO v_settled_before
    FROM pg_stat_activity
    WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid();
    v_next_xid := pg_snapshot_xmax(pg_current_snapshot());
    INSERT INTO xid_clock (at, next_xid, settled_before) VALUES (clock_timestamp(), v_next_xid, v_settled_before)
    ON CONFLICT DO NOTHING;
    RETURN true;
END $$;

-- Every transaction created at or after p_at has an xid at or above this.
CREATE OR REPLACE FUNCTION xid_clock_low(p_at timestamptz) RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT next_xid FROM xid_clock WHERE at <= p_at ORDER BY at DESC LIMIT 1), '0'::xid8);
$$;

-- Every transaction created before p_at has an xid below this and has finished; NULL
-- while p_at is not settled (a transaction that started before it may still be open).
CREATE OR REPLACE FUNCTION xid_clock_high(p_at timestamptz) RETURNS xid8 LANGUAGE sql STABLE AS $$
    SELECT next_xid FROM xid_clock WHERE at >= p_at AND settled_before >= p_at ORDER BY at LIMIT 1;
$$;

-- The sum of an account's postings created in [p_from, p_to), as this snapshot sees
-- them, reading only the part of the account's index the clock says may hold them.
-- Inside it, from the first xid certainly created at or after p_from to the first
-- that may be created at or after p_to, no line's time need be read; only the two
-- edges (about a tick and the longest open transaction each) are checked line by line.
CREATE OR REPLACE FUNCTION account_net_between(p_account text, p_from timestamptz, p_to timestamptz)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_low xid8 := xid_clock_low(p_from);
    v_high xid8 := coalesce(xid_clock_high(p_to), pg_snapshot_xmax(pg_current_snapshot()));
    v_inner_low xid8 := CASE WHEN p_from = '-infinity' THEN v_low ELSE coalesce(xid_clock_high(p_from), v_high) END;
    v_inner_high xid8 := greatest(xid_clock_low(p_to), v_inner_low);
BEGIN
    RETURN (SELECT coalesce(sum(p.amount_minor), 0)
            FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
            WHERE p.account_id = p_account AND p.xid >= v_low AND p.xid < v_inner_low
              AND t.created_at >= p_from AND t.created_at < p_to)
         + (SELECT coalesce(sum(p.amount_minor), 0) FROM postings p
            WHERE p.account_id = p_account AND p.xid >= v_inner_low AND p.xid < v_inner_high)
         + (SELECT coalesce(sum(p.amount_minor), 0)
            FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
            WHERE p.account_id = p_account AND p.xid >= v_inner_high AND p.xid < v_high
              AND t.created_at >= p_from AND t.created_at < p_to);
END $$;

-- An account's balance at p_at (the sum of its postings created before it, as this
-- snapshot sees them): the latest stored balance at or before p_at plus what was posted
-- between. Stored once p_at is settled, when no posting can still land before it, and
-- only while the account existed (a report of 1970 is zero; storing it, and every day
-- since, would only grow the table). The settlement is judged before the sum: a tick
-- seen settled means every line created before p_at had committed when it was taken,
-- so the sum, in this snapshot or a later one, has them all.
CREATE OR REPLACE FUNCTION account_balance_at(p_account text, p_at timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_known account_balances_at;
    v_settled boolean := xid_clock_high(p_at) IS NOT NULL
                         AND p_at > (SELECT created_at FROM accounts WHERE id = p_account);
    v_balance bigint;
BEGIN
    SELECT * INTO v_known FROM account_balances_at
    WHERE account_id = p_account AND at <= p_at ORDER BY at DESC LIMIT 1;
    IF v_known.at = p_at THEN
        RETURN v_known.balance_minor;
    END IF;
    v_balance := coalesce(v_known.balance_minor, 0)
                 + account_net_between(p_account, coalesce(v_known.at, '-infinity'), p_at);
    IF v_settled THEN
        BEGIN
            INSERT INTO account_balances_at (account_id, at, balance_minor) VALUES (p_account, p_at, v_balance)
            ON CONFLICT DO NOTHING;
        EXCEPTION WHEN serialization_failure THEN
            NULL;  -- a concurrent report stored the same balance after this snapshot began
        END;
    END IF;
    RETURN v_balance;
END $$;

-- The sum of an account's postings before (p_xid, p_id) in statement order, as this
-- snapshot sees them: the balance at the last tick whose next xid is at or below p_xid
-- (every line with a lower xid was created before that tick), less the lines created
-- before the tick with an xid from its next on, plus the lines from that xid up to the
-- posting: about a minute of the account's lines, once the balance at the tick is
-- stored. Lines from before the clock's first tick are summed from the start. Call it
-- in one snapshot (repeatable read): its parts must see the same lines.
CREATE OR REPLACE FUNCTION account_balance_below(p_account text, p_xid xid8, p_id bigint)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_tick xid_clock;
BEGIN
    SELECT * INTO v_tick FROM xid_clock WHERE next_xid <= p_xid ORDER BY next_xid DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN (SELECT coalesce(sum(amount_minor), 0) FROM postings
                WHERE account_id = p_account AND (xid, id) < (p_xid, p_id));
    END IF;
    RETURN account_balance_at(p_account, v_tick.at)
        - (SELECT coalesce(sum(p.amount_minor), 0)
           FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
           WHERE p.account_id = p_account AND p.xid >= v_tick.next_xid
             AND p.xid < coalesce(xid_clock_high(v_tick.at), pg_snapshot_xmax(pg_current_snapshot()))
             AND t.created_at < v_tick.at)
        + (SELECT coalesce(sum(amount_minor), 0) FROM postings
           WHERE account_id = p_account AND (xid, id) >= (v_tick.next_xid, 0) AND (xid, id) < (p_xid, p_id));
END $$;

-- Once a UTC day's start is settled, stores each merchant's balance at it (those whose
-- account existed then, with lines since their last stored balance), p_batch merchants a call, resuming where the
-- last call stopped (balance_days); a replica already at it is skipped, not waited for.
-- A report or a statement then reads at most about a day of a shop's lines, even the
-- first time. Returns the balances stored.
CREATE OR REPLACE FUNCTION store_daily_balances(p_batch integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_day timestamptz := date_trunc('day', clock_timestamp(), 'UTC');
    v_pass balance_days;
    v_merchant record;
    v_seen integer := 0;
    v_stored integer := 0;
BEGIN
    IF xid_clock_high(v_day) IS NULL
       OR EXISTS (SELECT 1 FROM balance_days WHERE day = v_day AND done_at IS NOT NULL) THEN
        RETURN 0;  -- not yet, or done for today: every other round of the day reads only
    END IF;
    INSERT INTO balance_days (day) VALUES (v_day) ON CONFLICT DO NOTHING;
    SELECT * INTO v_pass FROM balance_days WHERE day = v_day AND done_at IS NULL FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    FOR v_merchant IN SELECT m.id, m.account_id, a.created_at FROM merchants m JOIN accounts a ON a.id = m.account_id
                      WHERE m.id > v_pass.after_merchant_id ORDER BY m.id LIMIT p_batch
    LOOP
        v_seen := v_seen + 1;
        v_pass.after_merchant_id := v_merchant.id;
        CONTINUE WHEN v_merchant.created_at >= v_day OR NOT EXISTS (
            SELECT 1 FROM postings p
            WHERE p.account_id = v_merchant.account_id
              AND p.xid >= xid_clock_low(coalesce((SELECT max(b.at) FROM account_balances_at b
                                                   WHERE b.account_id = v_merchant.account_id AND b.at < v_day),
                                                  '-infinity')));
        PERFORM account_balance_at(v_merchant.account_id, v_day);
        v_stored := v_stored + 1;
    END LOOP;
    UPDATE balance_days SET after_merchant_id = v_pass.after_merchant_id,
                            done_at = CASE WHEN v_seen < p_batch THEN clock_timestamp() END
    WHERE day = v_day;
    RETURN v_stored;
END $$;

-- What reports read instead of the whole ledger, checked against it: every stored
-- balance is the sum of the postings created before its instant, and every tick holds
-- for every ledger transaction. Beside the ledger's invariants after every integration
-- test; each row a violation (a whole-ledger scan per stored balance and per tick, so
-- not part of the operator's check).
CREATE OR REPLACE FUNCTION balances_at_violations() RETURNS TABLE (invariant integer, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 7, 'account ' || b.account_id || ' stored ' || b.balance_minor || ' at ' || b.at || ' <> postings ' || s.total
    FROM account_balances_at b,
    LATERAL (SELECT coalesce(sum(p.amount_minor), 0) AS total
             FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
             WHERE p.account_id = b.account_id AND t.created_at < b.at) s
    WHERE b.balance_minor <> s.total
    UNION ALL
    SELECT 7, 'tick at ' || c.at || ' (next xid ' || c.next_xid || ', settled before ' || c.settled_before
              || ') does not hold for transaction ' || t.id || ' (xid ' || t.xid || ', created ' || t.created_at || ')'
    FROM xid_clock c JOIN ledger_transactions t
      ON (t.created_at >= c.at AND t.xid < c.next_xid) OR (t.created_at < c.settled_before AND t.xid >= c.next_xid);
$$;
