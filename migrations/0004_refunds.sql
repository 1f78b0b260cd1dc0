-- Refunds (DESIGN.md §3, §6): each leg of the payment is returned cumulatively, so a
-- full refund returns every leg exactly; refunds never exceed the payment (invariant 6).

CREATE TABLE refunds (
    id                      text PRIMARY KEY,
    order_id                text NOT NULL REFERENCES orders (id),
    refund_reference        text NOT NULL CHECK (refund_reference ~ '^[ -~]{1,64}$'),
    request_sha256          bytea NOT NULL,
    http_status             smallint NOT NULL,
    outcome                 text NOT NULL,          -- 'succeeded' or an error code
    outcome_message         text,
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    reason                  text CHECK (length(reason) <= 500),
    customer_returned_minor bigint,
    fee_returned_minor      bigint,
    merchant_debited_minor  bigint,
    order_status_after      text,
    ledger_transaction_id   bigint UNIQUE REFERENCES ledger_transactions (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, refund_reference),
    CHECK ((outcome = 'succeeded') = (ledger_transaction_id IS NOT NULL))
);
CREATE INDEX refunds_succeeded_by_order ON refunds (order_id) WHERE outcome = 'succeeded';

-- A debit of a sharded account that may go below zero (the platform fee account)
-- takes one shard like a credit, instead of locking every shard: returning fees must
-- not stall the payments crediting the same account.
CREATE OR REPLACE FUNCTION ledger_post(
    p_kind text, p_reference text,
    p_accounts text[], p_amounts bigint[], p_floors bigint[], p_shard_seed integer
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_leg integer;
    v_shards smallint[];
    v_known bigint;
    v_unbalanced text;
    v_txn bigint;
BEGIN
    IF cardinality(p_accounts) < 2 OR cardinality(p_accounts) <> cardinality(p_amounts) THEN
        RAISE EXCEPTION 'ledger_post: a transaction needs two or more legs, one amount each';
    END IF;
    WITH legs AS (
        SELECT l.ord, l.amount, a.id, a.currency, a.shard_count
        FROM unnest(p_accounts, p_amounts) WITH ORDINALITY AS l(account_id, amount, ord)
        LEFT JOIN accounts a ON a.id = l.account_id
    )
    SELECT (SELECT array_agg(shard_count ORDER BY ord) FROM legs),
           (SELECT count(id) FROM legs),
           (SELECT string_agg(currency || ' ' || total, ', ')
            FROM (SELECT currency, sum(amount) AS total FROM legs GROUP BY currency HAVING sum(amount) <> 0) u)
    INTO v_shards, v_known, v_unbalanced;
    IF v_unbalanced IS NOT NULL OR v_known <> cardinality(p_accounts) THEN
        RAISE EXCEPTION 'ledger_post: unbalanced or unknown legs (%)', coalesce(v_unbalanced, 'unknown account');
    END IF;

    FOR v_leg IN 1 .. cardinality(p_accounts) LOOP
        CONTINUE WHEN p_amounts[v_leg] = 0;
        IF p_amounts[v_leg] > 0 OR (v_shards[v_leg] > 1 AND p_floors[v_leg] IS NULL) THEN
            UPDATE account_balances SET balance_minor = balance_minor + p_amounts[v_leg]
            WHERE account_id = p_accounts[v_leg] AND shard = p_shard_seed % v_shards[v_leg];
        ELSIF v_shards[v_leg] = 1 THEN
            UPDATE account_balances SET balance_minor = balance_minor + p_amounts[v_leg]
            WHERE account_id = p_accounts[v_leg] AND shard = 0
              AND (p_floors[v_leg] IS NULL OR balance_minor + p_amounts[v_leg] >= p_floors[v_leg]);
            IF NOT FOUND THEN
                IF v_leg = 1 THEN RETURN NULL; END IF;
                RAISE EXCEPTION 'insufficient funds in %', p_accounts[v_leg] USING ERRCODE = 'QG001';
            END IF;
        ELSIF NOT ledger_debit_shards(p_accounts[v_leg], -p_amounts[v_leg], p_floors[v_leg]) THEN
            IF v_leg = 1 THEN RETURN NULL; END IF;
            RAISE EXCEPTION 'insufficient funds in %', p_accounts[v_leg] USING ERRCODE = 'QG001';
        END IF;
    END LOOP;

    INSERT INTO ledger_transactions (kind, reference) VALUES (p_kind, p_reference) RETURNING id INTO v_txn;
    INSERT INTO postings (ledger_transaction_id, account_id, amount_minor)
    SELECT v_txn, l.account_id, l.amount
    FROM unnest(p_accounts, p_amounts) AS l(account_id, amount) WHERE l.amount <> 0;
    RETURN v_txn;
END $$;

CREATE TYPE refund_outcome AS (
    outcome         text,
    http_status     smallint,
    message         text,
    refund_id       text,
    amount_minor    bigint,
    currency        text,
    order_status    text,
    reason          text,
    created_at      timestamptz
);

-- leg_total × refunded / amount, rounded half-up (exact: NUMERIC cannot overflow here).
CREATE FUNCTION refund_share(p_leg_total bigint, p_refunded bigint, p_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT round(p_leg_total::numeric * p_refunded / p_amount)::bigint;  -- round(): half away from zero
$$;

-- Refunds part or all of a paid order, in the caller's one transaction. Lock order:
-- order → customer → merchant shards → fee shard, as payments take them.
CREATE FUNCTION refund_order(
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
    v_fee bigint;
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
    v_customer := refund_share(v_payment.charged_minor, v_after, v_order.amount_minor)
                - refund_share(v_payment.charged_minor, v_before, v_order.amount_minor);
    v_fee := refund_share(v_payment.fee_minor, v_after, v_order.amount_minor)
           - refund_share(v_payment.fee_minor, v_before, v_order.amount_minor);
    PERFORM 1 FROM account_balances WHERE account_id = v_payment.customer_account_id FOR UPDATE;
    v_ltx := ledger_post('refund', p_refund_id,
        ARRAY[(SELECT account_id FROM merchants WHERE id = p_merchant_id), 'acc_fee_' || lower(v_order.currency),
              v_payment.customer_account_id],
        ARRAY[-(v_customer - v_fee), -v_fee, v_customer],
        ARRAY[0, NULL, NULL]::bigint[], p_shard_seed);
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

-- Stores a definitive refusal under its refund_reference (the stored-answer rule).
CREATE FUNCTION refund_fail(
    p_order orders, p_refund_id text, p_reference text, p_request_sha256 bytea, p_amount_minor bigint,
    p_reason text, p_code text, p_http_status integer, p_message text
) RETURNS refund_outcome LANGUAGE sql AS $$
    INSERT INTO refunds (id, order_id, refund_reference, request_sha256, http_status, outcome, outcome_message,
                         amount_minor, reason, order_status_after)
    VALUES (p_refund_id, p_order.id, p_reference, p_request_sha256, p_http_status, p_code, p_message,
            p_amount_minor, p_reason, p_order.status);
    SELECT ROW(p_code, p_http_status, p_message, NULL, NULL, NULL, NULL, NULL, NULL)::refund_outcome;
$$;

-- The invariants, now with 6: refunds never exceed the payment, and an order's status
-- agrees with what was refunded.
CREATE OR REPLACE FUNCTION ledger_invariant_violations() RETURNS TABLE (invariant integer, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 1, 'transaction ' || p.ledger_transaction_id || ' sums to ' || sum(p.amount_minor) || ' ' || a.currency
    FROM postings p JOIN accounts a ON a.id = p.account_id
    GROUP BY p.ledger_transaction_id, a.currency HAVING sum(p.amount_minor) <> 0
    UNION ALL
    SELECT 1, 'transaction ' || t.id || ' has fewer than two postings'
    FROM ledger_transactions t WHERE (SELECT count(*) FROM postings p WHERE p.ledger_transaction_id = t.id) < 2
    UNION ALL
    SELECT 2, 'account ' || a.id || ' balance ' || b.total || ' <> postings ' || coalesce(p.total, 0)
    FROM accounts a
    JOIN (SELECT account_id, sum(balance_minor) AS total FROM account_balances GROUP BY account_id) b ON b.account_id = a.id
    LEFT JOIN (SELECT account_id, sum(amount_minor) AS total FROM postings GROUP BY account_id) p ON p.account_id = a.id
    WHERE b.total <> coalesce(p.total, 0)
    UNION ALL
    SELECT 3, 'balances in ' || a.currency || ' sum to ' || sum(b.balance_minor)
    FROM account_balances b JOIN accounts a ON a.id = b.account_id
    GROUP BY a.currency HAVING sum(b.balance_minor) <> 0
    UNION ALL
    SELECT 4, 'account ' || a.id || ' (' || a.kind || ') is at ' || sum(b.balance_minor)
    FROM account_balances b JOIN accounts a ON a.id = b.account_id
    WHERE a.kind IN ('customer', 'merchant')
    GROUP BY a.id, a.kind HAVING sum(b.balance_minor) < 0 OR min(b.balance_minor) < 0
    UNION ALL
    SELECT 5, 'order ' || o.id || ' is ' || o.status || ' with ' || count(p.id) || ' payments'
    FROM orders o LEFT JOIN payments p ON p.order_id = o.id
    GROUP BY o.id, o.status
    HAVING count(p.id) > 1 OR (count(p.id) = 1) <> (o.status IN ('paid', 'partially_refunded', 'refunded'))
    UNION ALL
    SELECT 5, 'wallet_txn ' || wallet_id || '/' || wallet_txn_id || ' applied ' || count(*) || ' times'
    FROM (SELECT wallet_id, wallet_txn_id FROM payments
          UNION ALL SELECT w.wallet_id, w.wallet_txn_id FROM wallet_txns w WHERE w.kind <> 'payment' AND w.outcome = 'succeeded') applied
    GROUP BY wallet_id, wallet_txn_id HAVING count(*) > 1
    UNION ALL
    SELECT 5, 'payment ' || p.id || ' has ' || count(t.id) || ' ledger transactions'
    FROM payments p LEFT JOIN ledger_transactions t ON t.kind = 'payment' AND t.reference = p.id
    GROUP BY p.id HAVING count(t.id) <> 1
    UNION ALL
    SELECT 6, 'order ' || o.id || ' (' || o.status || ', ' || o.amount_minor || ') has ' || coalesce(r.total, 0) || ' refunded'
    FROM orders o
    LEFT JOIN (SELECT order_id, sum(amount_minor) AS total FROM refunds WHERE outcome = 'succeeded' GROUP BY order_id) r
           ON r.order_id = o.id
    WHERE coalesce(r.total, 0) > o.amount_minor
       OR (o.status = 'refunded') <> (coalesce(r.total, 0) = o.amount_minor AND o.status <> 'pending')
       OR (o.status = 'partially_refunded') <> (coalesce(r.total, 0) > 0 AND coalesce(r.total, 0) < o.amount_minor);
$$;
