-- Refunds: each leg of a payment returned in proportion, never beyond it.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- leg_total × refunded / amount, rounded half-up (exact: NUMERIC cannot overflow here).
CREATE OR REPLACE FUNCTION refund_share(p_leg_total bigint, p_refunded bigint, p_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT round(p_leg_total::numeric * p_refunded / p_amount)::bigint;  -- round(): half away from zero
$$;

-- Refunds at the payment's rate: every leg, FX positions included, returned
-- cumulatively. Steps: the order locked, a stored answer for a repeated reference, the
-- refusals, the shares of each leg, the legs, the booking, the record.
CREATE OR REPLACE FUNCTION refund_order(
    p_merchant_id text, p_order_id text, p_refund_id text, p_reference text, p_request_sha256 bytea,
    p_amount_minor bigint, p_reason text, p_refunds_max integer, p_shard_seed integer, p_key_id text
) RETURNS refund_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_order orders%ROWTYPE;
    v_payment payments%ROWTYPE;
    v_stored refunds%ROWTYPE;
    v_count integer;
    v_before bigint;
    v_shares refund_shares;
    v_points_account text;
    v_legs ledger_legs;
    v_status text;
    v_refused refusal;
BEGIN
    SELECT * INTO v_order FROM orders WHERE id = p_order_id AND merchant_id = p_merchant_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no such order', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
    END IF;
    SELECT * INTO v_stored FROM refunds WHERE order_id = p_order_id AND refund_reference = p_reference;
    IF FOUND THEN
        RETURN refund_stored_answer(v_stored, v_order, p_request_sha256);
    END IF;
    SELECT count(*), coalesce(sum(amount_minor), 0) INTO v_count, v_before
    FROM refunds WHERE order_id = p_order_id AND outcome = 'succeeded';
    v_refused := refund_refusal(v_order, v_before, v_count, p_amount_minor, p_refunds_max);
    IF v_refused.code IS NOT NULL THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
                           ROW(v_refused.code, v_refused.http_status, v_refused.message, NULL)::refusal, p_key_id);
    END IF;
    SELECT * INTO v_payment FROM payments WHERE order_id = p_order_id;
    v_shares := refund_shares(v_payment, v_before, v_before + p_amount_minor);
    -- The one lock order: the customer's points, then their money.
    IF v_shares.points > 0 OR v_shares.earned > 0 THEN
        v_points_account := points_account(v_payment.wallet_id, v_payment.customer_account_id, true);
    END IF;
    PERFORM 1 FROM account_balances WHERE account_id = v_payment.customer_account_id FOR UPDATE;
    v_legs := refund_legs(v_order, v_payment, v_shares, v_points_account);
    v_legs.ledger_transaction_id := ledger_post('refund', p_refund_id, v_legs.accounts, v_legs.amounts,
                                                ARRAY[0]::bigint[], p_shard_seed);
    IF v_legs.ledger_transaction_id IS NULL THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            ROW('merchant_insufficient_funds', 422, 'the merchant''s balance is below what this refund takes from it',
                NULL)::refusal, p_key_id);
    END IF;
    PERFORM refund_points_clawback(p_refund_id, v_points_account, v_shares.earned, p_shard_seed);
    v_status := CASE WHEN v_before + p_amount_minor = v_order.amount_minor THEN 'refunded' ELSE 'partially_refunded' END;
    UPDATE orders SET status = v_status, refunded_minor = v_before + p_amount_minor, updated_at = now() WHERE id = p_order_id;
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, amount_minor, reason,
                         customer_returned_minor, fee_returned_minor, merchant_debited_minor, order_status_after,
                         ledger_transaction_id, created_by_key_id, tip_returned_minor, convenience_fee_returned_minor)
    VALUES (p_refund_id, p_order_id, p_reference, p_request_sha256, 201, 'succeeded', p_amount_minor, p_reason,
            v_shares.customer_minor, v_shares.fee_minor,
            v_shares.gross_minor - v_shares.fee_minor + v_shares.tip + v_shares.convenience_fee, v_status,
            v_legs.ledger_transaction_id, p_key_id, v_shares.tip, v_shares.convenience_fee)
    RETURNING * INTO v_stored;
    RETURN ROW('succeeded', 201, NULL, p_refund_id, p_amount_minor, v_order.currency, v_status, p_reason,
               v_stored.created_at, v_shares.tip, v_shares.convenience_fee)::refund_outcome;
