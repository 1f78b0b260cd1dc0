-- The webhook outbox: events queued in the same commit as the change, for a merchant
-- or a wallet, leased by the delivery workers of every replica.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Queues an event for a merchant that has a webhook URL (nothing otherwise).
-- PL/pgSQL, not SQL, here and in wallet_event: a SQL function that reads a table is
-- parsed and planned on every call (every points-earning sale called wallet_event:
-- 0.15 ms a call, bench/ab B/A 1.037 as PL/pgSQL, which keeps its plan).
CREATE OR REPLACE FUNCTION webhook_enqueue(p_merchant_id text, p_type text, p_object_id text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_events (id, merchant_id, type, object_id)
    SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 20), m.id, p_type, p_object_id
    FROM merchants m WHERE m.id = p_merchant_id AND m.webhook_url IS NOT NULL;
END $$;

-- Queues an event for a wallet that has a webhook URL (nothing otherwise).
CREATE OR REPLACE FUNCTION wallet_event(p_wallet_id text, p_type text, p_object_id text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_events (id, wallet_id, type, object_id)
    SELECT 'evt_' || substr(md5(gen_random_uuid()::text), 1, 20), w.id, p_type, p_object_id
    FROM wallets w WHERE w.id = p_wallet_id AND w.webhook_url IS NOT NULL;
END $$;

-- What a payment tells its wallet about the customer's points: earned and redeemed
-- (each event renders the payment; referral_reward queues referral.rewarded).
CREATE OR REPLACE FUNCTION wallet_payment_events(p_wallet_id text, p_payment_id text, p_earned bigint,
                                                 p_redeemed bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_earned > 0 THEN
        PERFORM wallet_event(p_wallet_id, 'points.earned', p_payment_id);
    END IF;
    IF p_redeemed > 0 THEN
        PERFORM wallet_event(p_wallet_id, 'points.redeemed', p_payment_id);
    END IF;
END $$;

-- order.expired and order.closed with the status change, whoever makes it.
CREATE OR REPLACE FUNCTION order_status_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('expired', 'closed') AND OLD.status = 'pending' THEN
        PERFORM webhook_enqueue(NEW.merchant_id, 'order.' || NEW.status, NEW.id);
    END IF;
    RETURN NULL;
END $$;

-- refund.succeeded with the refund: to the merchant, and to the wallet whose customer
-- is refunded.
CREATE OR REPLACE FUNCTION refund_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.outcome = 'succeeded' THEN
        PERFORM webhook_enqueue(o.merchant_id, 'refund.succeeded', NEW.id) FROM orders o WHERE o.id = NEW.order_id;
        PERFORM wallet_event(p.wallet_id, 'refund.succeeded', NEW.id) FROM payments p WHERE p.order_id = NEW.order_id;
    END IF;
    RETURN NULL;
END $$;

-- payout.received to the wallet of the customer account a payout credits.
CREATE OR REPLACE FUNCTION payout_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM wallet_event(a.wallet_id, 'payout.received', NEW.id) FROM accounts a WHERE a.id = NEW.to_account_id;
    RETURN NULL;
END $$;

-- Leases up to p_batch due events to one worker for p_lease_seconds: no other worker
-- takes them meanwhile, and no lock or connection is held while delivering.
CREATE OR REPLACE FUNCTION webhook_lease(p_batch integer, p_lease_seconds integer)
RETURNS SETOF webhook_events LANGUAGE sql AS $$
    UPDATE webhook_events e SET attempts = e.attempts + 1, last_attempt_at = now(),
                                next_attempt_at = now() + make_interval(secs => p_lease_seconds)
    WHERE e.id IN (SELECT id FROM webhook_events WHERE status = 'pending' AND next_attempt_at <= now()
                   ORDER BY next_attempt_at LIMIT p_batch FOR UPDATE SKIP LOCKED)
    RETURNING e.*;
$$;

-- Expired and closed orders and succeeded refunds queue their event here; a paid
-- order queues its own inside pay_order, only when the merchant has a URL.
CREATE TRIGGER orders_webhook AFTER UPDATE OF status ON orders FOR EACH ROW
    WHEN (OLD.status = 'pending' AND NEW.status IN ('expired', 'closed'))
    EXECUTE FUNCTION order_status_event();

CREATE TRIGGER refunds_webhook AFTER INSERT ON refunds FOR EACH ROW
    WHEN (NEW.outcome = 'succeeded') EXECUTE FUNCTION refund_event();

CREATE TRIGGER payouts_webhook AFTER INSERT ON payouts FOR EACH ROW
    WHEN (NEW.outcome = 'succeeded') EXECUTE FUNCTION payout_event();
