-- A shop's own accounts (`GET /v1/accounts`, how a till finds its settlement account)
-- were found by reading every account, the customers' millions included. Only shops'
-- accounts carry a merchant_id: a customer's account opened on a payment adds nothing
-- to this index.
CREATE INDEX accounts_by_merchant ON accounts (merchant_id) WHERE merchant_id IS NOT NULL;
