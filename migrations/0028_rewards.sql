-- Points for rewards (gateway/src/api/rewards.rs): the platform or a merchant lists
-- rewards, customers redeem points for them through their wallet, and a voucher is
-- accepted at payment like a discount, once, within its validity.

CREATE TABLE rewards (
    id                  text PRIMARY KEY,
    -- The merchant that lists it (and funds its vouchers); NULL: the platform's.
    merchant_id         text REFERENCES merchants (id),
    kind                text NOT NULL CHECK (kind IN ('voucher', 'gift')),
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    points_cost         bigint NOT NULL CHECK (points_cost > 0),
    -- A voucher: this much off a payment at voucher_merchant_id, in its currency, for
    -- valid_days after redemption.
    voucher_merchant_id text REFERENCES merchants (id),
    value_minor         bigint CHECK (value_minor > 0),
    currency            text REFERENCES currencies (code),
    valid_days          integer CHECK (valid_days BETWEEN 1 AND 366),
    -- NULL: as many as are redeemed; else how many are left (never below zero).
    stock_left          integer CHECK (stock_left >= 0),
    stock_initial       integer CHECK (stock_initial >= 0),
    ended_at            timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'voucher') = (voucher_merchant_id IS NOT NULL AND value_minor IS NOT NULL
                                 AND currency IS NOT NULL AND valid_days IS NOT NULL)),
    CHECK (kind = 'voucher' OR (value_minor IS NULL AND currency IS NULL AND valid_days IS NULL)),
    CHECK (merchant_id IS NULL OR voucher_merchant_id IS NULL OR merchant_id = voucher_merchant_id),
    CHECK ((stock_left IS NULL) = (stock_initial IS NULL) AND stock_left <= stock_initial)
);
CREATE INDEX rewards_by_merchant ON rewards (merchant_id, created_at DESC, id DESC);
CREATE INDEX rewards_live ON rewards (created_at DESC, id DESC) WHERE ended_at IS NULL;

-- One redemption: the points it took, and for a voucher its code and what it is worth.
-- status: issued → used (by one payment) | expired (past expires_at, unused: returns
-- nothing). A gift stays issued: the shop hands it over.
CREATE TABLE reward_redemptions (
    id                  text PRIMARY KEY,
    reward_id           text NOT NULL REFERENCES rewards (id),
    wallet_id           text NOT NULL REFERENCES wallets (id),
    wallet_txn_id       text NOT NULL,
    customer_account_id text NOT NULL REFERENCES accounts (id),
    customer_reference  text NOT NULL,
    points              bigint NOT NULL CHECK (points > 0),
    ledger_transaction_id bigint NOT NULL REFERENCES ledger_transactions (id),
    voucher_code        text UNIQUE,
    merchant_id         text REFERENCES merchants (id),
    value_minor         bigint CHECK (value_minor > 0),
    currency            text,
    funded_by           text CHECK (funded_by IN ('merchant', 'platform')),
    expires_at          timestamptz,
    status              text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'used', 'expired')),
    used_payment_id     text REFERENCES payments (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (wallet_id, wallet_txn_id),
    CHECK ((voucher_code IS NULL) = (value_minor IS NULL)),
    CHECK ((status = 'used') = (used_payment_id IS NOT NULL))
);
CREATE INDEX reward_redemptions_by_customer ON reward_redemptions (wallet_id, customer_reference, created_at DESC, id DESC);
CREATE INDEX reward_redemptions_by_reward ON reward_redemptions (reward_id);
CREATE INDEX reward_redemptions_due ON reward_redemptions (expires_at) WHERE status = 'issued' AND expires_at IS NOT NULL;

-- A redemption is a wallet call with a wallet_txn_id, answered once and for good.
ALTER TABLE wallet_txns DROP CONSTRAINT wallet_txns_kind_check,
    ADD CONSTRAINT wallet_txns_kind_check CHECK (kind IN ('payment', 'top_up', 'transfer', 'reward'));

-- A payment may take a voucher: what it took off, and who funds it.
ALTER TABLE payments ADD COLUMN voucher_redemption_id text REFERENCES reward_redemptions (id),
                     ADD COLUMN voucher_minor bigint NOT NULL DEFAULT 0 CHECK (voucher_minor >= 0),
                     ADD COLUMN voucher_funded_by text CHECK (voucher_funded_by IN ('merchant', 'platform'));

ALTER TYPE payment_request ADD ATTRIBUTE voucher_code text;
-- The voucher a payment takes (redemption_id NULL: none), or why it cannot.
CREATE TYPE voucher_offer AS (redemption_id text, value_minor bigint, funded_by text, refused refusal);
ALTER TYPE order_price ADD ATTRIBUTE voucher voucher_offer;
ALTER TYPE wallet_outcome ADD ATTRIBUTE voucher_minor bigint;
-- What redeeming answers: 'succeeded' or an error code, and the redemption.
CREATE TYPE reward_outcome AS (outcome text, http_status smallint, message text, redemption_id text);
