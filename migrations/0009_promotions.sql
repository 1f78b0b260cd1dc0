-- Promotions (issue 6): campaigns, platform-wide or for one merchant, percent off (with
-- a cap) or amount off over a minimum, in a window, with a budget and a per-customer
-- limit, funded by the merchant or by the platform's promotions account. At payment the
-- eligible campaign with the biggest discount applies (ties: the earliest created; no
-- stacking); budgets and per-customer limits hold under concurrency.

CREATE TABLE campaigns (
    id                  text PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('percent_off', 'amount_off_over')),
    percent_off         numeric(7, 4) CHECK (percent_off > 0 AND percent_off < 100),
    max_discount_minor  bigint CHECK (max_discount_minor > 0),
    amount_off_minor    bigint CHECK (amount_off_minor > 0),
    min_amount_minor    bigint CHECK (min_amount_minor > 0),
    currency            text NOT NULL,
    budget_minor        bigint NOT NULL CHECK (budget_minor > 0),
    spent_minor         bigint NOT NULL DEFAULT 0,
    funded_by           text NOT NULL CHECK (funded_by IN ('merchant', 'platform')),
    merchant_id         text REFERENCES merchants (id),
    per_customer_limit  integer CHECK (per_customer_limit > 0),
    starts_at           timestamptz,
    ends_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (spent_minor BETWEEN 0 AND budget_minor),                 -- a budget is never overspent
    CHECK (funded_by = 'platform' OR merchant_id IS NOT NULL),
    CHECK ((kind = 'percent_off') = (percent_off IS NOT NULL)),
    CHECK ((kind = 'amount_off_over') = (amount_off_minor IS NOT NULL AND min_amount_minor IS NOT NULL)),
    CHECK (amount_off_minor < min_amount_minor),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE INDEX campaigns_by_currency ON campaigns (currency);

-- One row per discounted payment: the per-customer count (a customer is (wallet,
-- customer_reference), all their accounts together).
CREATE TABLE campaign_uses (
    campaign_id         text NOT NULL REFERENCES campaigns (id),
    payment_id          text NOT NULL REFERENCES payments (id),
    wallet_id           text NOT NULL,
    customer_reference  text NOT NULL,
    discount_minor      bigint NOT NULL CHECK (discount_minor > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, payment_id)
);
CREATE INDEX campaign_uses_by_customer ON campaign_uses (campaign_id, wallet_id, customer_reference);

ALTER TABLE payments ADD COLUMN campaign_id text REFERENCES campaigns (id),
                     ADD COLUMN discount_funded_by text CHECK (discount_funded_by IN ('merchant', 'platform'));
ALTER TYPE quote_outcome ADD ATTRIBUTE discount_minor bigint;

CREATE TYPE campaign_offer AS (campaign_id text, discount_minor bigint, funded_by text);

