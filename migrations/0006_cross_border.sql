-- Cross-border payment (docs/contract.md §3, issue 6): exchange rates with history, quotes
-- locked for a minute, payments charged in the paying account's currency through FX
-- position accounts (balanced in each currency), refunds at the payment's rate.

-- Minor units of each currency, mirrored from the domain crate at every migrate (the
-- crate is the one source; SQL needs them to convert between currencies).
CREATE TABLE currencies (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_units integer NOT NULL CHECK (minor_units BETWEEN 0 AND 4)
);

CREATE TABLE fx_rates (
    id          text PRIMARY KEY,
    base        text NOT NULL,           -- the order's (merchant's) currency
    quote       text NOT NULL,           -- the paying account's currency
    rate        numeric(20, 8) NOT NULL CHECK (rate > 0),   -- quote units per 1 base unit
    spread_bps  integer NOT NULL DEFAULT 0 CHECK (spread_bps BETWEEN 0 AND 10000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (base <> quote)
);
CREATE INDEX fx_rates_current ON fx_rates (base, quote, created_at DESC, id DESC);

CREATE TABLE quotes (
    id                  text PRIMARY KEY,
    wallet_id           text NOT NULL REFERENCES wallets (id),
    order_id            text NOT NULL REFERENCES orders (id),
    customer_account_id text NOT NULL REFERENCES accounts (id),
    fx_rate_id          text REFERENCES fx_rates (id),
    charged_minor       bigint NOT NULL CHECK (charged_minor > 0),
    charged_currency    text NOT NULL,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE payments ADD COLUMN fx_rate_id text REFERENCES fx_rates (id),
                     ADD COLUMN fx_rate numeric(20, 8),
                     ADD COLUMN fx_spread_bps integer,
                     ADD COLUMN quote_id text;

-- FX positions and promotions are credited and debited by every such payment: shard them.
ALTER TABLE accounts DROP CONSTRAINT accounts_check3;
ALTER TABLE accounts ADD CONSTRAINT accounts_sharded_kinds
    CHECK (kind IN ('merchant', 'fee', 'fx_position', 'promotions') OR shard_count = 1);

CREATE TYPE quote_outcome AS (
    outcome             text,
    http_status         smallint,
    message             text,
    quote_id            text,
    order_id            text,
    amount_minor        bigint,
    currency            text,
    charged_minor       bigint,
    charged_currency    text,
    rate                numeric,
    spread_bps          integer,
    expires_at          timestamptz
);
