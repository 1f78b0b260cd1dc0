-- The risk engine (issue 7): limits on money leaving a customer account, by payment or
-- transfer, exact under concurrency because every check and update of one account's
-- counters holds that account's counters row. Amounts are in the account's currency
-- (what it is charged); days are UTC days.

-- Per currency; NULL: no such limit.
CREATE TABLE risk_limits (
    currency                        text PRIMARY KEY REFERENCES currencies (code),
    transaction_max_minor           bigint CHECK (transaction_max_minor > 0),
    daily_amount_max_minor          bigint CHECK (daily_amount_max_minor > 0),
    daily_count_max                 integer CHECK (daily_count_max > 0),
    -- At most this many movements in any 60 seconds; risk_counters.recent_at keeps that many.
    per_minute_count_max            integer CHECK (per_minute_count_max BETWEEN 1 AND 100),
    -- Past this much today, each further movement needs MFA.
    mfa_daily_amount_above_minor    bigint CHECK (mfa_daily_amount_above_minor > 0),
    updated_at                      timestamptz NOT NULL DEFAULT now()
);

-- Strong customer authentication per wallet and currency: a movement above threshold,
-- or one that would take what moved without MFA since the last MFA above allowance,
-- must carry customer_authentication "mfa". No row: the wallet's own business.
CREATE TABLE wallet_sca_settings (
    wallet_id           text NOT NULL REFERENCES wallets (id),
    currency            text NOT NULL REFERENCES currencies (code),
    threshold_minor     bigint NOT NULL CHECK (threshold_minor >= 0),
    allowance_minor     bigint NOT NULL CHECK (allowance_minor >= 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, currency)
);

-- One row per customer account that has moved money out; kept whether or not limits are
-- set, so a limit set at noon counts the morning.
CREATE TABLE risk_counters (
    account_id          text PRIMARY KEY REFERENCES accounts (id),
    day                 date NOT NULL,
    spent_minor         bigint NOT NULL DEFAULT 0 CHECK (spent_minor >= 0),
    movements           integer NOT NULL DEFAULT 0 CHECK (movements >= 0),
    recent_at           timestamptz[] NOT NULL DEFAULT '{}',  -- newest last, at most 100
    since_mfa_minor     bigint NOT NULL DEFAULT 0 CHECK (since_mfa_minor >= 0)
);

-- Which rule declined a call: stored with its answer, and on the order's timeline.
ALTER TYPE wallet_outcome ADD ATTRIBUTE rule text;
ALTER TABLE wallet_txns ADD COLUMN outcome_rule text;
ALTER TABLE order_events ADD COLUMN rule text;
