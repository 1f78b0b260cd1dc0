-- Rewards for points: a wallet's customer redeems points for a listed reward, and a
-- voucher so redeemed is taken at payment like a discount (docs/api.md, "Rewards").
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Redeems a reward for a wallet's customer: the points debited in the ledger, a unit of
-- stock taken, the redemption (and its voucher) recorded, points.redeemed queued for the
-- wallet. One round trip and one commit; a refusal moves nothing and is the stored
-- answer of its wallet_txn_id. The one lock order: the customer's points, then the
-- reward's stock (only a reward with a stock has a row to lock).
CREATE OR REPLACE FUNCTION reward_redeem(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea, p_txn_id text, p_request_sha256 bytea,
    p_redemption_id text, p_account_id text, p_reward_id text, p_voucher_code text, p_shard_seed integer
) RETURNS reward_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_begin record;
    v_reward rewards%ROWTYPE;
    v_points_account text;
    v_refused refusal;
    v_ltx bigint;
BEGIN
    v_begin := wallet_call_begin(p_wallet_id, p_message_id, p_message_sha256, p_txn_id, 'reward',
                                 p_request_sha256, p_account_id);
    IF (v_begin.answer).outcome IS NOT NULL THEN
        RETURN ROW((v_begin.answer).outcome, (v_begin.answer).http_status, (v_begin.answer).message,
                   (SELECT id FROM reward_redemptions WHERE wallet_id = p_wallet_id AND wallet_txn_id = p_txn_id)
                  )::reward_outcome;
    END IF;
    SELECT * INTO v_reward FROM rewards WHERE id = p_reward_id;
    IF v_reward.id IS NULL THEN  -- not stored: like an unknown account, a 404 is no answer to keep
        RETURN ROW('not_found', 404, 'no reward ' || p_reward_id, NULL)::reward_outcome;
    END IF;
    v_points_account := points_account(p_wallet_id, p_account_id, true);
    v_refused := reward_refusal(v_reward, v_points_account);
    IF v_refused.code IS NULL AND v_reward.stock_left IS NOT NULL THEN
        UPDATE rewards SET stock_left = stock_left - 1 WHERE id = p_reward_id AND stock_left > 0;
        IF NOT FOUND THEN
            v_refused := ROW('reward_out_of_stock', 422, 'reward ' || p_reward_id || ' has none left', NULL)::refusal;
        END IF;
    END IF;
    IF v_refused.code IS NOT NULL THEN
        PERFORM wallet_txn_fail(p_wallet_id, p_txn_id, 'reward', p_request_sha256, v_refused.code,
                                v_refused.http_status, v_refused.message, NULL, p_account_id, 0);
        RETURN ROW(v_refused.code, v_refused.http_status, v_refused.message, NULL)::reward_outcome;
    END IF;
    v_ltx := ledger_post('points', 'reward:' || p_redemption_id,
                         ARRAY[v_points_account, platform_account('points_liability', 'PTS')],
                         ARRAY[-v_reward.points_cost, v_reward.points_cost], ARRAY[0]::bigint[], p_shard_seed);
    PERFORM reward_record(v_reward, p_wallet_id, p_txn_id, p_request_sha256, p_redemption_id, p_account_id,
                          p_voucher_code, v_ltx);
    RETURN ROW('succeeded', 201, NULL, p_redemption_id)::reward_outcome;
END $$;

-- Why this reward cannot be redeemed now, or NULL: it was ended, or the customer has
-- fewer points than it costs (their points row is locked).
CREATE OR REPLACE FUNCTION reward_refusal(p_reward rewards, p_points_account text)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_reward.ended_at IS NOT NULL THEN
        RETURN ROW('reward_unavailable', 422, 'reward ' || p_reward.id || ' ended at ' || p_reward.ended_at, NULL)::refusal;
    ELSIF (SELECT balance_minor FROM account_balances WHERE account_id = p_points_account) < p_reward.points_cost THEN
        RETURN ROW('insufficient_funds', 422, 'the customer has fewer than ' || p_reward.points_cost || ' points',
                   NULL)::refusal;
    END IF;
    RETURN NULL;
END $$;

