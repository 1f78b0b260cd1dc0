-- qrgate core schema: parties, the double-entry ledger, orders and payments.
-- Every invariant the code relies on is backed here by a constraint where SQL can
-- express it (docs/contract.md §4). Money is BIGINT minor units of the account's currency.

CREATE TABLE merchants (
    id              text PRIMARY KEY,
    name            text NOT NULL CHECK (name ~ '^[ -~]{1,25}$'),
    city            text NOT NULL CHECK (city ~ '^[ -~]{1,15}$'),
    country         text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    mcc             text NOT NULL CHECK (mcc ~ '^[0-9]{4}$'),
    currency        text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    fee_rate_bps    integer NOT NULL CHECK (fee_rate_bps BETWEEN 0 AND 10000),
    local_name      text,
    local_city      text,
    local_language  text CHECK (local_language ~ '^[A-Z]{2}$'),
    webhook_url     text,
    -- A signing key must be usable to sign, so it is stored as issued (not hashed).
    webhook_secret  text NOT NULL,
    time_zone       text NOT NULL,
    account_id      text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id              text PRIMARY KEY,
    merchant_id     text NOT NULL REFERENCES merchants (id),
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    scopes          text[] NOT NULL CHECK (scopes <@ ARRAY['orders', 'refunds', 'reports'] AND cardinality(scopes) > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE wallets (
    id              text PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE wallet_secrets (
    id              text PRIMARY KEY,
    wallet_id       text NOT NULL REFERENCES wallets (id),
    secret          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE INDEX wallet_secrets_active ON wallet_secrets (wallet_id) WHERE retired_at IS NULL;

-- Accounts of every kind. Balances live in account_balances, split into shards so that
-- concurrent credits to one hot account (a busy merchant, the platform fee account)
-- do not queue on one row lock. Balance = sum of shards = sum of postings (invariant 2).
CREATE TABLE accounts (
    id                  text PRIMARY KEY,
    kind                text NOT NULL CHECK (kind IN ('customer', 'merchant', 'fee', 'funding',
                                                      'fx_position', 'promotions', 'points_liability')),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    wallet_id           text REFERENCES wallets (id),
    merchant_id         text,
    customer_reference  text,
    -- A customer's own code for inviting friends, and the code they were invited with.
    referral_code       text,
    referred_by_code    text,
    shard_count         smallint NOT NULL CHECK (shard_count BETWEEN 1 AND 256),
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'customer') = (customer_reference IS NOT NULL)),
    CHECK (kind NOT IN ('customer', 'funding') OR wallet_id IS NOT NULL),
    CHECK (kind <> 'merchant' OR merchant_id IS NOT NULL),
    -- Only credit-mostly accounts are sharded; a customer's debit checks one row.
    CHECK (kind IN ('merchant', 'fee') OR shard_count = 1)
);
CREATE UNIQUE INDEX accounts_one_fee_per_currency ON accounts (currency) WHERE kind = 'fee';
CREATE UNIQUE INDEX accounts_one_funding_per_wallet_currency ON accounts (wallet_id, currency) WHERE kind = 'funding';
-- One account per customer and currency; a customer is (wallet, customer_reference).
CREATE UNIQUE INDEX accounts_customer ON accounts (wallet_id, customer_reference, currency) WHERE kind = 'customer';
CREATE INDEX accounts_referral_code ON accounts (wallet_id, referral_code) WHERE kind = 'customer';

CREATE TABLE account_balances (
    account_id              text NOT NULL REFERENCES accounts (id),
    shard                   smallint NOT NULL,
    balance_minor           bigint NOT NULL DEFAULT 0,
    -- Invariant 4: customer and merchant money never goes below zero, shard by shard
    -- (debits of sharded accounts take from shards without crossing zero).
    must_stay_nonnegative   boolean NOT NULL,
    PRIMARY KEY (account_id, shard),
    CHECK (NOT must_stay_nonnegative OR balance_minor >= 0)
);

CREATE TABLE funding_limits (
    wallet_id       text NOT NULL REFERENCES wallets (id),
    currency        text NOT NULL,
    limit_minor     bigint NOT NULL CHECK (limit_minor >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, currency)
);

CREATE TABLE ledger_transactions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('payment', 'refund', 'transfer', 'top_up', 'payout', 'points', 'fx')),
    reference       text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Append-only. Only ledger_post() writes here (see ARCHITECTURE.md).
CREATE TABLE postings (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_transaction_id   bigint NOT NULL REFERENCES ledger_transactions (id),
    account_id              text NOT NULL REFERENCES accounts (id),
    amount_minor            bigint NOT NULL CHECK (amount_minor <> 0)
);
CREATE INDEX postings_by_account ON postings (account_id, id);
CREATE INDEX postings_by_transaction ON postings (ledger_transaction_id);

CREATE TABLE orders (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants (id),
    status              text NOT NULL CHECK (status IN ('pending', 'paid', 'expired', 'closed',
                                                        'partially_refunded', 'refunded')),
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    currency            text NOT NULL,
    merchant_reference  text NOT NULL CHECK (merchant_reference ~ '^[ -~]{1,25}$'),
    description         text,
    terminal_id         text CHECK (terminal_id ~ '^[ -~]{1,25}$'),
    qr_payload          text NOT NULL,
    -- The merchant's terms when the order was shown: a later rate change does not
    -- alter an order a customer is already looking at.
    fee_rate_bps        integer NOT NULL,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz,
    payment_id          text,
    failed_attempts     integer NOT NULL DEFAULT 0,
    CHECK ((paid_at IS NOT NULL) = (status IN ('paid', 'partially_refunded', 'refunded'))),
    CHECK ((payment_id IS NOT NULL) = (paid_at IS NOT NULL)),
    CHECK (expires_at > created_at)
);
-- merchant_reference may be reused only once every earlier order with it expired or closed.
CREATE UNIQUE INDEX orders_live_reference ON orders (merchant_id, merchant_reference)
    WHERE status NOT IN ('expired', 'closed');
CREATE INDEX orders_by_merchant ON orders (merchant_id, created_at DESC, id DESC);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'pending';

CREATE TABLE payments (
    id                      text PRIMARY KEY,
    order_id                text NOT NULL UNIQUE REFERENCES orders (id),  -- invariant 5
    wallet_id               text NOT NULL REFERENCES wallets (id),
    wallet_txn_id           text NOT NULL,
    customer_account_id     text NOT NULL REFERENCES accounts (id),
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    currency                text NOT NULL,
    discount_minor          bigint NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    charged_minor           bigint NOT NULL CHECK (charged_minor >= 0),
    charged_currency        text NOT NULL,
    fee_minor               bigint NOT NULL CHECK (fee_minor >= 0),
    points_used             bigint NOT NULL DEFAULT 0,
    points_earned           bigint NOT NULL DEFAULT 0,
    ledger_transaction_id   bigint NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    paid_at                 timestamptz NOT NULL,
    UNIQUE (wallet_id, wallet_txn_id)                                      -- invariant 5
);

-- The first definitive answer to each wallet_txn_id, kept forever (docs/contract.md §6).
CREATE TABLE wallet_txns (
    wallet_id       text NOT NULL REFERENCES wallets (id),
    wallet_txn_id   text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('payment', 'top_up', 'transfer')),
    request_sha256  bytea NOT NULL,
    http_status     smallint NOT NULL,
    outcome         text NOT NULL,          -- 'succeeded' or an error code
    outcome_message text,
    payment_id      text REFERENCES payments (id),
    order_id        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, wallet_txn_id),
    CHECK ((outcome = 'succeeded') = (http_status = 200))
);