-- A campaign's discount on an order of p_amount_minor (0 when it does not apply).
CREATE FUNCTION campaign_discount(p_campaign campaigns, p_amount_minor bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_campaign.kind
        WHEN 'percent_off' THEN least(round(p_amount_minor * p_campaign.percent_off / 100)::bigint,
                                      coalesce(p_campaign.max_discount_minor, p_amount_minor), p_amount_minor - 1)
        ELSE CASE WHEN p_amount_minor >= p_campaign.min_amount_minor THEN p_campaign.amount_off_minor ELSE 0 END
    END;
$$;

-- The best campaign the customer may use on the order. With p_lock, each candidate's row
-- is locked before its budget and the customer's uses are counted, so the answer holds
-- until this transaction ends; without (quotes), nothing is locked or reserved.
CREATE FUNCTION campaign_take(p_order orders, p_wallet_id text, p_customer_account_id text, p_lock boolean)
RETURNS campaign_offer LANGUAGE plpgsql AS $$
DECLARE
    c campaigns%ROWTYPE;
    v_discount bigint;
    v_uses bigint;
    v_customer_reference text;
BEGIN
    FOR c IN SELECT * FROM campaigns
             WHERE currency = p_order.currency AND (merchant_id IS NULL OR merchant_id = p_order.merchant_id)
               AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
               AND spent_minor < budget_minor
             ORDER BY campaign_discount(campaigns, p_order.amount_minor) DESC, created_at, id LOOP
        v_discount := campaign_discount(c, p_order.amount_minor);
        EXIT WHEN v_discount <= 0;
        IF p_lock THEN
            SELECT * INTO c FROM campaigns WHERE id = c.id FOR UPDATE;
        END IF;
        CONTINUE WHEN c.spent_minor + v_discount > c.budget_minor;
        IF c.per_customer_limit IS NOT NULL THEN
            IF v_customer_reference IS NULL THEN
                SELECT customer_reference INTO v_customer_reference FROM accounts WHERE id = p_customer_account_id;
            END IF;
            SELECT count(*) INTO v_uses FROM campaign_uses
            WHERE campaign_id = c.id AND wallet_id = p_wallet_id AND customer_reference = v_customer_reference;
            CONTINUE WHEN v_uses >= c.per_customer_limit;
        END IF;
        RETURN ROW(c.id, v_discount, c.funded_by)::campaign_offer;
    END LOOP;
    RETURN ROW(NULL, 0, NULL)::campaign_offer;
END $$;

-- Spends the budget and counts the customer's use (the campaign row is locked already).
CREATE FUNCTION campaign_record_use(p_offer campaign_offer, p_wallet_id text, p_customer_account_id text, p_payment_id text)
RETURNS void LANGUAGE sql AS $$
    UPDATE campaigns SET spent_minor = spent_minor + p_offer.discount_minor WHERE id = p_offer.campaign_id;
    INSERT INTO campaign_uses (campaign_id, payment_id, wallet_id, customer_reference, discount_minor)
    SELECT p_offer.campaign_id, p_payment_id, p_wallet_id, a.customer_reference, p_offer.discount_minor
    FROM accounts a WHERE a.id = p_customer_account_id;
$$;

CREATE OR REPLACE FUNCTION pay_order(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_request_sha256 bytea, p_payment_id text,
    p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_amount_minor bigint, p_currency text, p_max_charged numeric, p_quote_id text,
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

    SELECT m.account_id, m.webhook_url IS NOT NULL INTO v_merchant_account, v_notify
    FROM merchants m WHERE m.id = v_order.merchant_id;
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
    IF v_offer.funded_by = 'platform' THEN
        v_legs_accounts := v_legs_accounts || ledger_platform_account('promotions', v_order.currency, 16::smallint);
        v_legs_amounts := v_legs_amounts || -v_offer.discount_minor;
    END IF;
    v_ltx := ledger_post('payment', p_payment_id, v_legs_accounts, v_legs_amounts,
                         ARRAY[0, NULL, NULL, NULL, NULL, NULL]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'insufficient_funds', 422,
            'the customer account balance is too low', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    INSERT INTO payments (id, order_id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency,
                          charged_minor, charged_currency, fee_minor, ledger_transaction_id, paid_at,
                          fx_rate_id, fx_rate, fx_spread_bps, quote_id, discount_minor, campaign_id, discount_funded_by)
    VALUES (p_payment_id, v_order.id, p_wallet_id, p_txn_id, p_customer_account_id, v_order.amount_minor,
            v_order.currency, v_charged, v_charged_currency, v_fee, v_ltx, v_now,
            v_rate.id, v_rate.rate, v_rate.spread_bps, v_quote.id, coalesce(v_offer.discount_minor, 0),
            v_offer.campaign_id, v_offer.funded_by);
    IF v_offer.campaign_id IS NOT NULL THEN
        PERFORM campaign_record_use(v_offer, p_wallet_id, p_customer_account_id, p_payment_id);
    END IF;
    UPDATE orders SET status = 'paid', paid_at = v_now, payment_id = p_payment_id, updated_at = v_now
    WHERE id = v_order.id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, payment_id, order_id)
    VALUES (p_wallet_id, p_txn_id, 'payment', p_request_sha256, 200, 'succeeded', p_payment_id, v_order.id);
    IF v_notify THEN
        PERFORM webhook_enqueue(v_order.merchant_id, 'order.paid', v_order.id);
    END IF;
    RETURN ROW('succeeded', 200, NULL, p_payment_id, v_order.id, v_order.amount_minor, v_order.currency,
               coalesce(v_offer.discount_minor, 0), v_charged, v_charged_currency, v_fee, 0, 0, v_now)::wallet_outcome;
END $$;

CREATE OR REPLACE FUNCTION quote_order(
    p_wallet_id text, p_quote_id text, p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_ttl_seconds integer
) RETURNS quote_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_account_currency text;
    v_order orders%ROWTYPE;
    v_rate fx_rates%ROWTYPE;
    v_charged bigint;
    v_offer campaign_offer;
    v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
BEGIN
    SELECT currency INTO v_account_currency FROM accounts
    WHERE id = p_customer_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no customer account ' || p_customer_account_id || ' in this wallet',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    SELECT * INTO v_order FROM orders WHERE id = p_order_id;
    IF v_order.id IS NULL OR v_order.qr_payload <> p_qr_payload THEN
        RETURN ROW('invalid_qr', 422, 'the QR payload was not issued by this gateway',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    IF v_order.status <> 'pending' OR v_order.expires_at <= now() THEN
        RETURN ROW(CASE WHEN v_order.status IN ('pending', 'expired') THEN 'order_expired'
                        WHEN v_order.status = 'closed' THEN 'order_not_payable' ELSE 'already_paid' END,
                   CASE WHEN v_order.status IN ('pending', 'expired') THEN 422 ELSE 409 END,
                   'order ' || v_order.id || ' cannot be paid', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    v_offer := campaign_take(v_order, p_wallet_id, p_customer_account_id, false);
    v_charged := v_order.amount_minor - coalesce(v_offer.discount_minor, 0);
    IF v_account_currency <> v_order.currency THEN
        v_rate := fx_current_rate(v_order.currency, v_account_currency);
        IF v_rate.id IS NULL THEN
            RETURN ROW('currency_mismatch', 422, 'no exchange rate from ' || v_order.currency || ' to ' || v_account_currency,
                       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
        END IF;
        v_charged := fx_charge(v_charged, v_order.currency, v_account_currency, v_rate.rate, v_rate.spread_bps);
    END IF;
    INSERT INTO quotes (id, wallet_id, order_id, customer_account_id, fx_rate_id, charged_minor, charged_currency, expires_at)
    VALUES (p_quote_id, p_wallet_id, v_order.id, p_customer_account_id, v_rate.id, v_charged, v_account_currency, v_expires);
    RETURN ROW('succeeded', 200, NULL, p_quote_id, v_order.id, v_order.amount_minor, v_order.currency, v_charged,
               v_account_currency, v_rate.rate, v_rate.spread_bps, v_expires, coalesce(v_offer.discount_minor, 0))::quote_outcome;
END $$;

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
    v_discount bigint;
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
    -- round_half_up(L_total × refunded / amount).
    -- The customer's leg is in the currency charged, at the payment's rate; the merchant
    -- returns the order-currency share less the fee share.
    v_customer := refund_share(v_payment.charged_minor, v_after, v_order.amount_minor)
                - refund_share(v_payment.charged_minor, v_before, v_order.amount_minor);
    v_due := refund_share(v_payment.amount_minor - v_payment.discount_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.amount_minor - v_payment.discount_minor, v_before, v_order.amount_minor);
    v_fee := refund_share(v_payment.fee_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.fee_minor, v_before, v_order.amount_minor);
    PERFORM 1 FROM account_balances WHERE account_id = v_payment.customer_account_id FOR UPDATE;
    -- A platform-funded discount goes back to the promotions account in proportion
    -- (not to the campaign's budget); the merchant returns what it was credited for it.
    v_discount := CASE WHEN v_payment.discount_funded_by = 'platform'
                       THEN refund_share(v_payment.discount_minor, v_after, v_order.amount_minor)
                          - refund_share(v_payment.discount_minor, v_before, v_order.amount_minor) ELSE 0 END;
    v_accounts := ARRAY[(SELECT account_id FROM merchants WHERE id = p_merchant_id), 'acc_fee_' || lower(v_order.currency)];
    v_amounts := ARRAY[-(v_due + v_discount - v_fee), -v_fee];
    IF v_payment.charged_currency <> v_order.currency THEN
        v_accounts := v_accounts || ledger_platform_account('fx_position', v_payment.charged_currency, 16::smallint)
                                 || ledger_platform_account('fx_position', v_order.currency, 16::smallint);
        v_amounts := v_amounts || -v_customer || v_due;
    END IF;
    IF v_discount <> 0 THEN
        v_accounts := v_accounts || ledger_platform_account('promotions', v_order.currency, 16::smallint);
        v_amounts := v_amounts || v_discount;
    END IF;
    v_ltx := ledger_post('refund', p_refund_id, v_accounts || v_payment.customer_account_id, v_amounts || v_customer,
                         ARRAY[0, NULL, NULL, NULL, NULL, NULL]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN refund_fail(v_order, p_refund_id, p_reference, p_request_sha256, p_amount_minor, p_reason,
            'merchant_insufficient_funds', 422, 'the merchant''s balance is below what this refund takes from it');
    END IF;
    v_status := CASE WHEN v_after = v_order.amount_minor THEN 'refunded' ELSE 'partially_refunded' END;
    UPDATE orders SET status = v_status, updated_at = now() WHERE id = p_order_id;
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, amount_minor, reason,
                         customer_returned_minor, fee_returned_minor, merchant_debited_minor, order_status_after,
                         ledger_transaction_id)
    VALUES (p_refund_id, p_order_id, p_reference, p_request_sha256, 201, 'succeeded', p_amount_minor, p_reason,
            v_customer, v_fee, v_customer - v_fee, v_status, v_ltx)
    RETURNING * INTO v_stored;
    RETURN ROW('succeeded', 201, NULL, p_refund_id, p_amount_minor, v_order.currency, v_status, p_reason,
               v_stored.created_at)::refund_outcome;
END $$;
