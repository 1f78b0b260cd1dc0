-- Promotions (issue 6): campaigns, platform-wide or for one merchant, percent off (with
-- a cap) or amount off over a minimum, in a window, with a budget and a per-customer
-- limit, funded by the merchant or by the platform's promotions account. At payment the
-- eligible campaign with the biggest discount applies (ties: the earliest created; no
-- stacking); budgets and per-customer limits hold under concurrency.

CREATE TABLE campaigns (
    id                  text PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('percent_off', 'amount_off_over')),
    percent_off         numeric(7, 4) CHECK (percent_off > 0 AND percent_off < 100),
    max_discount_minor  bigint CHECK (max_discount_minor > 0),
    amount_off_minor    bigint CHECK (amount_off_minor > 0),
    min_amount_minor    bigint CHECK (min_amount_minor > 0),
    currency            text NOT NULL,
    budget_minor        bigint NOT NULL CHECK (budget_minor > 0),
    spent_minor         bigint NOT NULL DEFAULT 0,
    funded_by           text NOT NULL CHECK (funded_by IN ('merchant', 'platform')),
    merchant_id         text REFERENCES merchants (id),
    per_customer_limit  integer CHECK (per_customer_limit > 0),
    starts_at           timestamptz,
    ends_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (spent_minor BETWEEN 0 AND budget_minor),                 -- a budget is never overspent
    CHECK (funded_by = 'platform' OR merchant_id IS NOT NULL),
    CHECK ((kind = 'percent_off') = (percent_off IS NOT NULL)),
    CHECK ((kind = 'amount_off_over') = (amount_off_minor IS NOT NULL AND min_amount_minor IS NOT NULL)),
    CHECK (amount_off_minor < min_amount_minor),
    CHECK (starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at)
);
CREATE INDEX campaigns_by_currency ON campaigns (currency);

-- One row per discounted payment: the per-customer count (a customer is (wallet,
-- customer_reference), all their accounts together).
CREATE TABLE campaign_uses (
    campaign_id         text NOT NULL REFERENCES campaigns (id),
    payment_id          text NOT NULL REFERENCES payments (id),
    wallet_id           text NOT NULL,
    customer_reference  text NOT NULL,
    discount_minor      bigint NOT NULL CHECK (discount_minor > 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, payment_id)
);
CREATE INDEX campaign_uses_by_customer ON campaign_uses (campaign_id, wallet_id, customer_reference);

ALTER TABLE payments ADD COLUMN campaign_id text REFERENCES campaigns (id),
                     ADD COLUMN discount_funded_by text CHECK (discount_funded_by IN ('merchant', 'platform'));
ALTER TYPE quote_outcome ADD ATTRIBUTE discount_minor bigint;

CREATE TYPE campaign_offer AS (campaign_id text, discount_minor bigint, funded_by text);
