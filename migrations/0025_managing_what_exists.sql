-- Managing what exists. Campaigns once they run (gateway/src/api/campaigns.rs): an operator pauses
-- and resumes one, ends it early, and moves its window or budget. campaign_take offers
-- only campaigns neither paused nor ended.
ALTER TABLE campaigns ADD COLUMN paused_at timestamptz,
                      ADD COLUMN ended_at timestamptz;

-- What an order has had refunded, kept on the order by refund_order (the row a refund
-- already writes), so every read of an order shows it at no extra lookup.
ALTER TABLE orders ADD COLUMN refunded_minor bigint NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0);
UPDATE orders o SET refunded_minor = r.total
FROM (SELECT order_id, sum(amount_minor)::bigint AS total FROM refunds WHERE outcome = 'succeeded' GROUP BY order_id) r
WHERE r.order_id = o.id;
CREATE INDEX payouts_by_merchant ON payouts (merchant_id, created_at DESC, id DESC);

-- Transfers between customers of different wallet providers: a wallet takes part in a
-- currency up to transfer_max_minor a transfer, in and out. A transfer across wallets
-- needs both to take part, and is at most the smaller of the two (transfer()).
CREATE TABLE cross_provider_transfer_limits (
    wallet_id           text NOT NULL REFERENCES wallets (id),
    currency            text NOT NULL REFERENCES currencies (code),
    transfer_max_minor  bigint NOT NULL CHECK (transfer_max_minor > 0),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, currency)
);
