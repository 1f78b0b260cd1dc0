-- Paying an order: currency conversion, campaigns, points and referrals, the
-- quote, and pay_order itself (docs/contract.md §6, one round trip and one commit).
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- The current rate from base to quote, or an all-NULL row.
-- (This file's functions that read a table are PL/pgSQL, which keeps its plans; a SQL
-- function that reads one is parsed and planned again on every call.)
CREATE OR REPLACE FUNCTION fx_current_rate(p_base text, p_quote text) RETURNS fx_rates LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_rate fx_rates%ROWTYPE;
BEGIN
    SELECT * INTO v_rate FROM fx_rates WHERE base = p_base AND quote = p_quote ORDER BY created_at DESC, id DESC LIMIT 1;
    RETURN v_rate;
END $$;

-- due × rate × (1 + spread_bps / 10000), computed exactly and rounded half-up once, in
-- minor units of p_to. At least one minor unit: nothing is sold for free by rounding.
CREATE OR REPLACE FUNCTION fx_charge(p_due_minor bigint, p_from text, p_to text, p_rate numeric, p_spread_bps integer)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN greatest(1, round(p_due_minor::numeric * p_rate * (10000 + p_spread_bps) / 10000
        * power(10::numeric, (SELECT minor_units FROM currencies WHERE code = p_to)
                           - (SELECT minor_units FROM currencies WHERE code = p_from))))::bigint;
END $$;

-- A decimal cap in minor units of a currency, rounded down: rounding never lets a charge pass a cap.
CREATE OR REPLACE FUNCTION minor_units_of(p_amount numeric, p_currency text) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN floor(p_amount * power(10::numeric, (SELECT minor_units FROM currencies WHERE code = p_currency)))::bigint;
END $$;

-- A campaign's discount on an order of p_amount_minor (0 when it does not apply).
CREATE OR REPLACE FUNCTION campaign_discount(p_campaign campaigns, p_amount_minor bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_campaign.kind
        WHEN 'percent_off' THEN least(round(p_amount_minor * p_campaign.percent_off / 100)::bigint,
                                      coalesce(p_campaign.max_discount_minor, p_amount_minor), p_amount_minor - 1)
        ELSE CASE WHEN p_amount_minor >= p_campaign.min_amount_minor THEN p_campaign.amount_off_minor ELSE 0 END
    END;
$$;

-- The best campaign the customer may use on the order. With p_lock, every campaign that
-- would discount this order is locked first, in id order (the one lock order: never an
-- order that depends on the amount), before budgets and the customer's uses are
-- counted, so the answer holds until this transaction ends; without (quotes), nothing
-- is locked or reserved.
CREATE OR REPLACE FUNCTION campaign_take(p_order orders, p_wallet_id text, p_customer_account_id text, p_lock boolean)
RETURNS campaign_offer LANGUAGE plpgsql AS $$
DECLARE
    v_candidates campaigns[];
    c campaigns%ROWTYPE;
    v_discount bigint;
    v_uses bigint;
    v_customer_reference text;
BEGIN
    IF p_lock THEN
        SELECT array_agg(l ORDER BY l.id) INTO v_candidates FROM (
            SELECT * FROM campaigns
            WHERE currency = p_order.currency AND (merchant_id IS NULL OR merchant_id = p_order.merchant_id)
              AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
              AND paused_at IS NULL AND ended_at IS NULL
              AND spent_minor < budget_minor AND campaign_discount(campaigns, p_order.amount_minor) > 0
            ORDER BY id FOR NO KEY UPDATE) l;
    ELSE
        SELECT array_agg(l ORDER BY l.id) INTO v_candidates FROM (
            SELECT * FROM campaigns
            WHERE currency = p_order.currency AND (merchant_id IS NULL OR merchant_id = p_order.merchant_id)
              AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR ends_at > now())
              AND paused_at IS NULL AND ended_at IS NULL
              AND spent_minor < budget_minor AND campaign_discount(campaigns, p_order.amount_minor) > 0) l;
    END IF;
    FOR c IN SELECT * FROM unnest(v_candidates) u
             ORDER BY campaign_discount(u, p_order.amount_minor) DESC, u.created_at, u.id LOOP
        v_discount := campaign_discount(c, p_order.amount_minor);
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
CREATE OR REPLACE FUNCTION campaign_record_use(p_offer campaign_offer, p_wallet_id text, p_customer_account_id text, p_payment_id text)
RETURNS void LANGUAGE plpgsql AS $$  -- (PL/pgSQL: keeps its plans, see webhook_enqueue)
BEGIN
    UPDATE campaigns SET spent_minor = spent_minor + p_offer.discount_minor WHERE id = p_offer.campaign_id;
    INSERT INTO campaign_uses (campaign_id, payment_id, wallet_id, customer_reference, discount_minor)
    SELECT p_offer.campaign_id, p_payment_id, p_wallet_id, a.customer_reference, p_offer.discount_minor
    FROM accounts a WHERE a.id = p_customer_account_id;
