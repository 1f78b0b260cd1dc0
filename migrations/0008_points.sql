-- Loyalty points and invite-a-friend (issue 6). Points are a ledger currency, PTS,
-- whole numbers: a customer's points account is one of their accounts, booked against
-- the platform's points liability account. A payment earns points per whole unit of
-- the currency charged (per merchant, default 1); it may redeem points at 100 PTS per
-- unit of the order's currency, funded by the platform's promotions account; refunds
-- return redeemed points and claw back earned ones, never below zero. A referred
-- customer's first payment of at least the minimum rewards both once.

INSERT INTO currencies (code, minor_units) VALUES ('PTS', 0) ON CONFLICT DO NOTHING;

ALTER TABLE merchants ADD COLUMN points_per_unit numeric(10, 4) NOT NULL DEFAULT 1 CHECK (points_per_unit >= 0);
ALTER TABLE payments ADD COLUMN points_value_minor bigint NOT NULL DEFAULT 0 CHECK (points_value_minor >= 0);
ALTER TABLE quotes DROP CONSTRAINT quotes_charged_minor_check;
ALTER TABLE quotes ADD CONSTRAINT quotes_charged_minor_check CHECK (charged_minor >= 0);
ALTER TYPE quote_outcome ADD ATTRIBUTE points_used bigint;
ALTER TABLE accounts DROP CONSTRAINT accounts_sharded_kinds;
ALTER TABLE accounts ADD CONSTRAINT accounts_sharded_kinds
    CHECK (kind IN ('merchant', 'fee', 'fx_position', 'promotions', 'points_liability') OR shard_count = 1);

-- Operator settings of the referral programme (QRGATE_REFERRAL_* at start-up).
CREATE TABLE referral_settings (
    singleton               boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    bonus_points            bigint NOT NULL DEFAULT 500 CHECK (bonus_points >= 0),
    min_payment_units       integer NOT NULL DEFAULT 10 CHECK (min_payment_units >= 0),
    rewards_per_referrer_max integer NOT NULL DEFAULT 10 CHECK (rewards_per_referrer_max >= 0)
);
INSERT INTO referral_settings DEFAULT VALUES;

-- One row per rewarded referral: a referee is rewarded once, ever.
CREATE TABLE referral_rewards (
    wallet_id           text NOT NULL,
    referee_reference   text NOT NULL,
    referrer_reference  text NOT NULL,
    payment_id          text NOT NULL REFERENCES payments (id),
    bonus_points        bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, referee_reference)
);
CREATE INDEX referral_rewards_by_referrer ON referral_rewards (wallet_id, referrer_reference);

CREATE TYPE points_redemption AS (points bigint, value_minor bigint);
