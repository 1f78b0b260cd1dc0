-- Money in, between and out of accounts: top-ups, transfers, payouts.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Money enters a customer's account from the wallet's funding account, which may go
-- negative down to the operator's limit for that wallet and currency.
CREATE OR REPLACE FUNCTION top_up(
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

-- Why a transfer from p_from_wallet to an account of p_to_wallet cannot go, or NULL:
-- across wallets, both must take part in the currency (cross_provider_transfer_limits)
-- and the amount be within each one's maximum.
CREATE OR REPLACE FUNCTION cross_provider_refusal(p_from_wallet text, p_to_wallet text, p_currency text,
                                                  p_amount_minor bigint)
RETURNS refusal LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_takers integer;
    v_max bigint;
BEGIN
    IF p_from_wallet = p_to_wallet THEN
        RETURN NULL;
    END IF;
    SELECT count(*), min(transfer_max_minor) INTO v_takers, v_max FROM cross_provider_transfer_limits
    WHERE wallet_id IN (p_from_wallet, p_to_wallet) AND currency = p_currency;
    IF v_takers < 2 THEN
        RETURN ROW('transfer_not_allowed', 422, 'transfers in ' || p_currency || ' between wallets '
                   || p_from_wallet || ' and ' || p_to_wallet || ' are not allowed by both', NULL)::refusal;
    ELSIF p_amount_minor > v_max THEN
        RETURN ROW('limit_exceeded', 422, 'above the most a transfer between these wallets may move, '
                   || money_text(v_max, p_currency), 'cross_provider_max')::refusal;
    END IF;
    RETURN NULL;
END $$;

-- Moves money between two customer accounts: of one wallet, or of two wallets that both
-- take part in transfers across providers (cross_provider_refusal). The paying side's
-- risk limits and SCA apply as to any transfer. Both balance rows are locked in
-- account-id order first, so opposite transfers cannot deadlock.
CREATE OR REPLACE FUNCTION transfer(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_request_sha256 bytea,
    p_from_account_id text, p_to_account_id text, p_amount_minor bigint, p_currency text, p_mfa boolean
) RETURNS wallet_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_begin record;
    v_to accounts%ROWTYPE;
    v_ltx bigint;
    v_risk record;
    v_refused refusal;
BEGIN
    v_begin := wallet_call_begin(p_wallet_id, p_message_id, p_message_sha256, p_txn_id, 'transfer',
                                 p_request_sha256, p_from_account_id);
    IF (v_begin.answer).outcome IS NOT NULL THEN
        RETURN v_begin.answer;
    END IF;
    -- Another wallet's accounts are looked up only for a wallet that takes part in
    -- transfers across providers: for any other, they do not exist.
    SELECT a.* INTO v_to FROM accounts a
    WHERE a.id = p_to_account_id AND a.kind = 'customer'
      AND (a.wallet_id = p_wallet_id
           OR EXISTS (SELECT 1 FROM cross_provider_transfer_limits l WHERE l.wallet_id = p_wallet_id));
    IF v_to.id IS NULL THEN
        RETURN wallet_answer('not_found', 404, 'no customer account ' || p_to_account_id || ' in this wallet');
    END IF;
    IF v_begin.account_currency <> p_currency OR v_to.currency <> p_currency THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'transfer', p_request_sha256, 'currency_mismatch', 422,
            'both accounts must hold ' || p_currency, NULL, NULL, 0);
    END IF;
    v_refused := cross_provider_refusal(p_wallet_id, v_to.wallet_id, p_currency, p_amount_minor);
    IF v_refused.code IS NOT NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'transfer', p_request_sha256, v_refused.code,
            v_refused.http_status, v_refused.message, NULL, NULL, 0, v_refused.rule);
    END IF;
    v_risk := risk_check(p_wallet_id, p_from_account_id, p_currency, p_amount_minor, p_mfa);
    IF v_risk.code IS NOT NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'transfer', p_request_sha256, v_risk.code, 422,
            v_risk.message, NULL, NULL, 0, v_risk.rule);
    END IF;
    PERFORM 1 FROM account_balances WHERE account_id IN (p_from_account_id, p_to_account_id)
    ORDER BY account_id FOR UPDATE;
    v_ltx := ledger_post('transfer', p_txn_id, ARRAY[p_from_account_id, p_to_account_id],
                         ARRAY[-p_amount_minor, p_amount_minor], ARRAY[0, NULL]::bigint[], 0);
    IF v_ltx IS NULL THEN
        RETURN wallet_txn_fail(p_wallet_id, p_txn_id, 'transfer', p_request_sha256, 'insufficient_funds', 422,
            'the paying account''s balance is too low', NULL, NULL, 0);
    END IF;
    PERFORM risk_record(p_from_account_id, p_amount_minor, p_mfa, v_risk.recent_kept);
    INSERT INTO transfers (wallet_id, wallet_txn_id, from_account_id, to_account_id, amount_minor, currency, ledger_transaction_id)
    VALUES (p_wallet_id, p_txn_id, p_from_account_id, p_to_account_id, p_amount_minor, p_currency, v_ltx);
    INSERT INTO wallet_txns (wallet_id, wallet_txn_id, kind, request_sha256, http_status, outcome)
    VALUES (p_wallet_id, p_txn_id, 'transfer', p_request_sha256, 200, 'succeeded');
    RETURN wallet_answer('succeeded', 200, NULL);