-- Each webhook-id is accepted once per wallet. Recorded only after the signature
-- verified; pruned after the replay window. Answers to wallet_txn calls live in
-- wallet_txns; others are stored here.
CREATE TABLE wallet_messages (
    wallet_id       text NOT NULL REFERENCES wallets (id),
    message_id      text NOT NULL,
    request_sha256  bytea NOT NULL,
    wallet_txn_id   text,
    http_status     smallint,
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, message_id)
);
CREATE INDEX wallet_messages_by_age ON wallet_messages (created_at);

-- Merchant Idempotency-Key answers, kept 24 h. The row is claimed (answer NULL) in
-- the same transaction as the work, so a concurrent duplicate waits for the first
-- and then reads its answer; a transient failure rolls the claim back.
CREATE TABLE merchant_idempotency (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    endpoint        text NOT NULL,
    idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_sha256  bytea NOT NULL,
    http_status     smallint,
    response        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, endpoint, idempotency_key)
);
CREATE INDEX merchant_idempotency_by_age ON merchant_idempotency (created_at);

-- The order timeline's own entries: failed payment attempts, closing, expiry. Creation
-- and the successful payment are read from orders and payments.
CREATE TABLE order_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id        text NOT NULL REFERENCES orders (id),
    kind            text NOT NULL CHECK (kind IN ('payment_failed', 'closed', 'expired')),
    code            text,
    wallet_id       text,
    customer_account_id text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);
