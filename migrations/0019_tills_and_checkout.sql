-- Issue 13: named staff keys, who made each order and refund, and checkout sessions
-- (a hosted payment page for an order).

-- A key may carry a name for people ("Till 2", "Ana"); `keys` lets a manager key issue
-- and list its merchant's staff keys.
ALTER TABLE api_keys ADD COLUMN name text CHECK (name ~ '^[^[:cntrl:]]{1,50}$');
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (scopes <@ ARRAY['orders', 'refunds', 'reports', 'keys'] AND cardinality(scopes) > 0);

-- The key that made an order or a refund (NULL: made before keys were recorded).
ALTER TABLE orders ADD COLUMN created_by_key_id text REFERENCES api_keys (id);
ALTER TABLE refunds ADD COLUMN created_by_key_id text REFERENCES api_keys (id);

-- A hosted payment page for one order. The page's address carries a token; only its
-- SHA-256 is stored, so the table does not hold the addresses.
CREATE TABLE checkout_sessions (
    id                  text PRIMARY KEY,
    token_sha256        bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    merchant_id         text NOT NULL REFERENCES merchants (id),
    order_id            text NOT NULL UNIQUE REFERENCES orders (id),
    return_url          text NOT NULL CHECK (length(return_url) <= 2000),
    cancel_url          text NOT NULL CHECK (length(cancel_url) <= 2000),
    -- [{"name": …, "quantity": n, "amount": "12.50"}], at most 100, checked by the gateway
    line_items          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(line_items) = 'array'),
    cancelled_at        timestamptz,
    created_by_key_id   text REFERENCES api_keys (id),
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_by_merchant ON checkout_sessions (merchant_id, created_at DESC, id DESC);