END $$;

-- Pays out from a merchant's settlement account to a customer account the operator
-- allowed for it. Lock order: customer → merchant shards, as payments and refunds.
CREATE OR REPLACE FUNCTION payout(
    p_merchant_id text, p_payout_id text, p_reference text, p_request_sha256 bytea,
    p_to_account_id text, p_amount_minor bigint, p_currency text
) RETURNS payout_outcome LANGUAGE plpgsql AS $$
DECLARE
    v_stored payouts%ROWTYPE;
    v_merchant_account text;
    v_merchant_currency text;
    v_to_currency text;
    v_ltx bigint;
    v_code text;
    v_message text;
BEGIN
    SELECT * INTO v_stored FROM payouts WHERE merchant_id = p_merchant_id AND payout_reference = p_reference;
    IF FOUND THEN
        IF v_stored.request_sha256 <> p_request_sha256 THEN
            RETURN ROW('idempotency_conflict', 409, 'payout_reference ' || p_reference || ' was used for a different payout',
                       NULL, NULL, NULL, NULL, NULL, NULL)::payout_outcome;
        END IF;
        RETURN ROW(v_stored.outcome, v_stored.http_status, v_stored.outcome_message, v_stored.id, v_stored.to_account_id,
                   v_stored.amount_minor, v_stored.currency, v_stored.payout_reference, v_stored.created_at)::payout_outcome;
    END IF;
    SELECT a.currency INTO v_to_currency
    FROM payout_accounts pa JOIN accounts a ON a.id = pa.account_id
    WHERE pa.merchant_id = p_merchant_id AND pa.account_id = p_to_account_id;
    IF NOT FOUND THEN
        RETURN ROW('not_found', 404, 'no payout account ' || p_to_account_id || ' for this merchant',
                   NULL, NULL, NULL, NULL, NULL, NULL)::payout_outcome;
    END IF;
    SELECT account_id, currency INTO v_merchant_account, v_merchant_currency FROM merchants WHERE id = p_merchant_id;
    IF p_currency <> v_merchant_currency OR v_to_currency <> v_merchant_currency THEN
        v_code := 'currency_mismatch';
        v_message := 'payouts move ' || v_merchant_currency || ' to an account in it';
    ELSE
        PERFORM 1 FROM account_balances WHERE account_id = p_to_account_id FOR UPDATE;
        v_ltx := ledger_post('payout', p_payout_id, ARRAY[v_merchant_account, p_to_account_id],
                             ARRAY[-p_amount_minor, p_amount_minor], ARRAY[0, NULL]::bigint[], 0);
        IF v_ltx IS NULL THEN
            v_code := 'merchant_insufficient_funds';
            v_message := 'the settlement account''s balance is too low';
        END IF;
    END IF;
    INSERT INTO payouts (id, merchant_id, payout_reference, request_sha256, http_status, outcome, outcome_message,
                         to_account_id, amount_minor, currency, ledger_transaction_id)
    VALUES (p_payout_id, p_merchant_id, p_reference, p_request_sha256, CASE WHEN v_code IS NULL THEN 201 ELSE 422 END,
            coalesce(v_code, 'succeeded'), v_message, p_to_account_id, p_amount_minor, p_currency, v_ltx)
    RETURNING * INTO v_stored;
    RETURN ROW(v_stored.outcome, v_stored.http_status, v_stored.outcome_message, v_stored.id, v_stored.to_account_id,
               v_stored.amount_minor, v_stored.currency, v_stored.payout_reference, v_stored.created_at)::payout_outcome;
END $$;
