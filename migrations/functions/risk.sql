-- The risk engine: limits on money leaving a customer account (payments and transfers
-- out) and strong customer authentication. Every check and update of one account's
-- counters holds that account's risk_counters row, so concurrent movements of one
-- account are judged one after the other and a limit holds exactly. Lock order: the
-- row is taken after the order (and its campaign) and before any balance.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- An amount as the wire writes it: 1234 JPY → '1234', 1234 USD → '12.34'.
CREATE OR REPLACE FUNCTION money_text(p_minor bigint, p_currency text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT round(p_minor::numeric / 10::numeric ^ c.minor_units, c.minor_units)::text || ' ' || p_currency
    FROM currencies c WHERE c.code = p_currency;
$$;

-- Judges a movement of p_amount_minor (in the account's currency) out of a customer
-- account: the currency's limits first (limit_exceeded), then velocity (risk_declined),
-- then SCA (authentication_required) unless the wallet asserted MFA. A NULL code: go
-- ahead, and call risk_record in the same transaction once the money has moved.
CREATE OR REPLACE FUNCTION risk_check(
    p_wallet_id text, p_account_id text, p_currency text, p_amount_minor bigint, p_mfa boolean,
    OUT code text, OUT rule text, OUT message text, OUT recent_kept integer
) LANGUAGE plpgsql AS $$
DECLARE
    v_today date := (now() AT TIME ZONE 'UTC')::date;
    v_counters risk_counters%ROWTYPE;
    v_limits risk_limits%ROWTYPE;
    v_sca wallet_sca_settings%ROWTYPE;
    v_spent bigint := 0;
    v_movements integer := 0;
BEGIN
    SELECT * INTO v_counters FROM risk_counters WHERE account_id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO risk_counters (account_id, day) VALUES (p_account_id, v_today) ON CONFLICT DO NOTHING;
        SELECT * INTO v_counters FROM risk_counters WHERE account_id = p_account_id FOR UPDATE;
    END IF;
    IF v_counters.day = v_today THEN
        v_spent := v_counters.spent_minor;
        v_movements := v_counters.movements;
    END IF;
    SELECT * INTO v_limits FROM risk_limits WHERE currency = p_currency;
    -- The velocity rule needs the times of the last per_minute_count_max movements only.
    recent_kept := coalesce(v_limits.per_minute_count_max, 0);
    -- A NULL limit compares as NULL, which IF takes as false: no such limit.
    IF p_amount_minor > v_limits.transaction_max_minor THEN
        code := 'limit_exceeded';
        rule := 'transaction_max';
        message := 'above the per-transaction maximum of ' || money_text(v_limits.transaction_max_minor, p_currency);
    ELSIF v_spent + p_amount_minor > v_limits.daily_amount_max_minor THEN
        code := 'limit_exceeded';
        rule := 'daily_amount';
        message := 'today''s payments and transfers would pass the daily limit of '
                   || money_text(v_limits.daily_amount_max_minor, p_currency)
                   || ' (' || money_text(v_spent, p_currency) || ' so far)';
    ELSIF v_movements >= v_limits.daily_count_max THEN
        code := 'limit_exceeded';
        rule := 'daily_count';
        message := 'the account has made its ' || v_limits.daily_count_max || ' payments and transfers for today';
    ELSIF (SELECT count(*) FROM unnest(v_counters.recent_at) t WHERE t > now() - interval '60 seconds')
          >= v_limits.per_minute_count_max THEN
        code := 'risk_declined';
        rule := 'velocity';
        message := 'more than ' || v_limits.per_minute_count_max || ' payments and transfers in a minute';
    ELSIF NOT p_mfa THEN
        SELECT * INTO v_sca FROM wallet_sca_settings WHERE wallet_id = p_wallet_id AND currency = p_currency;
        IF p_amount_minor > v_sca.threshold_minor THEN
            code := 'authentication_required';
            rule := 'sca_threshold';
            message := 'above ' || money_text(v_sca.threshold_minor, p_currency)
                       || ' the customer must be authenticated with MFA (customer_authentication "mfa")';
        ELSIF v_counters.since_mfa_minor + p_amount_minor > v_sca.allowance_minor THEN
            code := 'authentication_required';
            rule := 'sca_allowance';
            message := 'more than ' || money_text(v_sca.allowance_minor, p_currency)
                       || ' would have moved since the customer last authenticated with MFA (customer_authentication "mfa")';
        ELSIF v_spent + p_amount_minor > v_limits.mfa_daily_amount_above_minor THEN
            code := 'authentication_required';
            rule := 'mfa_daily_amount';
            message := 'past ' || money_text(v_limits.mfa_daily_amount_above_minor, p_currency)
                       || ' a day the customer must be authenticated with MFA (customer_authentication "mfa")';
        END IF;
    END IF;
END $$;

-- Counts a movement that risk_check allowed and that moved money: today's amount and
-- count, the last minute's times (as many as risk_check said the velocity rule needs),
-- and what moved without MFA since the last MFA.
CREATE OR REPLACE FUNCTION risk_record(p_account_id text, p_amount_minor bigint, p_mfa boolean, p_recent_kept integer)
RETURNS void LANGUAGE sql AS $$
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
$$;
