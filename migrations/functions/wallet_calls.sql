-- What every signed wallet call shares: webhook-id replay detection, the
-- wallet_txn_id's stored answer, and the lookup of the account it acts on.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

CREATE OR REPLACE FUNCTION wallet_answer(p_code text, p_http_status integer, p_message text, p_rule text DEFAULT NULL)
RETURNS wallet_outcome LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_code, p_http_status, p_message, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, p_rule, NULL, NULL, NULL)::wallet_outcome;
$$;

-- The stored answer to (wallet, wallet_txn_id), or NULL when there is none.
CREATE OR REPLACE FUNCTION wallet_txn_answer(p_wallet_id text, p_txn_id text)
RETURNS wallet_outcome LANGUAGE sql STABLE AS $$
    SELECT ROW(t.outcome, t.http_status, t.outcome_message, p.id, coalesce(p.order_id, t.order_id),
               p.amount_minor, p.currency, p.discount_minor, p.charged_minor, p.charged_currency,
               p.fee_minor, p.points_used, p.points_earned, p.paid_at, t.outcome_rule, p.tip_minor,
               p.convenience_fee_minor, p.voucher_minor)::wallet_outcome
    FROM wallet_txns t LEFT JOIN payments p ON p.id = t.payment_id
    WHERE t.wallet_id = p_wallet_id AND t.wallet_txn_id = p_txn_id;
$$;

-- The one claim of a webhook-id (every signed wallet call makes it, in SQL or through
-- the gateway). verdict: 'new' (recorded now); 'repeat' (the very same request, for the
-- same wallet_txn_id if any: http_status and response are its stored answer, when one
-- was stored); 'replayed' (the id was used for something else).
CREATE OR REPLACE FUNCTION wallet_message_claim(
    p_wallet_id text, p_message_id text, p_request_sha256 bytea, p_txn_id text,
    OUT verdict text, OUT http_status smallint, OUT response jsonb
) LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_messages (wallet_id, message_id, request_sha256, wallet_txn_id)
    VALUES (p_wallet_id, p_message_id, p_request_sha256, p_txn_id)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        verdict := 'new';
        RETURN;
    END IF;
    SELECT 'repeat', m.http_status, m.response INTO verdict, http_status, response
    FROM wallet_messages m
    WHERE m.wallet_id = p_wallet_id AND m.message_id = p_message_id
      AND m.request_sha256 = p_request_sha256 AND m.wallet_txn_id IS NOT DISTINCT FROM p_txn_id;
    verdict := coalesce(verdict, 'replayed');
END $$;

-- The answer for a wallet_txn_id seen before: the stored one for the same request,
-- idempotency_conflict for another request. NULL when the id is new.
CREATE OR REPLACE FUNCTION wallet_txn_repeat(p_wallet_id text, p_txn_id text, p_kind text, p_request_sha256 bytea)
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

-- The opening checks every wallet_txn call shares, in docs/contract.md §6 order: the
-- webhook-id, a repeated wallet_txn_id, then the customer account belonging to the
-- wallet. Returns a final answer, or (when answer is NULL) the account (payer) and its
-- currency.
CREATE OR REPLACE FUNCTION wallet_call_begin(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_kind text, p_request_sha256 bytea, p_account_id text,
    OUT answer wallet_outcome, OUT account_currency text, OUT payer accounts
) LANGUAGE plpgsql AS $$
BEGIN
    IF (wallet_message_claim(p_wallet_id, p_message_id, p_message_sha256, p_txn_id)).verdict = 'replayed' THEN
        answer := wallet_answer('replayed_message', 409, 'this webhook-id was already used for another request');
        RETURN;
    END IF;
    answer := wallet_txn_repeat(p_wallet_id, p_txn_id, p_kind, p_request_sha256);
    IF answer.outcome IS NOT NULL THEN  -- (a composite IS NOT NULL only when every field is)
        RETURN;
    END IF;
    answer := NULL;
    SELECT * INTO payer FROM accounts WHERE id = p_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    account_currency := payer.currency;
    IF payer.id IS NULL THEN
        answer := wallet_answer('not_found', 404, 'no customer account ' || p_account_id || ' in this wallet');
    ELSIF payer.blocked_at IS NOT NULL THEN
        answer := wallet_txn_fail(p_wallet_id, p_txn_id, p_kind, p_request_sha256, 'account_blocked', 422,
            'customer account ' || p_account_id || ' is blocked', NULL, p_account_id, 0);
    END IF;
END $$;

-- Stores a definitive failure of a wallet_txn call, and puts a payment attempt on its
-- order's timeline (at most p_timeline_max entries per order). Moves no money.
-- p_rule names the risk rule that declined it, if one did.
CREATE OR REPLACE FUNCTION wallet_txn_fail(
    p_wallet_id text, p_txn_id text, p_kind text, p_request_sha256 bytea,
    p_code text, p_http_status integer, p_message text,
    p_order_id text, p_customer_account_id text, p_timeline_max integer, p_rule text DEFAULT NULL
) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, outcome_message,
                             order_id, outcome_rule)
    VALUES (p_wallet_id, p_txn_id, p_kind, p_request_sha256, p_http_status, p_code, p_message, p_order_id, p_rule);
    IF p_order_id IS NOT NULL THEN
        UPDATE orders SET failed_attempts = failed_attempts + 1
        WHERE id = p_order_id AND failed_attempts < p_timeline_max;
        IF FOUND THEN
            INSERT INTO order_events (order_id, kind, code, wallet_id, customer_account_id, rule)
            VALUES (p_order_id, 'payment_failed', p_code, p_wallet_id, p_customer_account_id, p_rule);
        END IF;
    END IF;
    RETURN wallet_answer(p_code, p_http_status, p_message, p_rule);
END $$;
