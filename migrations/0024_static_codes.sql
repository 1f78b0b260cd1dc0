-- Static merchant codes (EMV point of initiation 11): a shop prints one per counter or
-- till; the customer's wallet asks for the amount, and each payment makes its order
-- and settles it in one call (pay_order, static_code_refusal, static_code_order).
CREATE TABLE static_codes (
    id                  text PRIMARY KEY,
    merchant_id         text NOT NULL REFERENCES merchants (id),
    -- Printed in tag 62-07 (terminal label): "Counter", "Till 2".
    name                text NOT NULL CHECK (name ~ '^[ -~]{1,25}$'),
    -- Tag 53: a payment in another currency is refused.
    currency            text NOT NULL REFERENCES currencies (code),
    qr_payload          text NOT NULL,
    created_by_key_id   text REFERENCES api_keys (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at          timestamptz
);
CREATE INDEX static_codes_by_merchant ON static_codes (merchant_id, created_at DESC, id DESC);

-- The code an order was paid through (NULL: a dynamic order made by a cashier).
ALTER TABLE orders ADD COLUMN static_code_id text REFERENCES static_codes (id);
CREATE INDEX orders_by_static_code ON orders (static_code_id, created_at DESC) WHERE static_code_id IS NOT NULL;

-- A payment through a static code names the code; order_id is then the order it makes.
ALTER TYPE payment_request ADD ATTRIBUTE static_code_id text;
