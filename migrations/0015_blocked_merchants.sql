-- Operators block a merchant (issue 7): it can create no order, and a wallet paying one
-- of its orders is declined with `account_blocked` on the order's timeline. pay_order
-- reads the merchant with the order checks now (the same one statement, earlier), so
-- the block costs nothing per payment.

ALTER TABLE merchants ADD COLUMN blocked_at timestamptz;

CREATE OR REPLACE FUNCTION pay_order(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_request_sha256 bytea, p_payment_id text,
    p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_amount_minor bigint, p_currency text, p_max_charged numeric, p_quote_id text, p_use_points bigint,
    p_shard_seed integer, p_timeline_max integer
) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_begin record;
    v_account_currency text;
    v_order orders%ROWTYPE;
    v_merchant_account text;
    v_fee_account text;
    v_fee bigint;
    v_ltx bigint;
    v_now timestamptz := now();
    v_notify boolean;
    v_quote quotes%ROWTYPE;
    v_rate fx_rates%ROWTYPE;
    v_charged bigint;
    v_charged_currency text;
    v_legs_accounts text[];
    v_legs_amounts bigint[];
    v_offer campaign_offer;
    v_due bigint;
    v_credited bigint;
    v_redeem points_redemption;
    v_earned bigint;
    v_points_account text;
    v_merchant_blocked boolean;