-- Records a redemption booked by reward_redeem: its row (a voucher's code, value and
-- expiry; a merchant's reward is the merchant's to fund, the platform's the
-- platform's), the stored answer, and the wallet's event.
CREATE OR REPLACE FUNCTION reward_record(
    p_reward rewards, p_wallet_id text, p_txn_id text, p_request_sha256 bytea, p_redemption_id text,
    p_account_id text, p_voucher_code text, p_ltx bigint
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_voucher boolean := p_reward.kind = 'voucher';
BEGIN
    INSERT INTO reward_redemptions (id, reward_id, wallet_id, wallet_txn_id, customer_account_id, customer_reference,
                                    points, ledger_transaction_id, voucher_code, merchant_id, value_minor, currency,
                                    funded_by, expires_at)
    SELECT p_redemption_id, p_reward.id, p_wallet_id, p_txn_id, p_account_id, a.customer_reference,
           p_reward.points_cost, p_ltx, CASE WHEN v_voucher THEN p_voucher_code END, p_reward.voucher_merchant_id,
           p_reward.value_minor, p_reward.currency,
           CASE WHEN v_voucher THEN CASE WHEN p_reward.merchant_id IS NULL THEN 'platform' ELSE 'merchant' END END,
           CASE WHEN v_voucher THEN now() + make_interval(days => p_reward.valid_days) END
    FROM accounts a WHERE a.id = p_account_id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome)
    VALUES (p_wallet_id, p_txn_id, 'reward', p_request_sha256, 200, 'succeeded');
    PERFORM wallet_event(p_wallet_id, 'points.redeemed', p_redemption_id);
END $$;

-- The voucher a payment names, its row locked: what it takes off p_due_minor (at most
-- all but one minor unit: nothing is sold for free), and who funds it; or why it cannot
-- be used: not this customer's or not for this shop and currency (voucher_invalid),
-- already used (voucher_used), past its expiry (voucher_expired).
CREATE OR REPLACE FUNCTION voucher_take(p_order orders, p_wallet_id text, p_account_id text, p_code text,
                                        p_due_minor bigint)
RETURNS voucher_offer LANGUAGE plpgsql AS $$
DECLARE
    v reward_redemptions%ROWTYPE;
BEGIN
    SELECT * INTO v FROM reward_redemptions WHERE voucher_code = p_code FOR UPDATE;
    IF v.id IS NULL OR v.wallet_id <> p_wallet_id
       OR v.customer_reference <> (SELECT customer_reference FROM accounts WHERE id = p_account_id) THEN
        RETURN ROW(NULL, 0, NULL, ROW('voucher_invalid', 422, 'no such voucher for this customer', NULL)::refusal)::voucher_offer;
    ELSIF v.merchant_id <> p_order.merchant_id OR v.currency <> p_order.currency THEN
        RETURN ROW(NULL, 0, NULL, ROW('voucher_invalid', 422, 'the voucher is for another shop or currency',
                                      NULL)::refusal)::voucher_offer;
    ELSIF v.status = 'used' THEN
        RETURN ROW(NULL, 0, NULL, ROW('voucher_used', 422, 'the voucher was used by payment ' || v.used_payment_id,
                                      NULL)::refusal)::voucher_offer;
    ELSIF v.status = 'expired' OR v.expires_at <= now() THEN
        RETURN ROW(NULL, 0, NULL, ROW('voucher_expired', 422, 'the voucher expired at ' || v.expires_at,
                                      NULL)::refusal)::voucher_offer;
    END IF;
    RETURN ROW(v.id, greatest(0, least(v.value_minor, p_due_minor - 1)), v.funded_by, NULL::refusal)::voucher_offer;
END $$;

-- Moves unused vouchers past their expiry to expired, at most p_batch at a time (they
-- return nothing: the points stay spent). Safe on every replica at once.
CREATE OR REPLACE FUNCTION expire_due_vouchers(p_batch integer) RETURNS integer LANGUAGE sql AS $$
    WITH due AS (
        SELECT id FROM reward_redemptions WHERE status = 'issued' AND expires_at <= now()
        ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE reward_redemptions r SET status = 'expired' FROM due WHERE r.id = due.id RETURNING 1
    )
    SELECT count(*)::integer FROM expired;
$$;
