-- The floor's world (bench/floor.sql): customers are negative ids, merchants positive,
-- the fee account rows 1000000..1000015. Its own tables, beside the gateway's schema in the bench database.
SET client_min_messages = warning;
DROP TABLE IF EXISTS floor_postings, floor_payments, floor_balances;
CREATE TABLE floor_balances (account_id bigint PRIMARY KEY, balance_minor bigint NOT NULL CHECK (balance_minor >= 0));
CREATE TABLE floor_payments (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES floor_balances,
                             merchant_id bigint NOT NULL REFERENCES floor_balances, amount_minor bigint NOT NULL,
                             fee_minor bigint NOT NULL, paid_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE floor_postings (id bigserial PRIMARY KEY, payment_id bigint NOT NULL REFERENCES floor_payments,
                             account_id bigint NOT NULL REFERENCES floor_balances, amount_minor bigint NOT NULL);
INSERT INTO floor_balances SELECT -i, 1000000000000 FROM generate_series(1, :customers) i;
INSERT INTO floor_balances SELECT i, 0 FROM generate_series(1, :merchants) i;
INSERT INTO floor_balances SELECT 1000000 + i, 0 FROM generate_series(0, 15) i;
ANALYZE;
