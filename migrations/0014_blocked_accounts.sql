-- Operators block a customer account (issue 7): every wallet call from it — payment,
-- top-up, transfer — is declined with `account_blocked`, stored like any decline so a
-- retry gets the same answer, and moves no money. The check rides on the account lookup
-- every wallet call already makes: no extra statement on the hot path.

ALTER TABLE accounts ADD COLUMN blocked_at timestamptz;

CREATE OR REPLACE FUNCTION wallet_call_begin(
    p_wallet_id text, p_message_id text, p_message_sha256 bytea,
    p_txn_id text, p_kind text, p_request_sha256 bytea, p_account_id text,
    OUT answer wallet_outcome, OUT account_currency text
) LANGUAGE plpgsql AS $$
DECLARE
    v_blocked_at timestamptz;
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
    SELECT currency, blocked_at INTO account_currency, v_blocked_at FROM accounts
    WHERE id = p_account_id AND wallet_id = p_wallet_id AND kind = 'customer';
    IF NOT FOUND THEN
        answer := wallet_answer('not_found', 404, 'no customer account ' || p_account_id || ' in this wallet');
    ELSIF v_blocked_at IS NOT NULL THEN
        answer := wallet_txn_fail(p_wallet_id, p_txn_id, p_kind, p_request_sha256, 'account_blocked', 422,
            'customer account ' || p_account_id || ' is blocked', NULL, p_account_id, 0);
    END IF;
END $$;
