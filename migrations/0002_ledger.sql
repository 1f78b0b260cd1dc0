-- The ledger's write path. Every movement of money is one call of one of these
-- functions: one round trip and one commit per payment, with row locks held only
-- inside the server. Lock order, always: wallet_messages → orders → the debited
-- account → credited accounts (in leg order) → wallet_txns. No other order is used,
-- so these functions cannot deadlock with each other.

-- Raised when a debit leg after the first would cross its floor; the caller's whole
-- transaction is rolled back (nothing moves) and the error is mapped by the gateway.
-- SQLSTATE QG001.

-- Posts one balanced ledger transaction and returns its id, or NULL when the first
-- leg (a debit) would take its account below p_floors[1]. Legs are applied in order;
-- put the debit that may fail first. Credits to a sharded account land on shard
-- (p_shard_seed mod shard_count); debits of a sharded account take from its shards
-- without taking any below zero.
CREATE FUNCTION ledger_post(
    p_kind text, p_reference text,
    p_accounts text[], p_amounts bigint[], p_floors bigint[], p_shard_seed integer
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_leg integer;
    v_shards smallint;
    v_txn bigint;
    v_unbalanced text;
BEGIN
    IF cardinality(p_accounts) < 2 OR cardinality(p_accounts) <> cardinality(p_amounts) THEN
        RAISE EXCEPTION 'ledger_post: a transaction needs two or more legs, one amount each';
    END IF;
    -- Invariant 1, asserted before anything is written.
    SELECT string_agg(currency || ' ' || total, ', ') INTO v_unbalanced FROM (
        SELECT a.currency, sum(l.amount) AS total
        FROM unnest(p_accounts, p_amounts) AS l(account_id, amount)
        JOIN accounts a ON a.id = l.account_id
        GROUP BY a.currency HAVING sum(l.amount) <> 0
    ) s;
    IF v_unbalanced IS NOT NULL OR (SELECT count(*) FROM accounts WHERE id = ANY (p_accounts))
            <> (SELECT count(DISTINCT x) FROM unnest(p_accounts) x) THEN
        RAISE EXCEPTION 'ledger_post: unbalanced or unknown legs (%)', coalesce(v_unbalanced, 'unknown account');
    END IF;

    FOR v_leg IN 1 .. cardinality(p_accounts) LOOP
        CONTINUE WHEN p_amounts[v_leg] = 0;
        SELECT shard_count INTO v_shards FROM accounts WHERE id = p_accounts[v_leg];
        IF p_amounts[v_leg] > 0 THEN
            UPDATE account_balances SET balance_minor = balance_minor + p_amounts[v_leg]
            WHERE account_id = p_accounts[v_leg] AND shard = p_shard_seed % v_shards;
        ELSIF v_shards = 1 THEN
            UPDATE account_balances SET balance_minor = balance_minor + p_amounts[v_leg]
            WHERE account_id = p_accounts[v_leg] AND shard = 0
              AND (p_floors[v_leg] IS NULL OR balance_minor + p_amounts[v_leg] >= p_floors[v_leg]);
            IF NOT FOUND THEN
                IF v_leg = 1 THEN RETURN NULL; END IF;
                RAISE EXCEPTION 'insufficient funds in %', p_accounts[v_leg] USING ERRCODE = 'QG001';
            END IF;
        ELSIF NOT ledger_debit_shards(p_accounts[v_leg], -p_amounts[v_leg], coalesce(p_floors[v_leg], 0)) THEN
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

-- Debits a sharded account: locks all its shards (in shard order), checks the total
-- against the floor, then takes from the fullest shards first.
CREATE FUNCTION ledger_debit_shards(p_account text, p_amount bigint, p_floor bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
    v_left bigint := p_amount;
    v_take bigint;
    r record;
BEGIN
    SELECT sum(balance_minor) INTO v_total FROM (
        SELECT balance_minor FROM account_balances WHERE account_id = p_account ORDER BY shard FOR UPDATE
    ) locked;
    IF v_total - p_amount < p_floor THEN
        RETURN false;
    END IF;
    FOR r IN SELECT shard, balance_minor FROM account_balances
             WHERE account_id = p_account AND balance_minor > 0 ORDER BY balance_minor DESC, shard LOOP
        v_take := least(r.balance_minor, v_left);
        UPDATE account_balances SET balance_minor = balance_minor - v_take
        WHERE account_id = p_account AND shard = r.shard;
        v_left := v_left - v_take;
        EXIT WHEN v_left = 0;
    END LOOP;
    IF v_left > 0 THEN  -- only reachable with a negative floor on a sharded account
        UPDATE account_balances SET balance_minor = balance_minor - v_left
        WHERE account_id = p_account AND shard = 0;
    END IF;
    RETURN true;
END $$;

-- Opens an account with its balance shards.
CREATE FUNCTION ledger_open_account(
    p_id text, p_kind text, p_currency text, p_wallet_id text, p_merchant_id text,
    p_customer_reference text, p_shard_count smallint
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO accounts (id, kind, currency, wallet_id, merchant_id, customer_reference, shard_count)
    VALUES (p_id, p_kind, p_currency, p_wallet_id, p_merchant_id, p_customer_reference, p_shard_count);
    INSERT INTO account_balances (account_id, shard, must_stay_nonnegative)
    SELECT p_id, s, p_kind IN ('customer', 'merchant') FROM generate_series(0, p_shard_count - 1) s;
$$;

-- The platform's own account of a kind in a currency (fee revenue, FX position, …),
-- opened on first use under a fixed id.
CREATE FUNCTION ledger_platform_account(p_kind text, p_currency text, p_shard_count smallint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text := 'acc_' || p_kind || '_' || lower(p_currency);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM accounts WHERE id = v_id) THEN
        INSERT INTO accounts (id, kind, currency, shard_count) VALUES (v_id, p_kind, p_currency, p_shard_count)
        ON CONFLICT DO NOTHING;
        INSERT INTO account_balances (account_id, shard, must_stay_nonnegative)
        SELECT v_id, s, false FROM generate_series(0, p_shard_count - 1) s
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN v_id;
END $$;

-- What a wallet call that carries a wallet_txn_id answered, or answers now.
CREATE TYPE wallet_outcome AS (
    outcome             text,       -- 'succeeded' or an error code
    http_status         smallint,
    message             text,
    payment_id          text,
    order_id            text,
    amount_minor        bigint,
    currency            text,
    discount_minor      bigint,
    charged_minor       bigint,
    charged_currency    text,
    fee_minor           bigint,
    points_used         bigint,
    points_earned       bigint,
    paid_at             timestamptz
);

CREATE FUNCTION wallet_answer(p_code text, p_http_status integer, p_message text)
RETURNS wallet_outcome LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_code, p_http_status, p_message, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::wallet_outcome;
$$;

-- The stored answer to (wallet, wallet_txn_id), or NULL when there is none.
CREATE FUNCTION wallet_txn_answer(p_wallet_id text, p_txn_id text)
RETURNS wallet_outcome LANGUAGE sql STABLE AS $$
    SELECT ROW(t.outcome, t.http_status, t.outcome_message, p.id, coalesce(p.order_id, t.order_id),
               p.amount_minor, p.currency, p.discount_minor, p.charged_minor, p.charged_currency,
               p.fee_minor, p.points_used, p.points_earned, p.paid_at)::wallet_outcome
    FROM wallet_txns t LEFT JOIN payments p ON p.id = t.payment_id
    WHERE t.wallet_id = p_wallet_id AND t.wallet_txn_id = p_txn_id;
$$;

-- Records a webhook-id. True when it is new, or a repeat of the very same request for
-- the same wallet_txn_id (whose stored answer is then given); false for a replay.
CREATE FUNCTION wallet_message_claim(
    p_wallet_id text, p_message_id text, p_request_sha256 bytea, p_txn_id text
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_messages (wallet_id, message_id, request_sha256, wallet_txn_id)
    VALUES (p_wallet_id, p_message_id, p_request_sha256, p_txn_id)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM wallet_messages
        WHERE wallet_id = p_wallet_id AND message_id = p_message_id
          AND request_sha256 = p_request_sha256 AND wallet_txn_id IS NOT DISTINCT FROM p_txn_id);
END $$;

-- The answer for a wallet_txn_id seen before: the stored one for the same request,
-- idempotency_conflict for another request. NULL when the id is new.
CREATE FUNCTION wallet_txn_repeat(p_wallet_id text, p_txn_id text, p_kind text, p_request_sha256 bytea)
RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
    v_sha bytea;
BEGIN
    SELECT kind, request_sha256 INTO v_kind, v_sha FROM wallet_txns
    WHERE wallet_id = p_wallet_id AND wallet_txn_id = p_txn_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF v_kind <> p_kind OR v_sha <> p_request_sha256 THEN
        RETURN wallet_answer('idempotency_conflict', 409,
            'wallet_txn_id ' || p_txn_id || ' was already used for a different request');
    END IF;
    RETURN wallet_txn_answer(p_wallet_id, p_txn_id);
END $$;

-- The opening checks every wallet_txn call shares, in DESIGN.md §6 order: the
-- webhook-id, a repeated wallet_txn_id, then the customer account belonging to the
-- wallet. Returns a final answer, or (when answer is NULL) the account's currency.
CREATE FUNCTION wallet_call_begin(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_kind text, p_request_sha256 bytea, p_account_id text,
    OUT answer wallet_outcome, OUT account_currency text
) LANGUAGE plpgsql AS $$
BEGIN
    IF NOT wallet_message_claim(p_wallet_id, p_message_id, p_message_sha256, p_txn_id) THEN
        answer := wallet_answer('replayed_message', 409, 'this webhook-id was already used for another request');
        RETURN;
    END IF;
    answer := wallet_txn_repeat(p_wallet_id, p_txn_id, p_kind, p_request_sha256);
    IF answer.outcome IS NOT NULL THEN  -- (a composite IS NOT NULL only when every field is)
        RETURN;
    END IF;
    answer := NULL;
    SELECT currency INTO account_currency FROM accounts
    WHERE id = p_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    IF NOT FOUND THEN
        answer := wallet_answer('not_found', 404, 'no customer account ' || p_account_id || ' in this wallet');
    END IF;
END $$;

-- Stores a definitive failure of a wallet_txn call, and puts a payment attempt on its
-- order's timeline (at most p_timeline_max entries per order). Moves no money.
CREATE FUNCTION wallet_txn_fail(
    p_wallet_id text, p_txn_id text, p_kind text, p_request_sha256 bytea,
    p_code text, p_http_status integer, p_message text,
    p_order_id text, p_customer_account_id text, p_timeline_max integer
) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, outcome_message, order_id)
    VALUES (p_wallet_id, p_txn_id, p_kind, p_request_sha256, p_http_status, p_code, p_message, p_order_id);
    IF p_order_id IS NOT NULL THEN
        UPDATE orders SET failed_attempts = failed_attempts + 1
        WHERE id = p_order_id AND failed_attempts < p_timeline_max;
        IF FOUND THEN
            INSERT INTO order_events (order_id, kind, code, wallet_id, customer_account_id)
            VALUES (p_order_id, 'payment_failed', p_code, p_wallet_id, p_customer_account_id);
        END IF;
    END IF;
    RETURN wallet_answer(p_code, p_http_status, p_message);
END $$;

-- Pays an order from a customer's account: the checks of DESIGN.md §6 from the
-- webhook-id on, then the settlement, all in the caller's one transaction.
-- p_order_id is NULL when the scanned payload did not parse (CRC, layout).
CREATE FUNCTION pay_order(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_request_sha256 bytea, p_payment_id text,
    p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_amount_minor bigint, p_currency text, p_max_charged_minor bigint,
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
    IF p_currency <> v_order.currency OR v_account_currency <> v_order.currency THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'currency_mismatch', 422,
            CASE WHEN p_currency <> v_order.currency
                 THEN 'the order is in ' || v_order.currency || ', the request says ' || p_currency
                 ELSE 'the paying account holds ' || v_account_currency || ' and the order is in ' || v_order.currency END,
            v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF p_amount_minor <> v_order.amount_minor THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'amount_mismatch', 422,
            'the request amount differs from the order amount', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;
    IF p_max_charged_minor IS NOT NULL AND v_order.amount_minor > p_max_charged_minor THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'charge_exceeds_max', 422,
            'the charge exceeds max_charged', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    SELECT m.account_id INTO v_merchant_account FROM merchants m WHERE m.id = v_order.merchant_id;
    v_fee_account := 'acc_fee_' || lower(v_order.currency);
    -- Half-up rounding of amount × rate / 10000 (integer arithmetic on positives).
    v_fee := (v_order.amount_minor * v_order.fee_rate_bps * 2 + 10000) / 20000;
    v_ltx := ledger_post('payment', p_payment_id,
        ARRAY[p_customer_account_id, v_merchant_account, v_fee_account],
        ARRAY[-v_order.amount_minor, v_order.amount_minor - v_fee, v_fee],
        ARRAY[0, NULL, NULL]::bigint[], p_shard_seed);
    IF v_ltx IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'payment', p_request_sha256, 'insufficient_funds', 422,
            'the customer account balance is too low', v_order.id, p_customer_account_id, p_timeline_max);
    END IF;

    INSERT INTO payments (id, order_id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency,
                          charged_minor, charged_currency, fee_minor, ledger_transaction_id, paid_at)
    VALUES (p_payment_id, v_order.id, p_wallet_id, p_txn_id, p_customer_account_id, v_order.amount_minor,
            v_order.currency, v_order.amount_minor, v_order.currency, v_fee, v_ltx, v_now);
    UPDATE orders SET status = 'paid', paid_at = v_now, payment_id = p_payment_id, updated_at = v_now
    WHERE id = v_order.id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, payment_id, order_id)
    VALUES (p_wallet_id, p_txn_id, 'payment', p_request_sha256, 200, 'succeeded', p_payment_id, v_order.id);
    RETURN ROW('succeeded', 200, NULL, p_payment_id, v_order.id, v_order.amount_minor, v_order.currency, 0,
               v_order.amount_minor, v_order.currency, v_fee, 0, 0, v_now)::wallet_outcome;
END $$;

-- Money enters a customer's account from the wallet's funding account, which may go
-- negative down to the operator's limit for that wallet and currency.
CREATE FUNCTION top_up(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_request_sha256 bytea,
    p_account_id text, p_amount_minor bigint, p_currency text
) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_begin record;
    v_account_currency text;
    v_funding text;
    v_limit bigint;
BEGIN
    v_begin := wallet_call_begin(p_wallet_id, p_message_id, p_message_sha256, p_txn_id, 'top_up',
                                 p_request_sha256, p_account_id);
    IF (v_begin.answer).outcome IS NOT NULL THEN
        RETURN v_begin.answer;
    END IF;
    v_account_currency := v_begin.account_currency;
    IF v_account_currency <> p_currency THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'top_up', p_request_sha256, 'currency_mismatch', 422,
            'the account holds ' || v_account_currency, NULL, NULL, 0);
    END IF;
    SELECT a.id, l.limit_minor INTO v_funding, v_limit
    FROM funding_limits l JOIN accounts a ON a.kind = 'funding' AND a.wallet_id = l.wallet_id AND a.currency = l.currency
    WHERE l.wallet_id = p_wallet_id AND l.currency = p_currency;
    IF NOT FOUND OR ledger_post('top_up', p_txn_id, ARRAY[v_funding, p_account_id],
                                ARRAY[-p_amount_minor, p_amount_minor], ARRAY[-v_limit, NULL], 0) IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'top_up', p_request_sha256, 'limit_exceeded', 422,
            'the wallet''s funding limit in ' || p_currency || ' would be exceeded', NULL, NULL, 0);
    END IF;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome)
    VALUES (p_wallet_id, p_txn_id, 'top_up', p_request_sha256, 200, 'succeeded');
    RETURN wallet_answer('succeeded', 200, NULL);
END $$;

-- Moves due pending orders to expired, at most p_batch at a time; safe to run on
-- every replica at once (SKIP LOCKED).
CREATE FUNCTION expire_due_orders(p_batch integer) RETURNS integer LANGUAGE sql AS $$
    WITH due AS (
        SELECT id FROM orders WHERE status = 'pending' AND expires_at <= now()
        ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE orders o SET status = 'expired', updated_at = now() FROM due WHERE o.id = due.id RETURNING o.id
    ), events AS (
        INSERT INTO order_events (order_id, kind) SELECT id, 'expired' FROM expired RETURNING 1
    )
    SELECT count(*)::integer FROM events;
$$;

-- Every violation of the ledger invariants of DESIGN.md §4 (an empty result is a
-- whole ledger). Read-only; used by the test suites and the simulator.
CREATE FUNCTION ledger_invariant_violations() RETURNS TABLE (invariant integer, detail text)
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
    GROUP BY p.id HAVING count(t.id) <> 1;
$$;