END $$;

-- Why this refund cannot be made, or NULL: the order was never paid, the refund would
-- return more than was paid, or the order has had as many refunds as it may.
CREATE OR REPLACE FUNCTION refund_refusal(p_order orders, p_refunded_minor bigint, p_refunds integer,
                                          p_amount_minor bigint, p_refunds_max integer)
RETURNS refusal LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN p_order.status NOT IN ('paid', 'partially_refunded', 'refunded') THEN
            ROW('order_not_refundable', 409, 'order ' || p_order.id || ' was never paid', NULL)::refusal
        WHEN p_refunded_minor + p_amount_minor > p_order.amount_minor THEN
            ROW('refund_exceeds_payment', 422, 'at most ' || (p_order.amount_minor - p_refunded_minor)
                || ' minor units remain refundable', NULL)::refusal
        WHEN p_refunds >= p_refunds_max THEN
            ROW('too_many_refunds', 422, 'an order takes at most ' || p_refunds_max || ' refunds', NULL)::refusal
    END;
$$;

-- The answer stored under a refund_reference, or idempotency_conflict when the same
-- reference comes with another request.
CREATE OR REPLACE FUNCTION refund_stored_answer(p_stored refunds, p_order orders, p_request_sha256 bytea)
RETURNS refund_outcome LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_stored.request_sha256 <> p_request_sha256 THEN
        ROW('idempotency_conflict', 409, 'refund_reference ' || p_stored.refund_reference
            || ' was used for a different refund', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome
    ELSE ROW(p_stored.outcome, p_stored.http_status, p_stored.outcome_message, p_stored.id, p_stored.amount_minor,
             p_order.currency, p_stored.order_status_after, p_stored.reason, p_stored.created_at,
             p_stored.tip_returned_minor, p_stored.convenience_fee_returned_minor)::refund_outcome
    END;
$$;

-- What a refund taking the order's refunded total from p_before to p_after returns of
-- each leg of the payment. Each leg is returned cumulatively: after it, leg L has
-- returned round_half_up(L_total × refunded / amount), so the last refund returns the
-- rest. The merchant gives back its share of what it was credited (the amount less a
-- discount or voucher it funded), of the tip and of the convenience fee; the customer gets their
-- share of what they were charged (in that currency, at the payment's rate; in the
-- order's, exactly the shares of what was due, the tip and the fee); due is that sum in
-- the order's currency (what was due after all discounts and points, tip and fee).
CREATE OR REPLACE FUNCTION refund_shares(p_payment payments, p_before bigint, p_after bigint)
RETURNS refund_shares LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    a bigint := p_payment.amount_minor;
    v_credited bigint := a - CASE WHEN p_payment.discount_funded_by = 'merchant' THEN p_payment.discount_minor ELSE 0 END
                           - CASE WHEN p_payment.voucher_funded_by = 'merchant' THEN p_payment.voucher_minor ELSE 0 END;
    v_goods_due bigint := a - p_payment.discount_minor - p_payment.voucher_minor - p_payment.points_value_minor;
    v refund_shares;
BEGIN
    v.gross_minor := refund_leg(v_credited, p_before, p_after, a);
    v.tip := refund_leg(p_payment.tip_minor, p_before, p_after, a);
    v.convenience_fee := refund_leg(p_payment.convenience_fee_minor, p_before, p_after, a);
    v.due_minor := refund_leg(v_goods_due, p_before, p_after, a) + v.tip + v.convenience_fee;
    v.customer_minor := CASE WHEN p_payment.charged_currency = p_payment.currency THEN v.due_minor
                             ELSE refund_leg(p_payment.charged_minor, p_before, p_after, a) END;
    v.fee_minor := refund_leg(p_payment.fee_minor, p_before, p_after, a);
    v.points := refund_leg(p_payment.points_used, p_before, p_after, a);
    v.earned := refund_leg(p_payment.points_earned, p_before, p_after, a);
    RETURN v;
END $$;

-- What a refund taking the refunded total from p_before to p_after returns of a leg of
-- p_total on a payment of p_amount (cumulative shares: the last refund takes the rest).
CREATE OR REPLACE FUNCTION refund_leg(p_total bigint, p_before bigint, p_after bigint, p_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT refund_share(p_total, p_after, p_amount) - refund_share(p_total, p_before, p_amount);
$$;

-- A refund's legs, in the one lock order: the merchant's share less the fee's (with
-- the tip's and the convenience fee's shares: one debit, checked against its floor), the fee,
-- FX positions, the promotions account taking back the difference in the order's
-- currency (a platform discount, points), points redeemed, and the customer last.
CREATE OR REPLACE FUNCTION refund_legs(p_order orders, p_payment payments, p_shares refund_shares, p_points_account text)
RETURNS ledger_legs LANGUAGE plpgsql AS $$
DECLARE
    v_legs ledger_legs;
BEGIN
    v_legs.fee_minor := p_shares.fee_minor;
    v_legs.accounts := ARRAY[(SELECT account_id FROM merchants WHERE id = p_order.merchant_id),
                             platform_account_id('fee', p_order.currency)];
    v_legs.amounts := ARRAY[-(p_shares.gross_minor - p_shares.fee_minor + p_shares.tip + p_shares.convenience_fee),
                            -p_shares.fee_minor];
    IF p_payment.charged_currency <> p_order.currency THEN
        v_legs.accounts := v_legs.accounts || platform_account('fx_position', p_payment.charged_currency)
                                           || platform_account('fx_position', p_order.currency);
        v_legs.amounts := v_legs.amounts || -p_shares.customer_minor || p_shares.due_minor;
    END IF;
    IF p_shares.gross_minor + p_shares.tip + p_shares.convenience_fee <> p_shares.due_minor THEN
        v_legs.accounts := v_legs.accounts || platform_account('promotions', p_order.currency);
        v_legs.amounts := v_legs.amounts || (p_shares.gross_minor + p_shares.tip + p_shares.convenience_fee
                                             - p_shares.due_minor);
    END IF;
    IF p_shares.points <> 0 THEN
        v_legs.accounts := v_legs.accounts || p_points_account || platform_account('points_liability', 'PTS');
        v_legs.amounts := v_legs.amounts || p_shares.points || -p_shares.points;
    END IF;
    v_legs.accounts := v_legs.accounts || p_payment.customer_account_id;
    v_legs.amounts := v_legs.amounts || p_shares.customer_minor;
    RETURN v_legs;
END $$;

-- Earned points go back in proportion, but never below zero: what was already spent
-- stays spent, a loss the points liability carries. (The points row is locked already.)
CREATE OR REPLACE FUNCTION refund_points_clawback(p_refund_id text, p_points_account text, p_earned bigint,
                                                  p_shard_seed integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_back bigint := least(p_earned, (SELECT balance_minor FROM account_balances WHERE account_id = p_points_account));
BEGIN
    IF v_back > 0 THEN
        PERFORM ledger_post('points', 'clawback:' || p_refund_id,
            ARRAY[p_points_account, platform_account('points_liability', 'PTS')],
            ARRAY[-v_back, v_back], ARRAY[]::bigint[], p_shard_seed);
        PERFORM wallet_event((SELECT wallet_id FROM accounts WHERE id = p_points_account), 'points.clawed_back',
                             p_refund_id);
    END IF;
END $$;

-- Stores a definitive refusal under its refund_reference (the stored-answer rule).
CREATE OR REPLACE FUNCTION refund_fail(
    p_order orders, p_refund_id text, p_reference text, p_request_sha256 bytea, p_amount_minor bigint,
    p_reason text, p_refused refusal, p_key_id text
) RETURNS refund_outcome LANGUAGE sql AS $$
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, outcome_message,
                         amount_minor, reason, order_status_after, created_by_key_id)
    VALUES (p_refund_id, p_order.id, p_reference, p_request_sha256, p_refused.http_status, p_refused.code,
            p_refused.message, p_amount_minor, p_reason, p_order.status, p_key_id);
    SELECT ROW(p_refused.code, p_refused.http_status, p_refused.message, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
$$;
