-- The floor: the smallest honest double-entry payment the same PostgreSQL can do, for
-- bench/run to measure a sale against. Debit the customer (never below zero), credit the
-- merchant the amount less a fee rounded half-up, credit the platform's fee account;
-- three postings, one payment row, one commit. No order, no idempotency, no risk, no
-- campaign, no points: what any ledger must do at least. The fee account is 16 rows
-- (ids 1000000..1000015, its balance their sum) so that 16 clients do not all queue on
-- one row lock: the floor measures the database, not one lock.
-- Variables: customers, merchants (setup: bench/floor_setup.sql).
\set payer -1 * random(1, :customers)
\set merchant random(1, :merchants)
\set amount random(100, 20000)
\set fee (:amount * 38 * 2 + 10000) / 20000
\set credited :amount - :fee
\set debit -1 * :amount
\set fee_row 1000000 + random(0, 15)
START TRANSACTION;
UPDATE floor_balances SET balance_minor = balance_minor - :amount WHERE account_id = :payer AND balance_minor >= :amount;
UPDATE floor_balances SET balance_minor = balance_minor + :credited WHERE account_id = :merchant;
UPDATE floor_balances SET balance_minor = balance_minor + :fee WHERE account_id = :fee_row;
INSERT INTO floor_payments (customer_id, merchant_id, amount_minor, fee_minor) VALUES (:payer, :merchant, :amount, :fee) RETURNING id \gset
INSERT INTO floor_postings (payment_id, account_id, amount_minor) VALUES (:id, :payer, :debit), (:id, :merchant, :credited), (:id, :fee_row, :fee);
COMMIT;
