-- An order's expiry: the one rule, by the database clock. A pending order whose
-- expires_at has come is expired, whether or not the sweeper or a payment has written
-- that yet; every read and every check asks these two functions.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- Whether an order is pending and due to expire. (Plain SQL: the planner inlines it, so
-- a query using it still uses orders_pending_by_expiry.)
CREATE OR REPLACE FUNCTION order_due(p_status text, p_expires_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_status = 'pending' AND p_expires_at <= now();
$$;

-- An order's status as callers see it: expired once due, written or not.
CREATE OR REPLACE FUNCTION order_effective_status(p_status text, p_expires_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN order_due(p_status, p_expires_at) THEN 'expired' ELSE p_status END;
$$;