END $$;

-- Up to p_points points (100 per unit of p_currency) against p_due_minor: the value
-- (rounded down to a minor unit, at most what is due) and the points that buys.
CREATE OR REPLACE FUNCTION points_redemption(p_points bigint, p_currency text, p_due_minor bigint)
RETURNS points_redemption LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (WITH scale AS (SELECT power(10::numeric, minor_units) AS per_unit FROM currencies WHERE code = p_currency),
                 value AS (SELECT least(floor(p_points * per_unit / 100), p_due_minor)::bigint AS minor, per_unit FROM scale)
            SELECT ROW(ceil(minor * 100 / per_unit)::bigint, minor)::points_redemption FROM value);
END $$;

-- Points earned by charging p_charged_minor of p_currency at p_points_per_unit per whole
-- unit, rounded down (domain::pricing::points_earned is the same formula in Rust).
CREATE OR REPLACE FUNCTION points_earned(p_charged_minor bigint, p_currency text, p_points_per_unit numeric)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT floor(p_charged_minor / power(10::numeric, c.minor_units) * p_points_per_unit)::bigint
            FROM currencies c WHERE c.code = p_currency);
END $$;

-- The fee on what a merchant is credited, at its rate in basis points, rounded half up
-- (integer arithmetic on non-negatives; domain::pricing::fee_minor in Rust).
CREATE OR REPLACE FUNCTION fee_for(p_credited_minor bigint, p_fee_rate_bps integer)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT (p_credited_minor * p_fee_rate_bps * 2 + 10000) / 20000;
$$;

-- The customer's points account (opened when first needed), its balance row locked.
CREATE OR REPLACE FUNCTION points_account(p_wallet_id text, p_customer_account_id text, p_lock boolean)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_reference text;
    v_id text;
BEGIN
    SELECT customer_reference INTO v_reference FROM accounts WHERE id = p_customer_account_id;
    SELECT id INTO v_id FROM accounts
    WHERE kind = 'customer' AND wallet_id = p_wallet_id AND customer_reference = v_reference AND currency = 'PTS';
    IF v_id IS NULL THEN
        v_id := 'acc_' || substr(md5(gen_random_uuid()::text), 1, 20);
        INSERT INTO accounts (id, kind, currency, wallet_id, customer_reference, shard_count, referral_code, referred_by_code)
        SELECT v_id, 'customer', 'PTS', p_wallet_id, v_reference, 1, referral_code, referred_by_code
        FROM accounts WHERE id = p_customer_account_id
        ON CONFLICT (wallet_id, customer_reference, currency) WHERE kind = 'customer' DO NOTHING;
        IF FOUND THEN
            INSERT INTO account_balances (account_id, shard, must_stay_nonnegative) VALUES (v_id, 0, true);
        ELSE
            SELECT id INTO v_id FROM accounts
            WHERE kind = 'customer' AND wallet_id = p_wallet_id AND customer_reference = v_reference AND currency = 'PTS';
        END IF;
    END IF;
    IF p_lock THEN
        PERFORM 1 FROM account_balances WHERE account_id = v_id FOR UPDATE;
    END IF;
    RETURN v_id;
END $$;

-- The referral a payment would reward: a referred customer's first payment of at least
-- the minimum, once each referral and at most rewards_per_referrer_max times a
-- referrer. Called before the payment moves money: it locks both customers' points
-- rows (in account id order, the one lock order's "customer's points"), which
-- serialize each referral and each referrer's cap under races. NULL: nothing to reward.
CREATE OR REPLACE FUNCTION referral_due(p_wallet_id text, p_customer_account_id text, p_order orders)
RETURNS referral_plan LANGUAGE plpgsql AS $$
DECLARE
    s referral_settings%ROWTYPE;
    v_referee accounts%ROWTYPE;
    v_referrer accounts%ROWTYPE;
    v_plan referral_plan;
BEGIN
    SELECT * INTO s FROM referral_settings;
    SELECT * INTO v_referee FROM accounts WHERE id = p_customer_account_id;
    IF v_referee.referred_by_code IS NULL OR s.bonus_points = 0
       OR p_order.amount_minor < s.min_payment_units * power(10::numeric, (SELECT minor_units FROM currencies WHERE code = p_order.currency))
       OR EXISTS (SELECT 1 FROM referral_rewards WHERE wallet_id = p_wallet_id AND referee_reference = v_referee.customer_reference) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_referrer FROM accounts
    WHERE kind = 'customer' AND wallet_id = p_wallet_id AND referral_code = v_referee.referred_by_code
      AND customer_reference <> v_referee.customer_reference
    ORDER BY created_at LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_plan.referee_points := points_account(p_wallet_id, p_customer_account_id, false);
    v_plan.referrer_points := points_account(p_wallet_id, v_referrer.id, false);
    PERFORM 1 FROM account_balances WHERE account_id IN (v_plan.referee_points, v_plan.referrer_points)
    ORDER BY account_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM referral_rewards WHERE wallet_id = p_wallet_id AND referee_reference = v_referee.customer_reference)
       OR (SELECT count(*) FROM referral_rewards WHERE wallet_id = p_wallet_id AND referrer_reference = v_referrer.customer_reference)
          >= s.rewards_per_referrer_max THEN
        RETURN NULL;
    END IF;
    v_plan.referee_reference := v_referee.customer_reference;
    v_plan.referrer_reference := v_referrer.customer_reference;
    v_plan.bonus_points := s.bonus_points;
    RETURN v_plan;
