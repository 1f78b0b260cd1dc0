-- The ledger's types: what a wallet call answers.

-- What a wallet call that carries a wallet_txn_id answered, or answers now.
CREATE TYPE wallet_outcome AS (
    outcome             text,       -- 'succeeded' or an error code
    http_status         smallint,
    message             text,
    payment_id          text,
    order_id            text,
    amount_minor        bigint,
    currency            text,
    discount_minor      bigint,
    charged_minor       bigint,
    charged_currency    text,
    fee_minor           bigint,
    points_used         bigint,
    points_earned       bigint,
    paid_at             timestamptz
);
