-- The risk engine: limits on money leaving a customer account (payments and transfers
-- out) and strong customer authentication. Every check and update of one account's
-- counters holds that account's risk_counters row, so concurrent movements of one
-- account are judged one after the other and a limit holds exactly. Lock order: the
-- row is taken after the order (and its campaign) and before any balance.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- An amount as the wire writes it: 1234 JPY → '1234', 1234 USD → '12.34'.
CREATE OR REPLACE FUNCTION money_text(p_minor bigint, p_currency text) RETURNS text LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT round(p_minor::numeric / 10::numeric ^ c.minor_units, c.minor_units)::text || ' ' || p_currency
            FROM currencies c WHERE c.code = p_currency);
END $$;

-- Judges a movement of p_amount_minor (in the account's currency) out of a customer
-- account: the currency's limits first (limit_exceeded), then velocity (risk_declined),
-- then SCA (authentication_required) unless the wallet asserted MFA. A NULL code: go
-- ahead, and call risk_record in the same transaction once the money has moved.
CREATE OR REPLACE FUNCTION risk_check(
    p_wallet_id text, p_account_id text, p_currency text, p_amount_minor bigint, p_mfa boolean,
    OUT code text, OUT rule text, OUT message text, OUT recent_kept integer
) LANGUAGE plpgsql AS $$
DECLARE
    r risk_view;
    v_refused refusal;
BEGIN
    -- One statement: the account's counters (locked; made on first use), the currency's
    -- limits and the wallet's SCA settings.
    FOR attempt IN 1 .. 2 LOOP
        SELECT CASE WHEN c.day = (now() AT TIME ZONE 'UTC')::date THEN c.spent_minor ELSE 0 END,
               CASE WHEN c.day = (now() AT TIME ZONE 'UTC')::date THEN c.movements ELSE 0 END,
               (SELECT count(*) FROM unnest(c.recent_at) t WHERE t > now() - interval '60 seconds'),
               c.since_mfa_minor, l.transaction_max_minor, l.daily_amount_max_minor, l.daily_count_max,
               l.per_minute_count_max, l.mfa_daily_amount_above_minor, s.threshold_minor, s.allowance_minor
        INTO r
        FROM risk_counters c
        LEFT JOIN risk_limits l ON l.currency = p_currency
        LEFT JOIN wallet_sca_settings s ON s.wallet_id = p_wallet_id AND s.currency = p_currency
        WHERE c.account_id = p_account_id FOR UPDATE OF c;
        EXIT WHEN FOUND;
        INSERT INTO risk_counters (account_id, day) VALUES (p_account_id, (now() AT TIME ZONE 'UTC')::date)
        ON CONFLICT DO NOTHING;
    END LOOP;
    -- The velocity rule needs the times of the last per_minute_count_max movements only.
    recent_kept := coalesce(r.per_minute_count_max, 0);
    v_refused := risk_limit_refusal(r, p_currency, p_amount_minor);
    IF v_refused.code IS NULL AND NOT p_mfa THEN
        v_refused := risk_sca_refusal(r, p_currency, p_amount_minor);
    END IF;
    code := v_refused.code;
    rule := v_refused.rule;
    message := v_refused.message;
END $$;

-- The currency's limits and velocity against one account's counters. (A NULL limit
-- compares as NULL, which IF takes as false: no such limit.)
CREATE OR REPLACE FUNCTION risk_limit_refusal(r risk_view, p_currency text, p_amount_minor bigint)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_amount_minor > r.transaction_max_minor THEN
        RETURN ROW('limit_exceeded', 422, 'above the per-transaction maximum of '
                   || money_text(r.transaction_max_minor, p_currency), 'transaction_max')::refusal;
    ELSIF r.spent_today_minor + p_amount_minor > r.daily_amount_max_minor THEN
        RETURN ROW('limit_exceeded', 422, 'today''s payments and transfers would pass the daily limit of '
                   || money_text(r.daily_amount_max_minor, p_currency)
                   || ' (' || money_text(r.spent_today_minor, p_currency) || ' so far)', 'daily_amount')::refusal;
    ELSIF r.movements_today >= r.daily_count_max THEN
        RETURN ROW('limit_exceeded', 422, 'the account has made its ' || r.daily_count_max
                   || ' payments and transfers for today', 'daily_count')::refusal;
    ELSIF r.movements_last_minute >= r.per_minute_count_max THEN
        RETURN ROW('risk_declined', 422, 'more than ' || r.per_minute_count_max
                   || ' payments and transfers in a minute', 'velocity')::refusal;
    END IF;
    RETURN NULL;
END $$;

-- Strong customer authentication, for a movement without MFA: the wallet's threshold
-- and allowance, and the currency's daily amount past which MFA is needed.
CREATE OR REPLACE FUNCTION risk_sca_refusal(r risk_view, p_currency text, p_amount_minor bigint)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_how text := ' the customer must be authenticated with MFA (customer_authentication "mfa")';
BEGIN
    IF p_amount_minor > r.threshold_minor THEN
        RETURN ROW('authentication_required', 422,
                   'above ' || money_text(r.threshold_minor, p_currency) || v_how, 'sca_threshold')::refusal;
    ELSIF r.since_mfa_minor + p_amount_minor > r.allowance_minor THEN
        RETURN ROW('authentication_required', 422, 'more than ' || money_text(r.allowance_minor, p_currency)
                   || ' would have moved since the customer last authenticated with MFA (customer_authentication "mfa")',
                   'sca_allowance')::refusal;
    ELSIF r.spent_today_minor + p_amount_minor > r.mfa_daily_amount_above_minor THEN
        RETURN ROW('authentication_required', 422,
                   'past ' || money_text(r.mfa_daily_amount_above_minor, p_currency) || ' a day' || v_how,
                   'mfa_daily_amount')::refusal;
    END IF;
    RETURN NULL;
END $$;

-- Counts a movement that risk_check allowed and that moved money: today's amount and
-- count, the last minute's times (as many as risk_check said the velocity rule needs),
-- and what moved without MFA since the last MFA.
-- (PL/pgSQL, not SQL: it keeps its plan; a SQL function is parsed and planned per call.)
CREATE OR REPLACE FUNCTION risk_record(p_account_id text, p_amount_minor bigint, p_mfa boolean, p_recent_kept integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE risk_counters SET
        spent_minor = CASE WHEN day = (now() AT TIME ZONE 'UTC')::date THEN spent_minor ELSE 0 END + p_amount_minor,
        movements = CASE WHEN day = (now() AT TIME ZONE 'UTC')::date THEN movements ELSE 0 END + 1,
        day = (now() AT TIME ZONE 'UTC')::date,
        recent_at = CASE WHEN p_recent_kept > 0 THEN
                        (SELECT coalesce(array_agg(t ORDER BY t), '{}') FROM (
                             SELECT t FROM unnest(recent_at) t WHERE t > now() - interval '60 seconds'
                             ORDER BY t DESC LIMIT p_recent_kept - 1) last) || now()
                    ELSE '{}' END,
        since_mfa_minor = CASE WHEN p_mfa THEN 0 ELSE since_mfa_minor + p_amount_minor END
    WHERE account_id = p_account_id;
END $$;