END $$;

-- Books a referral planned (and locked) by referral_due, once the payment exists.
CREATE OR REPLACE FUNCTION referral_reward(p_wallet_id text, p_plan referral_plan, p_payment_id text, p_shard_seed integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO referral_rewards (wallet_id, referee_reference, referrer_reference, payment_id, bonus_points)
    VALUES (p_wallet_id, p_plan.referee_reference, p_plan.referrer_reference, p_payment_id, p_plan.bonus_points)
    ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM ledger_post('points', 'referral:' || p_payment_id,
            ARRAY[platform_account('points_liability', 'PTS'), p_plan.referee_points, p_plan.referrer_points],
            ARRAY[-2 * p_plan.bonus_points, p_plan.bonus_points, p_plan.bonus_points], ARRAY[]::bigint[], p_shard_seed);
        PERFORM wallet_event(p_wallet_id, 'referral.rewarded', p_payment_id);
    END IF;
END $$;

-- The one pricing chain of quotes and payments: what paying p_order from an account in
-- p_account_currency costs. The best campaign (its rows locked with p_lock), a voucher, the points
-- redeemed (1/100 of a unit each, at most what is due; the platform funds them), what
-- is due in the order's currency (with the tip and the order's convenience fee), and
-- what the account is charged: across currencies,
-- what is due at p_rate_id's rate (a quote's) or else the current one, plus spread,
-- rounded once. Across currencies without a rate, rate.id is NULL and the charge is
-- left in the order's currency: the caller answers currency_mismatch.
CREATE OR REPLACE FUNCTION price_order(
    p_order orders, p_wallet_id text, p_account_id text, p_account_currency text,
    p_use_points bigint, p_tip_minor bigint, p_voucher_code text, p_rate_id text, p_lock boolean
) RETURNS order_price LANGUAGE plpgsql AS $$
DECLARE
    v_price order_price;
    v_rate fx_rates%ROWTYPE;
BEGIN
    v_price.offer := campaign_take(p_order, p_wallet_id, p_account_id, p_lock);
    v_price.due_minor := p_order.amount_minor - coalesce((v_price.offer).discount_minor, 0);
    IF p_voucher_code IS NOT NULL THEN  -- (its row locked: once per voucher)
        v_price.voucher := voucher_take(p_order, p_wallet_id, p_account_id, p_voucher_code, v_price.due_minor);
        v_price.due_minor := v_price.due_minor - (v_price.voucher).value_minor;
    END IF;
    v_price.redeem := CASE WHEN p_use_points > 0 THEN points_redemption(p_use_points, p_order.currency, v_price.due_minor)
                           ELSE ROW(0, 0)::points_redemption END;
    -- The tip and the convenience fee come on top, after discounts and points (which
    -- take off the amount only).
    v_price.tip_minor := coalesce(p_tip_minor, 0);
    v_price.convenience_fee_minor := p_order.convenience_fee_minor;
    v_price.due_minor := v_price.due_minor - (v_price.redeem).value_minor
                         + v_price.tip_minor + v_price.convenience_fee_minor;
    v_price.charged_minor := v_price.due_minor;
    v_price.charged_currency := p_order.currency;
    IF p_account_currency <> p_order.currency THEN
        IF p_rate_id IS NOT NULL THEN
            SELECT * INTO v_rate FROM fx_rates WHERE id = p_rate_id;
        ELSE
            v_rate := fx_current_rate(p_order.currency, p_account_currency);
        END IF;
        v_price.rate := v_rate;
        IF v_rate.id IS NOT NULL THEN
            v_price.charged_minor := fx_charge(v_price.due_minor, p_order.currency, p_account_currency,
                                               v_rate.rate, v_rate.spread_bps);
            v_price.charged_currency := p_account_currency;
        END IF;
    END IF;
    RETURN v_price;
END $$;

