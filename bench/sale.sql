-- One sale, statement for statement as the gateway issues it (captured with
-- pg_stat_statements during `simulator load --mix pay=1`; see bench/README.md):
-- the cashier creates an order with an Idempotency-Key, long-polls it, the wallet
-- pays, the cashier's poll sees it paid. Variables: merchants, customers, hot (0/1).
\set merchant random(1, :merchants)
\if :hot
\set merchant 1
\endif
\set customer random(1, :customers)
\set amount random(100, 20000)
\set n random(1, 1000000000000)
\set shard random(0, 65535)
-- POST /v1/orders: one transaction (the Idempotency-Key's lock and earlier answer, the
-- order, the key with its answer). (The API key, the merchant's profile and the
-- wallet's secrets come from the gateway's credential cache: a lookup every few
-- seconds per key, not a statement per sale.)
START TRANSACTION;
SELECT * FROM merchant_idempotency_earlier('mch_b' || :merchant, 'POST /v1/orders', 'k' || :client_id || '_' || :n);
INSERT INTO orders AS o (id, merchant_id, status, amount_minor, currency, merchant_reference, description, terminal_id, qr_payload, fee_rate_bps, expires_at, created_by_key_id, tip_policy, convenience_fee_minor, convenience_fee_percent_hundredths) VALUES ('ord_' || :client_id || '_' || :n, 'mch_b' || :merchant, 'pending', :amount, 'CNY', 'R' || :n, NULL, NULL, 'P' || :client_id || '_' || :n, 38, now() + make_interval(secs => 300), 'key_b' || :merchant, 'none', 0, NULL) ON CONFLICT (merchant_id, merchant_reference) WHERE status NOT IN ('expired', 'closed') DO NOTHING RETURNING o.id, order_effective_status(o.status, o.expires_at), o.amount_minor, o.currency, o.merchant_reference, o.description, o.terminal_id, o.qr_payload, o.expires_at, o.created_at, o.updated_at, o.paid_at, o.payment_id, o.discount_minor, o.charged_minor, o.charged_currency, o.created_by_key_id, o.static_code_id, o.refunded_minor, o.tip_policy, o.convenience_fee_minor, o.convenience_fee_percent_hundredths, o.tip_minor;
-- The key with its answer: the order as the gateway renders it (about 800 bytes).
INSERT INTO merchant_idempotency (merchant_id, endpoint, idempotency_key, request_sha256, http_status, response) VALUES ('mch_b' || :merchant, 'POST /v1/orders', 'k' || :client_id || '_' || :n, '\x00', 201, jsonb_build_object('id', 'ord_' || :client_id || '_' || :n, 'tip', NULL, 'amount', (:amount / 100.0)::text, 'status', 'pending', 'charged', NULL, 'paid_at', NULL, 'currency', 'CNY', 'discount', NULL, 'refunded', '0.00', 'created_at', now(), 'expires_at', now() + make_interval(secs => 300), 'payment_id', NULL, 'qr_payload', '00020101021226720010com.qrgate0124mch_qfnkzbs7maddsl2igbji0226hr6nxkmxy25hid35xurl6xq5gi5204581253031565406101.465802CN5911Sim Shop 456008Shanghai62480116SIM-72le6nwa4iis0524ord_' || :client_id || '_' || :n || '6304F9A8', 'tip_policy', 'none', 'updated_at', now(), 'description', NULL, 'terminal_id', NULL, 'static_code_id', NULL, 'convenience_fee', NULL, 'charged_currency', NULL, 'created_by_key_id', 'key_b' || :merchant, 'merchant_reference', 'R' || :n, 'convenience_fee_percent', NULL)) ON CONFLICT DO NOTHING;
COMMIT;
-- GET /v1/orders/{id}?wait_seconds=…: first look (pending).
SELECT o.id, order_effective_status(o.status, o.expires_at), o.amount_minor, o.currency, o.merchant_reference, o.description, o.terminal_id, o.qr_payload, o.expires_at, o.created_at, o.updated_at, o.paid_at, o.payment_id, o.discount_minor, o.charged_minor, o.charged_currency, o.created_by_key_id, o.static_code_id, o.refunded_minor, o.tip_policy, o.convenience_fee_minor, o.convenience_fee_percent_hundredths, o.tip_minor FROM orders o WHERE o.id = 'ord_' || :client_id || '_' || :n AND o.merchant_id = 'mch_b' || :merchant;
-- The API key's request rate: a lease of its one-second allowance, about every other
-- sale at these rates (each key sees a few requests a second; a busy key leases less
-- often, since a lease that ran out within its window asks for twice as much).
-- (chr(58) is the colon of 'key:…': pgbench would read a colon in the text as a variable.)
\set every_other_sale random(0, 1)
\if :every_other_sale
SELECT leased, unleased, window_left_ms FROM request_rate_lease('key' || chr(58) || 'key_b' || :merchant, 2, 1000000);
\endif
-- POST /v1/wallets/{id}/payments: one call.
SELECT * FROM pay_order(ROW('wal_b', 'm' || :client_id || '_' || :n, '\x01', 't' || :client_id || '_' || :n, '\x02', 'pay_' || :client_id || '_' || :n, 'ord_' || :client_id || '_' || :n, 'P' || :client_id || '_' || :n, 'acc_c' || :customer, :amount, 'CNY', NULL, NULL, NULL, false, :shard, 100, NULL, NULL, NULL)::payment_request);
-- The long-poll wakes with the settlement's own fields: no statement.