BEGIN
    v_begin := wallet_call_begin(p_wallet_id, p_message_id, p_message_sha256, p_txn_id, 'payment',
                                 p_request_sha256, p_customer_account_id);
    IF (v_begin.answer).outcome IS NOT NULL THEN
        RETURN v_begin.answer;
    END IF;
    v_account_currency := v_begin.account_currency;

    IF p_order_id IS NOT NULL THEN
        SELECT * INTO v_order FROM orders WHERE id = p_order_id FOR UPDATE;
    END IF;
    IF v_order.id IS NULL OR v_order.qr_payload <> p_qr_payload THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'invalid_qr', 422,
            'the QR payload was not issued by this gateway', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF v_order.status = 'pending' AND v_order.expires_at <= v_now THEN
        UPDATE orders SET status = 'expired', updated_at = v_now WHERE id = v_order.id;
        INSERT INTO order_events (order_id, kind) VALUES (v_order.id, 'expired');
        v_order.status := 'expired';
    END IF;
    IF v_order.status <> 'pending' THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256,
            CASE v_order.status WHEN 'expired' THEN 'order_expired' WHEN 'closed' THEN 'order_not_payable' ELSE 'already_paid' END,
            CASE v_order.status WHEN 'expired' THEN 422 ELSE 409 END,
            'order ' || v_order.id || ' is ' || v_order.status, v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    SELECT m.account_id, m.webhook_url IS NOT NULL, m.blocked_at IS NOT NULL
    INTO v_merchant_account, v_notify, v_merchant_blocked
    FROM merchants m WHERE m.id = v_order.merchant_id;
    IF v_merchant_blocked THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'account_blocked', 422,
            'merchant ' || v_order.merchant_id || ' is blocked', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF p_currency <> v_order.currency THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'currency_mismatch', 422,
            'the order is in ' || v_order.currency || ', the request says ' || p_currency,
            v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF p_amount_minor <> v_order.amount_minor THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'amount_mismatch', 422,
            'the request amount differs from the order amount', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF p_quote_id IS NOT NULL THEN
        SELECT * INTO v_quote FROM quotes
        WHERE id = p_quote_id AND wallet_id = p_wallet_id AND order_id = v_order.id AND customer_account_id = p_customer_account_id;
        IF NOT FOUND OR v_quote.expires_at <= v_now THEN
            RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'quote_expired', 422,
                CASE WHEN v_quote.id IS NULL THEN 'no such quote for this order and account' ELSE 'the quote expired at ' || v_quote.expires_at END,
                v_order.id, p_customer_account_id, p_timeline_max);
        END IF;
    END IF;
    -- The best campaign this customer may still use (its row locked: budget and
    -- per-customer uses cannot be overspent by a concurrent payment).
    v_offer := campaign_take(v_order, p_wallet_id, p_customer_account_id, true);
    v_due := v_order.amount_minor - coalesce(v_offer.discount_minor, 0);
    -- Points asked for are worth 1/100 of a unit of the order's currency each, at most
    -- what is due; the platform funds their value.
    v_redeem := points_redemption(coalesce(p_use_points, 0), v_order.currency, v_due);
    v_due := v_due - v_redeem.value_minor;
    -- What the paying account is charged: what is due, or across currencies what is due
    -- at the quoted (else the current) rate plus spread, rounded once.
    v_charged := v_due;
    v_charged_currency := v_order.currency;
    IF v_account_currency <> v_order.currency THEN
        IF v_quote.id IS NOT NULL THEN
            SELECT * INTO v_rate FROM fx_rates WHERE id = v_quote.fx_rate_id;
        ELSE
            v_rate := fx_current_rate(v_order.currency, v_account_currency);
        END IF;
        IF v_rate.id IS NULL THEN
            RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'currency_mismatch', 422,
                'no exchange rate from ' || v_order.currency || ' to ' || v_account_currency || ' (the paying account''s currency)',
                v_order.id, p_customer_account_id, p_timeline_max);
        END IF;
        v_charged := fx_charge(v_due, v_order.currency, v_account_currency, v_rate.rate, v_rate.spread_bps);
        v_charged_currency := v_account_currency;
    END IF;
    IF p_max_charged IS NOT NULL AND v_charged > minor_units_of(p_max_charged, v_charged_currency) THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'charge_exceeds_max', 422,
            'the charge exceeds max_charged', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    -- The customer's points account is locked before their money (the one lock order),
    -- whenever this payment redeems or earns points.
    v_earned := points_earned_for(v_charged, v_charged_currency, v_order.merchant_id);
    IF v_redeem.points > 0 OR v_earned > 0 THEN
        v_points_account := points_account(p_wallet_id, p_customer_account_id, true);
        IF v_redeem.points > (SELECT balance_minor FROM account_balances WHERE account_id = v_points_account) THEN
            RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'insufficient_funds', 422,
                'the customer has fewer than ' || v_redeem.points || ' points', v_order.id, p_customer_account_id, p_timeline_max);
        END IF;
    END IF;

    v_fee_account := 'acc_fee_' || lower(v_order.currency);
    -- The merchant is credited the amount less a discount it funds; the fee is on that,
    -- half-up (integer arithmetic on positives).
    v_credited := v_order.amount_minor - CASE WHEN v_offer.funded_by = 'merchant' THEN v_offer.discount_minor ELSE 0 END;
    v_fee := (v_credited * v_order.fee_rate_bps * 2 + 10000) / 20000;
    -- Legs in the one lock order: customer, merchant, fee, FX positions (payer's side first).
    v_legs_accounts := ARRAY[p_customer_account_id, v_merchant_account, v_fee_account];
    v_legs_amounts := ARRAY[-v_charged, v_credited - v_fee, v_fee];
    IF v_charged_currency <> v_order.currency THEN
        v_legs_accounts := v_legs_accounts || ledger_platform_account('fx_position', v_charged_currency, 16::smallint)
                                           || ledger_platform_account('fx_position', v_order.currency, 16::smallint);
        v_legs_amounts := v_legs_amounts || v_charged || -v_due;
    END IF;
    IF v_offer.funded_by = 'platform' OR v_redeem.value_minor > 0 THEN
        v_legs_accounts := v_legs_accounts || ledger_platform_account('promotions', v_order.currency, 16::smallint);
        v_legs_amounts := v_legs_amounts
            || -(CASE WHEN v_offer.funded_by = 'platform' THEN v_offer.discount_minor ELSE 0 END + v_redeem.value_minor);
    END IF;
    -- Points redeemed and earned are legs of the payment's own transaction (PTS balances
    -- on its own): one ledger transaction per sale.
    IF v_redeem.points > 0 OR v_earned > 0 THEN
        v_legs_accounts := v_legs_accounts || v_points_account || ledger_platform_account('points_liability', 'PTS', 16::smallint)
                                           || v_points_account || ledger_platform_account('points_liability', 'PTS', 16::smallint);
        v_legs_amounts := v_legs_amounts || -v_redeem.points || v_redeem.points || v_earned || -v_earned;
    END IF;
    v_ltx := ledger_post('payment', p_payment_id, v_legs_accounts, v_legs_amounts, ARRAY[0]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'insufficient_funds', 422,
            'the customer account balance is too low', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    INSERT INTO payments (id, order_id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency,
                          charged_minor, charged_currency, fee_minor, ledger_transaction_id, paid_at,
                          fx_rate_id, fx_rate, fx_spread_bps, quote_id, discount_minor, campaign_id, discount_funded_by,
                          points_used, points_value_minor, points_earned)
    VALUES (p_payment_id, v_order.id, p_wallet_id, p_txn_id, p_customer_account_id, v_order.amount_minor,
            v_order.currency, v_charged, v_charged_currency, v_fee, v_ltx, v_now,
            v_rate.id, v_rate.rate, v_rate.spread_bps, v_quote.id, coalesce(v_offer.discount_minor, 0),
            v_offer.campaign_id, v_offer.funded_by, v_redeem.points, v_redeem.value_minor, v_earned);
    IF (SELECT referred_by_code IS NOT NULL FROM accounts WHERE id = p_customer_account_id) THEN
        PERFORM referral_reward(p_wallet_id, p_customer_account_id, p_payment_id, v_order, p_shard_seed);
    END IF;
    IF v_offer.campaign_id IS NOT NULL THEN
        PERFORM campaign_record_use(v_offer, p_wallet_id, p_customer_account_id, p_payment_id);
    END IF;
    UPDATE orders SET status = 'paid', paid_at = v_now, payment_id = p_payment_id, updated_at = v_now,
                      discount_minor = coalesce(v_offer.discount_minor, 0), charged_minor = v_charged,
                      charged_currency = v_charged_currency
    WHERE id = v_order.id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, payment_id, order_id)
    VALUES (p_wallet_id, p_txn_id, 'payment', p_request_sha256, 200, 'succeeded', p_payment_id, v_order.id);
    IF v_notify THEN
        PERFORM webhook_enqueue(v_order.merchant_id, 'order.paid', v_order.id);
    END IF;
    RETURN ROW('succeeded', 200, NULL, p_payment_id, v_order.id, v_order.amount_minor, v_order.currency,
               coalesce(v_offer.discount_minor, 0), v_charged, v_charged_currency, v_fee, v_redeem.points, v_earned,
               v_now)::wallet_outcome;
END $$;
