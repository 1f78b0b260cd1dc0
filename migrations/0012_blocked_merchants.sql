-- Operators block a merchant (issue 7): it can create no order, and a wallet paying one
-- of its orders is declined with `account_blocked` on the order's timeline. pay_order
-- reads the merchant with the order checks now (the same one statement, earlier), so
-- the block costs nothing per payment.

ALTER TABLE merchants ADD COLUMN blocked_at timestamptz;
