-- Cross-border payment (DESIGN.md §3, issue 6): exchange rates with history, quotes
-- locked for a minute, payments charged in the paying account's currency through FX
-- position accounts (balanced in each currency), refunds at the payment's rate.

-- Minor units of each currency, mirrored from the domain crate at every migrate (the
-- crate is the one source; SQL needs them to convert between currencies).
CREATE TABLE currencies (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_units integer NOT NULL CHECK (minor_units BETWEEN 0 AND 4)
);

CREATE TABLE fx_rates (
    id          text PRIMARY KEY,
    base        text NOT NULL,           -- the order's (merchant's) currency
    quote       text NOT NULL,           -- the paying account's currency
    rate        numeric(20, 8) NOT NULL CHECK (rate > 0),   -- quote units per 1 base unit
    spread_bps  integer NOT NULL DEFAULT 0 CHECK (spread_bps BETWEEN 0 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (base <> quote)
);
CREATE INDEX fx_rates_current ON fx_rates (base, quote, created_at DESC, id DESC);

CREATE TABLE quotes (
    id                  text PRIMARY KEY,
    wallet_id           text NOT NULL REFERENCES wallets (id),
    order_id            text NOT NULL REFERENCES orders (id),
    customer_account_id text NOT NULL REFERENCES accounts (id),
    fx_rate_id          text REFERENCES fx_rates (id),
    charged_minor       bigint NOT NULL CHECK (charged_minor > 0),
    charged_currency    text NOT NULL,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE payments ADD COLUMN fx_rate_id text REFERENCES fx_rates (id),
                     ADD COLUMN fx_rate numeric(20, 8),
                     ADD COLUMN fx_spread_bps integer,
                     ADD COLUMN quote_id text;

-- FX positions and promotions are credited and debited by every such payment: shard them.
ALTER TABLE accounts DROP CONSTRAINT accounts_check3;
ALTER TABLE accounts ADD CONSTRAINT accounts_sharded_kinds
    CHECK (kind IN ('merchant', 'fee', 'fx_position', 'promotions') OR shard_count = 1);

-- The current rate from base to quote, or an all-NULL row.
CREATE FUNCTION fx_current_rate(p_base text, p_quote text) RETURNS fx_rates LANGUAGE sql STABLE AS $$
    SELECT * FROM fx_rates WHERE base = p_base AND quote = p_quote ORDER BY created_at DESC, id DESC LIMIT 1;
$$;

-- due × rate × (1 + spread_bps / 10000), computed exactly and rounded half-up once, in
-- minor units of p_to. At least one minor unit: nothing is sold for free by rounding.
CREATE FUNCTION fx_charge(p_due_minor bigint, p_from text, p_to text, p_rate numeric, p_spread_bps integer)
RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT greatest(1, round(p_due_minor::numeric * p_rate * (10000 + p_spread_bps) / 10000
        * power(10::numeric, (SELECT minor_units FROM currencies WHERE code = p_to)
                           - (SELECT minor_units FROM currencies WHERE code = p_from))))::bigint;
$$;

-- A decimal cap in minor units of a currency, rounded down: rounding never lets a charge pass a cap.
CREATE FUNCTION minor_units_of(p_amount numeric, p_currency text) RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT floor(p_amount * power(10::numeric, (SELECT minor_units FROM currencies WHERE code = p_currency)))::bigint;
$$;

CREATE TYPE quote_outcome AS (
    outcome             text,
    http_status         smallint,
    message             text,
    quote_id            text,
    order_id            text,
    amount_minor        bigint,
    currency            text,
    charged_minor       bigint,
    charged_currency    text,
    rate                numeric,
    spread_bps          integer,
    expires_at          timestamptz
);

-- What paying an order from an account would charge, locked for p_ttl_seconds.
-- Reserves nothing: the payment checks everything again.
CREATE FUNCTION quote_order(
    p_wallet_id text, p_quote_id text, p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_ttl_seconds integer
) RETURNS quote_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_account_currency text;
    v_order orders%ROWTYPE;
    v_rate fx_rates%ROWTYPE;
    v_charged bigint;
    v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
BEGIN
    SELECT currency INTO v_account_currency FROM accounts
    WHERE id = p_customer_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no customer account ' || p_customer_account_id || ' in this wallet',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    SELECT * INTO v_order FROM orders WHERE id = p_order_id;
    IF v_order.id IS NULL OR v_order.qr_payload <> p_qr_payload THEN
        RETURN ROW('invalid_qr', 422, 'the QR payload was not issued by this gateway',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    IF v_order.status <> 'pending' OR v_order.expires_at <= now() THEN
        RETURN ROW(CASE WHEN v_order.status IN ('pending', 'expired') THEN 'order_expired'
                        WHEN v_order.status = 'closed' THEN 'order_not_payable' ELSE 'already_paid' END,
                   CASE WHEN v_order.status IN ('pending', 'expired') THEN 422 ELSE 409 END,
                   'order ' || v_order.id || ' cannot be paid', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    v_charged := v_order.amount_minor;
    IF v_account_currency <> v_order.currency THEN
        v_rate := fx_current_rate(v_order.currency, v_account_currency);
        IF v_rate.id IS NULL THEN
            RETURN ROW('currency_mismatch', 422, 'no exchange rate from ' || v_order.currency || ' to ' || v_account_currency,
                       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
        END IF;
        v_charged := fx_charge(v_order.amount_minor, v_order.currency, v_account_currency, v_rate.rate, v_rate.spread_bps);
    END IF;
    INSERT INTO quotes (id, wallet_id, order_id, customer_account_id, fx_rate_id, charged_minor, charged_currency, expires_at)
    VALUES (p_quote_id, p_wallet_id, v_order.id, p_customer_account_id, v_rate.id, v_charged, v_account_currency, v_expires);
    RETURN ROW('succeeded', 200, NULL, p_quote_id, v_order.id, v_order.amount_minor, v_order.currency, v_charged,
               v_account_currency, v_rate.rate, v_rate.spread_bps, v_expires)::quote_outcome;
END $$;

DROP FUNCTION pay_order(text, text, bytea, text, bytea, text, text, text, text, bigint, text, bigint, integer, integer);

-- Pays an order (as in 0002/0007), now across currencies and against quotes.
CREATE FUNCTION pay_order(
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
    -- What the paying account is charged: the order amount, or across currencies the
    -- amount at the quoted (else the current) rate plus spread, rounded once.
    v_charged := v_order.amount_minor;
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
        v_charged := fx_charge(v_order.amount_minor, v_order.currency, v_account_currency, v_rate.rate, v_rate.spread_bps);
        v_charged_currency := v_account_currency;
    END IF;
    IF p_max_charged IS NOT NULL AND v_charged > minor_units_of(p_max_charged, v_charged_currency) THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'charge_exceeds_max', 422,
            'the charge exceeds max_charged', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    SELECT m.account_id, m.webhook_url IS NOT NULL INTO v_merchant_account, v_notify
    FROM merchants m WHERE m.id = v_order.merchant_id;
    v_fee_account := 'acc_fee_' || lower(v_order.currency);
    -- Half-up rounding of amount × rate / 10000 (integer arithmetic on positives).
    v_fee := (v_order.amount_minor * v_order.fee_rate_bps * 2 + 10000) / 20000;
    -- Legs in the one lock order: customer, merchant, fee, FX positions (payer's side first).
    v_legs_accounts := ARRAY[p_customer_account_id, v_merchant_account, v_fee_account];
    v_legs_amounts := ARRAY[-v_charged, v_order.amount_minor - v_fee, v_fee];
    IF v_charged_currency <> v_order.currency THEN
        v_legs_accounts := v_legs_accounts || ledger_platform_account('fx_position', v_charged_currency, 16::smallint)
                                           || ledger_platform_account('fx_position', v_order.currency, 16::smallint);
        v_legs_amounts := v_legs_amounts || v_charged || -v_order.amount_minor;
    END IF;
    v_ltx := ledger_post('payment', p_payment_id, v_legs_accounts, v_legs_amounts,
                         ARRAY[0, NULL, NULL, NULL, NULL]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'insufficient_funds', 422,
            'the customer account balance is too low', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    INSERT INTO payments (id, order_id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency,
                          charged_minor, charged_currency, fee_minor, ledger_transaction_id, paid_at,
                          fx_rate_id, fx_rate, fx_spread_bps, quote_id)
    VALUES (p_payment_id, v_order.id, p_wallet_id, p_txn_id, p_customer_account_id, v_order.amount_minor,
            v_order.currency, v_charged, v_charged_currency, v_fee, v_ltx, v_now,
            v_rate.id, v_rate.rate, v_rate.spread_bps, v_quote.id);
    UPDATE orders SET status = 'paid', paid_at = v_now, payment_id = p_payment_id, updated_at = v_now
    WHERE id = v_order.id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, payment_id, order_id)
    VALUES (p_wallet_id, p_txn_id, 'payment', p_request_sha256, 200, 'succeeded', p_payment_id, v_order.id);
    IF v_notify THEN
        PERFORM webhook_enqueue(v_order.merchant_id, 'order.paid', v_order.id);
    END IF;
    RETURN ROW('succeeded', 200, NULL, p_payment_id, v_order.id, v_order.amount_minor, v_order.currency, 0,
               v_charged, v_charged_currency, v_fee, 0, 0, v_now)::wallet_outcome;
END $$;

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
    v_due := refund_share(v_payment.amount_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.amount_minor, v_before, v_order.amount_minor);
    v_fee := refund_share(v_payment.fee_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.fee_minor, v_before, v_order.amount_minor);
    PERFORM 1 FROM account_balances WHERE account_id = v_payment.customer_account_id FOR UPDATE;
    v_accounts := ARRAY[(SELECT account_id FROM merchants WHERE id = p_merchant_id), 'acc_fee_' || lower(v_order.currency)];
    v_amounts := ARRAY[-(v_due - v_fee), -v_fee];
    IF v_payment.charged_currency <> v_order.currency THEN
        v_accounts := v_accounts || ledger_platform_account('fx_position', v_payment.charged_currency, 16::smallint)
                                 || ledger_platform_account('fx_position', v_order.currency, 16::smallint);
        v_amounts := v_amounts || -v_customer || v_due;
    END IF;
    v_ltx := ledger_post('refund', p_refund_id, v_accounts || v_payment.customer_account_id, v_amounts || v_customer,
                         ARRAY[0, NULL, NULL, NULL, NULL]::bigint[], p_shard_seed);
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
