-- Refunds (docs/contract.md §3, §6): each leg of the payment is returned cumulatively, so a
-- full refund returns every leg exactly; refunds never exceed the payment (invariant 6).

CREATE TABLE refunds (
    id                      text PRIMARY KEY,
    order_id                text NOT NULL REFERENCES orders (id),
    refund_reference        text NOT NULL CHECK (refund_reference ~ '^[ -~]{1,64}$'),
    request_sha256          bytea NOT NULL,
    http_status             smallint NOT NULL,
    outcome                 text NOT NULL,          -- 'succeeded' or an error code
    outcome_message         text,
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    reason                  text CHECK (length(reason) <= 500),
    customer_returned_minor bigint,
    fee_returned_minor      bigint,
    merchant_debited_minor  bigint,
    order_status_after      text,
    ledger_transaction_id   bigint UNIQUE REFERENCES ledger_transactions (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_id, refund_reference),
    CHECK ((outcome = 'succeeded') = (ledger_transaction_id IS NOT NULL))
);
CREATE INDEX refunds_succeeded_by_order ON refunds (order_id) WHERE outcome = 'succeeded';

CREATE TYPE refund_outcome AS (
    outcome         text,
    http_status     smallint,
    message         text,
    refund_id       text,
    amount_minor    bigint,
    currency        text,
    order_status    text,
    reason          text,
    created_at      timestamptz
);
