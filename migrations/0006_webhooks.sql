-- Merchant webhooks (DESIGN.md §7): a transactional outbox written in the same commit
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

-- Queues an event for a merchant that has a webhook URL (nothing otherwise).
CREATE FUNCTION webhook_enqueue(p_merchant_id text, p_type text, p_object_id text)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO webhook_events (id, merchant_id, type, object_id)
    SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 20), m.id, p_type, p_object_id
    FROM merchants m WHERE m.id = p_merchant_id AND m.webhook_url IS NOT NULL;
$$;

-- order.paid with the payment, in its commit.
CREATE OR REPLACE FUNCTION payment_settled_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_enqueue(o.merchant_id, 'order.paid', NEW.order_id) FROM orders o WHERE o.id = NEW.order_id;
    RETURN NULL;
END $$;
CREATE TRIGGER payments_webhook AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION payment_settled_event();

-- order.expired and order.closed with the status change, whoever makes it.
CREATE OR REPLACE FUNCTION order_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('expired', 'closed') AND OLD.status = 'pending' THEN
        PERFORM webhook_enqueue(NEW.merchant_id, 'order.' || NEW.status, NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER orders_webhook AFTER UPDATE OF status ON orders FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION order_status_event();

-- refund.succeeded with the refund.
CREATE OR REPLACE FUNCTION refund_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.outcome = 'succeeded' THEN
        PERFORM webhook_enqueue(o.merchant_id, 'refund.succeeded', NEW.id) FROM orders o WHERE o.id = NEW.order_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER refunds_webhook AFTER INSERT ON refunds FOR EACH ROW EXECUTE FUNCTION refund_event();

-- Leases up to p_batch due events to one worker for p_lease_seconds: no other worker
-- takes them meanwhile, and no lock or connection is held while delivering.
CREATE FUNCTION webhook_lease(p_batch integer, p_lease_seconds integer)
RETURNS SETOF webhook_events LANGUAGE sql AS $$
    UPDATE webhook_events e SET attempts = e.attempts + 1, last_attempt_at = now(),
                                next_attempt_at = now() + make_interval(secs => p_lease_seconds)
    WHERE e.id IN (SELECT id FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= now()
                   ORDER BY next_attempt_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
    RETURNING e.*;
$$;
