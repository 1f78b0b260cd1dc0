-- The named rows the steps of pay_order and refund_order hand each other
-- (migrations/functions/), instead of seventeen positional parameters and long positional rows.

-- One signed payment call, as the gateway parsed it.
CREATE TYPE payment_request AS (
    wallet_id            text,
    message_id           text,     -- the webhook-id header
    message_sha256       bytea,    -- of the whole signed message
    txn_id               text,     -- the wallet's wallet_txn_id
    request_sha256       bytea,    -- of the request's meaning, for wallet_txn_id repeats
    payment_id           text,     -- minted by the gateway; used if the payment succeeds
    order_id             text,     -- from the QR, NULL when the QR is not ours
    qr_payload           text,
    customer_account_id  text,
    amount_minor         bigint,
    currency             text,
    max_charged          numeric,  -- in the paying account's currency, decimal units
    quote_id             text,
    use_points           bigint,
    mfa                  boolean,  -- customer_authentication "mfa"
    shard_seed           integer,  -- picks the balance shard of sharded accounts
    timeline_max         integer   -- failed attempts kept on an order's timeline
);

-- Why a call is refused: the stable error code, its HTTP status, a message for people,
-- and the risk rule that declined it, if one did. code NULL: not refused.
CREATE TYPE refusal AS (code text, http_status integer, message text, rule text);

-- The points side of a payment: the customer's points account (NULL when no points
-- move), the points it earns, and the referral it completes (NULL: none).
CREATE TYPE payment_points AS (account_id text, earned bigint, referral referral_plan);

-- A payment's or a refund's ledger legs (accounts and amounts in the one lock order),
-- the fee among them, and the ledger transaction once booked.
CREATE TYPE ledger_legs AS (accounts text[], amounts bigint[], fee_minor bigint, ledger_transaction_id bigint);

-- What one refund returns of each leg of its payment (refund_shares): the merchant's
-- gross credit, what the customer was charged (their currency), what was due in the
-- order's currency, the fee, points redeemed and points earned.
CREATE TYPE refund_shares AS (gross_minor bigint, customer_minor bigint, due_minor bigint, fee_minor bigint,
                              points bigint, earned bigint);

-- What the risk rules judge a movement against (risk_check): one customer account's
-- counters for today and the last minute, the currency's limits (NULL: no such limit),
-- and the wallet's SCA settings (NULL: none).
CREATE TYPE risk_view AS (
    spent_today_minor               bigint,
    movements_today                 integer,
    movements_last_minute           bigint,
    since_mfa_minor                 bigint,
    transaction_max_minor           bigint,
    daily_amount_max_minor          bigint,
    daily_count_max                 integer,
    per_minute_count_max            integer,
    mfa_daily_amount_above_minor    bigint,
    threshold_minor                 bigint,
    allowance_minor                 bigint
);