-- What paying an order from an account would charge, locked for p_ttl_seconds.
-- Reserves nothing: the payment checks everything again.
CREATE OR REPLACE FUNCTION quote_order(
    p_wallet_id text, p_quote_id text, p_order_id text, p_qr_payload text, p_customer_account_id text,
    p_ttl_seconds integer, p_use_points bigint
) RETURNS quote_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_account_currency text;
    v_order orders%ROWTYPE;
    v_rate fx_rates%ROWTYPE;
    v_charged bigint;
    v_price order_price;
    v_expires timestamptz := now() + make_interval(secs => p_ttl_seconds);
BEGIN
    SELECT currency INTO v_account_currency FROM accounts
    WHERE id = p_customer_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no customer account ' || p_customer_account_id || ' in this wallet',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    SELECT * INTO v_order FROM orders WHERE id = p_order_id;
    IF v_order.id IS NULL OR v_order.qr_payload <> p_qr_payload THEN
        RETURN ROW('invalid_qr', 422, 'the QR payload was not issued by this gateway',
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    IF v_order.status <> 'pending' OR order_due(v_order.status, v_order.expires_at) THEN
        RETURN ROW(CASE WHEN v_order.status IN ('pending', 'expired') THEN 'order_expired'
                        WHEN v_order.status = 'closed' THEN 'order_not_payable' ELSE 'already_paid' END,
                   CASE WHEN v_order.status IN ('pending', 'expired') THEN 422 ELSE 409 END,
                   'order ' || v_order.id || ' cannot be paid', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    v_price := price_order(v_order, p_wallet_id, p_customer_account_id, v_account_currency, p_use_points, NULL, NULL,
                           NULL, false);
    IF v_account_currency <> v_order.currency AND (v_price.rate).id IS NULL THEN
        RETURN ROW('currency_mismatch', 422, 'no exchange rate from ' || v_order.currency || ' to ' || v_account_currency,
                   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::quote_outcome;
    END IF;
    v_rate := v_price.rate;
    v_charged := v_price.charged_minor;
    INSERT INTO quotes (id, wallet_id, order_id, customer_account_id, fx_rate_id, charged_minor, charged_currency, expires_at)
    VALUES (p_quote_id, p_wallet_id, v_order.id, p_customer_account_id, v_rate.id, v_charged, v_account_currency, v_expires);
    RETURN ROW('succeeded', 200, NULL, p_quote_id, v_order.id, v_order.amount_minor, v_order.currency, v_charged,
               v_account_currency, v_rate.rate, v_rate.spread_bps, v_expires, coalesce((v_price.offer).discount_minor, 0),
               (v_price.redeem).points)::quote_outcome;
END $$;

-- Pays an order: the steps below, in order, each with one job (ARCHITECTURE.md, "A
-- payment's path"). One round trip and one commit; a refusal at any step moves no
-- money and is stored as the answer to the wallet_txn_id.
CREATE OR REPLACE FUNCTION pay_order(p payment_request) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_begin record;
    v_order orders%ROWTYPE;
    v_merchant merchants%ROWTYPE;
    v_quote quotes%ROWTYPE;
    v_price order_price;
    v_risk record;
    v_points record;
    v_legs ledger_legs;
    v_refused refusal;
BEGIN
    v_begin := wallet_call_begin(p.wallet_id, p.message_id, p.message_sha256, p.txn_id, 'payment',
                                 p.request_sha256, p.customer_account_id);
    IF (v_begin.answer).outcome IS NOT NULL THEN
        RETURN v_begin.answer;
    END IF;
    IF p.static_code_id IS NOT NULL THEN  -- (no call at all for an order's own code)
        v_refused := static_code_refusal(p);
    END IF;
    IF v_refused.code IS NULL THEN
        v_order := payment_order(p);
        SELECT * INTO v_merchant FROM merchants WHERE id = v_order.merchant_id;
        IF p.quote_id IS NOT NULL THEN
            SELECT * INTO v_quote FROM quotes WHERE id = p.quote_id AND wallet_id = p.wallet_id
                AND order_id = v_order.id AND customer_account_id = p.customer_account_id;
        END IF;
        v_refused := coalesce(payment_order_refusal(p, v_order, v_merchant, v_quote),  -- (a tip's only with one)
                              CASE WHEN p.tip_minor > 0 THEN payment_tip_refusal(p, v_order, v_merchant) END);
    END IF;
    IF v_refused.code IS NULL THEN
        -- Campaign rows locked: a concurrent payment cannot overspend a budget or a
        -- customer's uses. At the quote's rate when there is a quote.
        v_price := price_order(v_order, p.wallet_id, p.customer_account_id, v_begin.account_currency,
                               p.use_points, p.tip_minor, p.voucher_code, v_quote.fx_rate_id, true);
        v_refused := payment_price_refusal(p, v_order, v_begin.account_currency, v_price);
    END IF;
    IF v_refused.code IS NULL THEN
        v_risk := risk_check(p.wallet_id, p.customer_account_id, v_price.charged_currency, v_price.charged_minor, p.mfa);
        v_refused := ROW(v_risk.code, 422, v_risk.message, v_risk.rule)::refusal;
    END IF;
    IF v_refused.code IS NULL THEN
        v_points := payment_points(p, v_order, v_merchant, v_begin.payer, v_price);
        v_refused := v_points.refused;
    END IF;
    IF v_refused.code IS NULL THEN
        v_legs := payment_legs(p, v_order, v_merchant, v_price, v_points.points);
        v_legs.ledger_transaction_id := ledger_post('payment', p.payment_id, v_legs.accounts, v_legs.amounts,
                                                    ARRAY[0]::bigint[], p.shard_seed);
        IF v_legs.ledger_transaction_id IS NULL THEN
            v_refused := ROW('insufficient_funds', 422, 'the customer account balance is too low', NULL)::refusal;
        END IF;
    END IF;
    IF v_refused.code IS NOT NULL THEN
        RETURN payment_fail(p, v_order.id, v_refused);
    END IF;
    PERFORM risk_record(p.customer_account_id, v_price.charged_minor, p.mfa, v_risk.recent_kept);
    RETURN payment_record(p, v_order, v_merchant, v_quote.id, v_price, v_points.points, v_legs);
END $$;

-- Stores a refused payment's answer (wallet_txn_fail). The order a static code made for
-- it is closed: nobody else can pay it, and the shop sees the attempt and its reason.
CREATE OR REPLACE FUNCTION payment_fail(p payment_request, p_order_id text, p_refused refusal)
RETURNS wallet_outcome LANGUAGE plpgsql AS $$
BEGIN
    IF p.static_code_id IS NOT NULL AND p_order_id IS NOT NULL THEN
        UPDATE orders SET status = 'closed', updated_at = now() WHERE id = p_order_id AND status = 'pending';
        IF FOUND THEN
            INSERT INTO order_events (order_id, kind) VALUES (p_order_id, 'closed');
        END IF;
    END IF;
    RETURN wallet_txn_fail(p.wallet_id, p.txn_id, 'payment', p.request_sha256, p_refused.code,
        p_refused.http_status, p_refused.message, p_order_id, p.customer_account_id, p.timeline_max, p_refused.rule);
END $$;

-- Why a payment through a static code cannot make its order, or NULL (always NULL for
-- an order's own code): the code is not this gateway's or not this payload, it was
-- revoked, the amount is in another currency, or the shop is blocked.
CREATE OR REPLACE FUNCTION static_code_refusal(p payment_request) RETURNS refusal LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_code static_codes%ROWTYPE;
BEGIN
    IF p.static_code_id IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO v_code FROM static_codes WHERE id = p.static_code_id;
    IF v_code.id IS NULL OR v_code.qr_payload <> p.qr_payload THEN
        RETURN ROW('invalid_qr', 422, 'the QR payload was not issued by this gateway', NULL)::refusal;
    ELSIF v_code.revoked_at IS NOT NULL THEN
        RETURN ROW('static_code_revoked', 422, 'the shop revoked this code at ' || v_code.revoked_at, NULL)::refusal;
    ELSIF p.currency <> v_code.currency THEN
        RETURN ROW('currency_mismatch', 422,
                   'the code is in ' || v_code.currency || ', the request says ' || p.currency, NULL)::refusal;
    ELSIF EXISTS (SELECT 1 FROM merchants WHERE id = v_code.merchant_id AND blocked_at IS NOT NULL) THEN
        RETURN ROW('account_blocked', 422, 'merchant ' || v_code.merchant_id || ' is blocked', NULL)::refusal;
    END IF;
    RETURN NULL;
END $$;

-- The order a payment names, locked, and written expired if it is due. An all-NULL row:
-- no such order. (A payload other than the order's is refused by payment_order_refusal.)
-- Through a static code (static_code_refusal passed), the order is made first: for the
-- amount the customer entered, its reference its own id, its terminal the code's name.
CREATE OR REPLACE FUNCTION payment_order(p payment_request) RETURNS orders LANGUAGE plpgsql AS $$
DECLARE
    v_order orders%ROWTYPE;
BEGIN
    IF p.static_code_id IS NOT NULL THEN
        INSERT INTO orders (id, merchant_id, status, amount_minor, currency, merchant_reference, terminal_id,
                            qr_payload, fee_rate_bps, expires_at, static_code_id)
        SELECT p.order_id, c.merchant_id, 'pending', p.amount_minor, p.currency, p.order_id, c.name,
               c.qr_payload, m.fee_rate_bps, now() + interval '5 minutes', c.id
        FROM static_codes c JOIN merchants m ON m.id = c.merchant_id WHERE c.id = p.static_code_id;
    END IF;
    IF p.order_id IS NOT NULL THEN
        SELECT * INTO v_order FROM orders WHERE id = p.order_id FOR NO KEY UPDATE;
    END IF;
    IF v_order.qr_payload = p.qr_payload AND order_due(v_order.status, v_order.expires_at) THEN
        UPDATE orders SET status = 'expired', updated_at = now() WHERE id = v_order.id;
        INSERT INTO order_events (order_id, kind) VALUES (v_order.id, 'expired');
        v_order.status := 'expired';
    END IF;
    RETURN v_order;
END $$;

-- Why this request cannot pay this order, or NULL: the QR is not ours, the order is not
-- payable, its merchant is blocked, the currency or amount differ, the quote is missing
-- or expired.
CREATE OR REPLACE FUNCTION payment_order_refusal(p payment_request, p_order orders, p_merchant merchants, p_quote quotes)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_order.id IS NULL OR p_order.qr_payload <> p.qr_payload THEN
        RETURN ROW('invalid_qr', 422, 'the QR payload was not issued by this gateway', NULL)::refusal;
    ELSIF p_order.status <> 'pending' THEN
        RETURN ROW(CASE p_order.status WHEN 'expired' THEN 'order_expired' WHEN 'closed' THEN 'order_not_payable'
                                       ELSE 'already_paid' END,
                   CASE p_order.status WHEN 'expired' THEN 422 ELSE 409 END,
                   'order ' || p_order.id || ' is ' || p_order.status, NULL)::refusal;
    ELSIF p_merchant.blocked_at IS NOT NULL THEN
        RETURN ROW('account_blocked', 422, 'merchant ' || p_order.merchant_id || ' is blocked', NULL)::refusal;
    ELSIF p.currency <> p_order.currency THEN
        RETURN ROW('currency_mismatch', 422,
                   'the order is in ' || p_order.currency || ', the request says ' || p.currency, NULL)::refusal;
    ELSIF p.amount_minor <> p_order.amount_minor THEN
        RETURN ROW('amount_mismatch', 422, 'the request amount differs from the order amount', NULL)::refusal;
    ELSIF p.quote_id IS NOT NULL AND p_quote.id IS NULL THEN
        RETURN ROW('quote_expired', 422, 'no such quote for this order and account', NULL)::refusal;
    ELSIF p.quote_id IS NOT NULL AND p_quote.expires_at <= now() THEN
        RETURN ROW('quote_expired', 422, 'the quote expired at ' || p_quote.expires_at, NULL)::refusal;
    END IF;
    RETURN NULL;
END $$;

-- Why this order takes no such tip, or NULL (always NULL without a tip): it does not
-- ask for one (tip_policy is not prompt), or the tip is above the shop's cap
-- (tip_max_percent of the amount).
CREATE OR REPLACE FUNCTION payment_tip_refusal(p payment_request, p_order orders, p_merchant merchants)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_cap bigint;
BEGIN
    IF coalesce(p.tip_minor, 0) = 0 THEN
        RETURN NULL;
    END IF;
    v_cap := tip_cap_for(p_order.amount_minor, p_merchant.tip_max_percent);
    IF p_order.tip_policy <> 'prompt' THEN
        RETURN ROW('tip_not_allowed', 422, 'order ' || p_order.id || ' takes no tip (its tip_policy is '
                   || p_order.tip_policy || ')', NULL)::refusal;
    ELSIF p.tip_minor > v_cap THEN
        RETURN ROW('tip_exceeds_cap', 422, 'the shop takes tips of at most ' || p_merchant.tip_max_percent
                   || '% of the amount: ' || v_cap || ' minor units here', NULL)::refusal;
    END IF;
    RETURN NULL;
END $$;

-- The largest tip on an order of p_amount_minor at p_max_percent of it, rounded down
-- (domain::tips::tip_cap_minor).
CREATE OR REPLACE FUNCTION tip_cap_for(p_amount_minor bigint, p_max_percent integer)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT floor(p_amount_minor::numeric * p_max_percent / 100)::bigint;
$$;

-- Why the price cannot be charged, or NULL: the voucher cannot be used, no exchange
-- rate into the paying account's currency, or a charge above the wallet's max_charged.
CREATE OR REPLACE FUNCTION payment_price_refusal(p payment_request, p_order orders, p_account_currency text,
                                                 p_price order_price)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF ((p_price.voucher).refused).code IS NOT NULL THEN
        RETURN (p_price.voucher).refused;
    ELSIF p_account_currency <> p_order.currency AND (p_price.rate).id IS NULL THEN
        RETURN ROW('currency_mismatch', 422, 'no exchange rate from ' || p_order.currency || ' to '
                   || p_account_currency || ' (the paying account''s currency)', NULL)::refusal;
    ELSIF p.max_charged IS NOT NULL AND p_price.charged_minor > minor_units_of(p.max_charged, p_price.charged_currency) THEN
        RETURN ROW('charge_exceeds_max', 422, 'the charge exceeds max_charged', NULL)::refusal;
    END IF;
    RETURN NULL;
END $$;

-- The points a payment moves: what it earns at the merchant, the referral it completes,
-- and the customer's points account, whose balance row is locked (before any money: the
-- one lock order) whenever the payment redeems or earns points. refused: the customer
-- has fewer points than the payment redeems.
CREATE OR REPLACE FUNCTION payment_points(p payment_request, p_order orders, p_merchant merchants, p_payer accounts,
                                          p_price order_price, OUT points payment_points, OUT refused refusal)
LANGUAGE plpgsql AS $$
DECLARE
    v_balance bigint;
BEGIN
    points.earned := points_earned(p_price.charged_minor, p_price.charged_currency, p_merchant.points_per_unit);
    IF p_payer.referred_by_code IS NOT NULL THEN
        points.referral := referral_due(p.wallet_id, p.customer_account_id, p_order);
    END IF;
    IF (p_price.redeem).points > 0 OR points.earned > 0 THEN
        points.account_id := points_account(p.wallet_id, p.customer_account_id, false);
        SELECT balance_minor INTO v_balance FROM account_balances WHERE account_id = points.account_id FOR UPDATE;
        IF (p_price.redeem).points > v_balance THEN
            refused := ROW('insufficient_funds', 422,
                           'the customer has fewer than ' || (p_price.redeem).points || ' points', NULL)::refusal;
        END IF;
    END IF;
END $$;

-- A payment's legs, in the one lock order: customer, merchant, fee, FX positions (the
-- payer's side first), promotions, points. The merchant is credited the amount less a
-- discount or voucher it funds, less the fee on that (fee_for), and then the tip and the
-- convenience fee whole. The platform funds its own
-- discounts and the points redeemed (promotions); points earned are a liability.
CREATE OR REPLACE FUNCTION payment_legs(p payment_request, p_order orders, p_merchant merchants,
                                        p_price order_price, p_points payment_points)
RETURNS ledger_legs LANGUAGE plpgsql AS $$
DECLARE
    v_offer campaign_offer := p_price.offer;
    v_voucher voucher_offer := p_price.voucher;
    v_redeem points_redemption := p_price.redeem;
    v_platform_discount bigint := CASE WHEN v_offer.funded_by = 'platform' THEN v_offer.discount_minor ELSE 0 END
                                  + CASE WHEN v_voucher.funded_by = 'platform' THEN v_voucher.value_minor ELSE 0 END;
    v_credited bigint := p_order.amount_minor
                         - CASE WHEN v_offer.funded_by = 'merchant' THEN v_offer.discount_minor ELSE 0 END
                         - CASE WHEN v_voucher.funded_by = 'merchant' THEN v_voucher.value_minor ELSE 0 END;
    v_liability text;
    v_legs ledger_legs;
BEGIN
    v_legs.fee_minor := fee_for(v_credited, p_order.fee_rate_bps);
    v_legs.accounts := ARRAY[p.customer_account_id, p_merchant.account_id, platform_account_id('fee', p_order.currency)];
    v_legs.amounts := ARRAY[-p_price.charged_minor, v_credited - v_legs.fee_minor, v_legs.fee_minor];
    -- The tip and the convenience fee: the merchant's whole, each on a leg of its own
    -- (its balance row is locked by the leg before).
    IF p_price.tip_minor > 0 THEN
        v_legs.accounts := v_legs.accounts || p_merchant.account_id;
        v_legs.amounts := v_legs.amounts || p_price.tip_minor;
    END IF;
    IF p_price.convenience_fee_minor > 0 THEN
        v_legs.accounts := v_legs.accounts || p_merchant.account_id;
        v_legs.amounts := v_legs.amounts || p_price.convenience_fee_minor;
    END IF;
    IF p_price.charged_currency <> p_order.currency THEN
        v_legs.accounts := v_legs.accounts || platform_account('fx_position', p_price.charged_currency)
                                           || platform_account('fx_position', p_order.currency);
        v_legs.amounts := v_legs.amounts || p_price.charged_minor || -p_price.due_minor;
    END IF;
    IF v_platform_discount + v_redeem.value_minor > 0 THEN
        v_legs.accounts := v_legs.accounts || platform_account('promotions', p_order.currency);
        v_legs.amounts := v_legs.amounts || -(v_platform_discount + v_redeem.value_minor);
    END IF;
    -- Points redeemed and earned are legs of the payment's own ledger transaction (PTS
    -- balances on their own): one ledger transaction per sale.
    IF p_points.account_id IS NOT NULL THEN
        v_liability := platform_account('points_liability', 'PTS');
        v_legs.accounts := v_legs.accounts || p_points.account_id || v_liability || p_points.account_id || v_liability;
        v_legs.amounts := v_legs.amounts || -v_redeem.points || v_redeem.points || p_points.earned || -p_points.earned;
    END IF;
    RETURN v_legs;
END $$;

-- Records a booked payment: its row, the referral and campaign use it completes, the
-- order paid, the wallet's answer stored for repeats, the merchant's webhook and the
-- wallet's points events queued.
CREATE OR REPLACE FUNCTION payment_record(p payment_request, p_order orders, p_merchant merchants, p_quote_id text,
                                          p_price order_price, p_points payment_points, p_legs ledger_legs)
RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_offer campaign_offer := p_price.offer;
    v_discount bigint := coalesce((p_price.offer).discount_minor, 0);
    v_earned bigint := coalesce(p_points.earned, 0);
    v_voucher bigint := coalesce((p_price.voucher).value_minor, 0);
BEGIN
    INSERT INTO payments (id, order_id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency,
                          charged_minor, charged_currency, fee_minor, ledger_transaction_id, paid_at,
                          fx_rate_id, fx_rate, fx_spread_bps, quote_id, discount_minor, campaign_id, discount_funded_by,
                          points_used, points_value_minor, points_earned, tip_minor, convenience_fee_minor,
                          voucher_redemption_id, voucher_minor, voucher_funded_by)
    VALUES (p.payment_id, p_order.id, p.wallet_id, p.txn_id, p.customer_account_id, p_order.amount_minor,
            p_order.currency, p_price.charged_minor, p_price.charged_currency, p_legs.fee_minor,
            p_legs.ledger_transaction_id, now(), (p_price.rate).id, (p_price.rate).rate, (p_price.rate).spread_bps,
            p_quote_id, v_discount, v_offer.campaign_id, v_offer.funded_by, (p_price.redeem).points,
            (p_price.redeem).value_minor, v_earned, p_price.tip_minor, p_price.convenience_fee_minor,
            (p_price.voucher).redemption_id, v_voucher, (p_price.voucher).funded_by);
    IF (p_price.voucher).redemption_id IS NOT NULL THEN
        UPDATE reward_redemptions SET status = 'used', used_payment_id = p.payment_id
        WHERE id = (p_price.voucher).redemption_id;
    END IF;
    IF (p_points.referral).bonus_points IS NOT NULL THEN
        PERFORM referral_reward(p.wallet_id, p_points.referral, p.payment_id, p.shard_seed);
    END IF;
    IF v_offer.campaign_id IS NOT NULL THEN
        PERFORM campaign_record_use(v_offer, p.wallet_id, p.customer_account_id, p.payment_id);
    END IF;
    IF v_earned > 0 OR (p_price.redeem).points > 0 THEN
        PERFORM wallet_payment_events(p.wallet_id, p.payment_id, v_earned, (p_price.redeem).points);
    END IF;
    UPDATE orders SET status = 'paid', paid_at = now(), payment_id = p.payment_id, updated_at = now(),
                      discount_minor = v_discount + v_voucher, charged_minor = p_price.charged_minor,
                      charged_currency = p_price.charged_currency, tip_minor = p_price.tip_minor
    WHERE id = p_order.id;
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome, payment_id, order_id)
    VALUES (p.wallet_id, p.txn_id, 'payment', p.request_sha256, 200, 'succeeded', p.payment_id, p_order.id);
    IF p_merchant.webhook_url IS NOT NULL THEN
        PERFORM webhook_enqueue(p_order.merchant_id, 'order.paid', p_order.id);
    END IF;
    RETURN ROW('succeeded', 200, NULL, p.payment_id, p_order.id, p_order.amount_minor, p_order.currency, v_discount,
               p_price.charged_minor, p_price.charged_currency, p_legs.fee_minor, (p_price.redeem).points, v_earned,
               now(), NULL, p_price.tip_minor, p_price.convenience_fee_minor, v_voucher)::wallet_outcome;
END $$;

-- Moves due pending orders to expired, at most p_batch at a time; safe to run on
-- every replica at once (SKIP LOCKED).
CREATE OR REPLACE FUNCTION expire_due_orders(p_batch integer) RETURNS integer LANGUAGE sql AS $$
    WITH due AS (
        SELECT id FROM orders WHERE status = 'pending' AND order_due(status, expires_at)
        ORDER BY expires_at LIMIT p_batch FOR UPDATE SKIP LOCKED
    ), expired AS (
        UPDATE orders o SET status = 'expired', updated_at = now() FROM due WHERE o.id = due.id RETURNING o.id
    ), events AS (
        INSERT INTO order_events (order_id, kind) SELECT id, 'expired' FROM expired RETURNING 1
    )
    SELECT count(*)::integer FROM events;
$$;
