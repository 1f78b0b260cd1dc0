-- Merchant webhooks (docs/contract.md §7): a transactional outbox written in the same commit
-- as the state change, delivered at least once by leasing workers on any replica.

CREATE TABLE webhook_events (
    id                  text PRIMARY KEY,            -- the webhook-id, the same on every attempt
    merchant_id         text NOT NULL REFERENCES merchants (id),
    type                text NOT NULL CHECK (type IN ('order.paid', 'order.expired', 'order.closed', 'refund.succeeded')),
    object_id           text NOT NULL,               -- the order or refund; rendered when delivered
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'gone')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_attempt_at     timestamptz,
    last_http_status    smallint,
    last_error          text,
    delivered_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_events_by_merchant ON webhook_events (merchant_id, created_at DESC, id DESC);

-- During a rotation both secrets sign; the previous one until it is retired or expires.
ALTER TABLE merchants ADD COLUMN webhook_secret_previous text,
                      ADD COLUMN webhook_secret_previous_until timestamptz;
