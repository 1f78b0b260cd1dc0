-- The double-entry ledger: accounts, balance shards, postings, and the six
-- invariants of docs/contract.md §4 as a query.
--
-- Every movement of money is one call of one function (pay_order, refund_order,
-- top_up, transfer, payout): one round trip and one commit per payment, with row
-- locks held only inside the server. Lock order, always: wallet_messages → orders →
-- the campaigns that would discount it (id order) → the debited account's
-- risk_counters → customers' points accounts (id order) → the debited account →
-- credited accounts (in leg order) → wallet_txns (ARCHITECTURE.md lists the legs).
-- No other order is used, so these functions do not deadlock each other (a
-- concurrency test holds them to it; the gateway retries a deadlock regardless).
-- A row others reference (an order, a wallet, a campaign) is locked FOR NO KEY UPDATE,
-- never FOR UPDATE: the rows that reference it (a quote, an order event, a campaign's
-- use, a payment's foreign keys) take FOR KEY SHARE, which NO KEY UPDATE lets through,
-- so they neither wait for a payment nor stall one.
--
-- Only the first leg may carry a floor the caller expects to fail (its debit answers
-- NULL: nothing moved). A later leg that would cross its floor is a bug: it raises
-- SQLSTATE QG001, the whole transaction rolls back, and the gateway answers 500 with
-- the cause in its log.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

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

-- Debits a sharded account: locks all its shards (in shard order), checks the total
-- against the floor, then takes from the fullest shards first.
CREATE OR REPLACE FUNCTION ledger_debit_shards(p_account text, p_amount bigint, p_floor bigint)
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
CREATE OR REPLACE FUNCTION ledger_open_account(
    p_id text, p_kind text, p_currency text, p_wallet_id text, p_merchant_id text,
    p_customer_reference text, p_shard_count smallint
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO accounts (id, kind, currency, wallet_id, merchant_id, customer_reference, shard_count)
    VALUES (p_id, p_kind, p_currency, p_wallet_id, p_merchant_id, p_customer_reference, p_shard_count);
    INSERT INTO account_balances (account_id, shard, must_stay_nonnegative)
    SELECT p_id, s, p_kind IN ('customer', 'merchant') FROM generate_series(0, p_shard_count - 1) s;
$$;

-- The fixed id of the platform's account of a kind in a currency.
CREATE OR REPLACE FUNCTION platform_account_id(p_kind text, p_currency text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'acc_' || p_kind || '_' || lower(p_currency);
$$;

-- The platform's own account of a kind in a currency (fee revenue, FX position, …),
-- opened on first use under its fixed id.
CREATE OR REPLACE FUNCTION ledger_platform_account(p_kind text, p_currency text, p_shard_count smallint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_id text := platform_account_id(p_kind, p_currency);
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

-- The platform's promotions, points-liability and FX-position accounts: 64 shards each,
-- the one place that number is written. Every sale that earns points credits the points
-- liability: with 16 shards, 16 concurrent payments often met on one row (bench/ab,
-- 64 against 16: B/A 1.05, each B above its neighbouring A). (The fee account's shards are the gateway's
-- setting, QRGATE_FEE_BALANCE_SHARDS: it opens it with each currency's first merchant.)
CREATE OR REPLACE FUNCTION platform_account(p_kind text, p_currency text) RETURNS text LANGUAGE sql AS $$
    SELECT ledger_platform_account(p_kind, p_currency, 64::smallint);
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
