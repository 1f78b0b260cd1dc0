-- Refunds: each leg of a payment returned in proportion, never beyond it.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- leg_total × refunded / amount, rounded half-up (exact: NUMERIC cannot overflow here).
CREATE OR REPLACE FUNCTION refund_share(p_leg_total bigint, p_refunded bigint, p_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT round(p_leg_total::numeric * p_refunded / p_amount)::bigint;  -- round(): half away from zero
$$;

-- Refunds at the payment's rate: every leg, FX positions included, returned cumulatively.
CREATE OR REPLACE FUNCTION refund_order(
    p_merchant_id text, p_order_id text, p_refund_id text, p_reference text, p_request_sha256 bytea,
    p_amount_minor bigint, p_reason text, p_refunds_max integer, p_shard_seed integer
) RETURNS refund_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_order orders%ROWTYPE;
    v_payment payments%ROWTYPE;
    v_stored refunds%ROWTYPE;
    v_count integer;
    v_before bigint;
    v_after bigint;
    v_customer bigint;
    v_due bigint;
    v_fee bigint;
    v_accounts text[];
    v_gross bigint;
    v_points bigint;
    v_earned bigint;
    v_points_account text;
    v_amounts bigint[];
    v_ltx bigint;
    v_status text;
BEGIN
    SELECT * INTO v_order FROM orders WHERE id = p_order_id AND merchant_id = p_merchant_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no such order', NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
    END IF;
    SELECT * INTO v_stored FROM refunds WHERE order_id = p_order_id AND refund_reference = p_reference;
    IF FOUND THEN
        IF v_stored.request_sha256 <> p_request_sha256 THEN
            RETURN ROW('idempotency_conflict', 409, 'refund_reference ' || p_reference || ' was used for a different refund',
                       NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
        END IF;
        RETURN ROW(v_stored.outcome, v_stored.http_status, v_stored.outcome_message, v_stored.id, v_stored.amount_minor,
                   v_order.currency, v_stored.order_status_after, v_stored.reason, v_stored.created_at)::refund_outcome;
    END IF;

    SELECT count(*), coalesce(sum(amount_minor), 0) INTO v_count, v_before
    FROM refunds WHERE order_id = p_order_id AND outcome = 'succeeded';
    v_after := v_before + p_amount_minor;
    IF v_order.status NOT IN ('paid', 'partially_refunded', 'refunded') THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            'order_not_refundable', 409, 'order ' || p_order_id || ' was never paid');
    ELSIF v_after > v_order.amount_minor THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            'refund_exceeds_payment', 422, 'at most ' || (v_order.amount_minor - v_before) || ' minor units remain refundable');
    ELSIF v_count >= p_refunds_max THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            'too_many_refunds', 422, 'an order takes at most ' || p_refunds_max || ' refunds');
    END IF;

    SELECT * INTO v_payment FROM payments WHERE order_id = p_order_id;
    -- Each leg returned cumulatively: after this refund, leg L has returned
    -- round_half_up(L_total × refunded / amount), so the last refund returns the rest.
    -- The merchant gives back its share of what it was credited (the amount less a
    -- discount it funded) less the fee's share; the customer gets their share of what
    -- they were charged (in that currency, at the payment's rate); the promotions account
    -- takes back the difference in the order's currency (a platform discount, points).
    v_gross := refund_share(v_payment.amount_minor - CASE WHEN v_payment.discount_funded_by = 'merchant' THEN v_payment.discount_minor ELSE 0 END, v_after, v_order.amount_minor)
             - refund_share(v_payment.amount_minor - CASE WHEN v_payment.discount_funded_by = 'merchant' THEN v_payment.discount_minor ELSE 0 END, v_before, v_order.amount_minor);
    v_customer := refund_share(v_payment.charged_minor, v_after, v_order.amount_minor)
                - refund_share(v_payment.charged_minor, v_before, v_order.amount_minor);
    v_due := refund_share(v_payment.amount_minor - v_payment.discount_minor - v_payment.points_value_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.amount_minor - v_payment.discount_minor - v_payment.points_value_minor, v_before, v_order.amount_minor);
    v_fee := refund_share(v_payment.fee_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.fee_minor, v_before, v_order.amount_minor);
    v_points := refund_share(v_payment.points_used, v_after, v_order.amount_minor)
              - refund_share(v_payment.points_used, v_before, v_order.amount_minor);
    v_earned := refund_share(v_payment.points_earned, v_after, v_order.amount_minor)
              - refund_share(v_payment.points_earned, v_before, v_order.amount_minor);
    -- The one lock order: the customer's points, then their money.
    IF v_points > 0 OR v_earned > 0 THEN
        v_points_account := points_account(v_payment.wallet_id, v_payment.customer_account_id, true);
    END IF;
    PERFORM 1 FROM account_balances WHERE account_id = v_payment.customer_account_id FOR UPDATE;
    v_accounts := ARRAY[(SELECT account_id FROM merchants WHERE id = p_merchant_id), platform_account_id('fee', v_order.currency)];
    v_amounts := ARRAY[-(v_gross - v_fee), -v_fee];
    IF v_payment.charged_currency <> v_order.currency THEN
        v_accounts := v_accounts || platform_account('fx_position', v_payment.charged_currency)
                                 || platform_account('fx_position', v_order.currency);
        v_amounts := v_amounts || -v_customer || v_due;
    END IF;
    IF v_gross <> v_due THEN
        v_accounts := v_accounts || platform_account('promotions', v_order.currency);
        v_amounts := v_amounts || (v_gross - v_due);
    END IF;
    IF v_points <> 0 THEN
        v_accounts := v_accounts || v_points_account || platform_account('points_liability', 'PTS');
        v_amounts := v_amounts || v_points || -v_points;
    END IF;
    v_ltx := ledger_post('refund', p_refund_id, v_accounts || v_payment.customer_account_id, v_amounts || v_customer,
                         ARRAY[0]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            'merchant_insufficient_funds', 422, 'the merchant''s balance is below what this refund takes from it');
    END IF;
    -- Earned points go back in proportion, but never below zero: what was already spent
    -- stays spent, a loss the points liability carries.
    v_earned := least(v_earned, (SELECT balance_minor FROM account_balances WHERE account_id = v_points_account));
    IF v_earned > 0 THEN
        PERFORM ledger_post('points', 'clawback:' || p_refund_id,
            ARRAY[v_points_account, platform_account('points_liability', 'PTS')],
            ARRAY[-v_earned, v_earned], ARRAY[]::bigint[], p_shard_seed);
    END IF;
    v_status := CASE WHEN v_after = v_order.amount_minor THEN 'refunded' ELSE 'partially_refunded' END;
    UPDATE orders SET status = v_status, updated_at = now() WHERE id = p_order_id;
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, amount_minor, reason,
                         customer_returned_minor, fee_returned_minor, merchant_debited_minor, order_status_after,
                         ledger_transaction_id)
    VALUES (p_refund_id, p_order_id, p_reference, p_request_sha256, 201, 'succeeded', p_amount_minor, p_reason,
            v_customer, v_fee, v_gross - v_fee, v_status, v_ltx)
    RETURNING * INTO v_stored;
    RETURN ROW('succeeded', 201, NULL, p_refund_id, p_amount_minor, v_order.currency, v_status, p_reason,
               v_stored.created_at)::refund_outcome;
END $$;

-- Stores a definitive refusal under its refund_reference (the stored-answer rule).
CREATE OR REPLACE FUNCTION refund_fail(
    p_order orders, p_refund_id text, p_reference text, p_request_sha256 bytea, p_amount_minor bigint,
    p_reason text, p_code text, p_http_status integer, p_message text
) RETURNS refund_outcome LANGUAGE sql AS $$
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, outcome_message,
                         amount_minor, reason, order_status_after)
    VALUES (p_refund_id, p_order.id, p_reference, p_request_sha256, p_http_status, p_code, p_message,
            p_amount_minor, p_reason, p_order.status);
    SELECT ROW(p_code, p_http_status, p_message, NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
$$;
