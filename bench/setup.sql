-- The world bench/sale.sql plays in, made directly in SQL (after the migrations):
-- :merchants merchants with API keys, one wallet, :customers funded customers.
INSERT INTO wallets (id, name) VALUES ('wal_b', 'bench wallet');
INSERT INTO wallet_secrets (id, wallet_id, secret) VALUES ('sec_b', 'wal_b', 'whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
SELECT ledger_platform_account('fee', 'CNY', 32::smallint);
INSERT INTO merchants (id, name, city, country, mcc, currency, fee_rate_bps, webhook_secret, time_zone, account_id)
SELECT 'mch_b' || i, 'Bench ' || i, 'Shanghai', 'CN', '5812', 'CNY', 38, 'whsec_x', 'Asia/Shanghai', 'acc_m' || i
FROM generate_series(1, :merchants) i;
SELECT ledger_open_account('acc_m' || i, 'merchant', 'CNY', NULL, 'mch_b' || i, NULL, 8::smallint) FROM generate_series(1, :merchants) i;
INSERT INTO api_keys (id, merchant_id, secret_sha256, scopes)
SELECT 'key_b' || i, 'mch_b' || i, sha256('x'), ARRAY['orders'] FROM generate_series(1, :merchants) i;
SELECT ledger_open_account('acc_fund', 'funding', 'CNY', 'wal_b', NULL, NULL, 1::smallint);
INSERT INTO funding_limits (wallet_id, currency, limit_minor) VALUES ('wal_b', 'CNY', 999999999999999);
SELECT ledger_open_account('acc_c' || i, 'customer', 'CNY', 'wal_b', NULL, 'c' || i, 1::smallint) FROM generate_series(1, :customers) i;
SELECT ledger_post('top_up', 'seed' || i, ARRAY['acc_fund', 'acc_c' || i], ARRAY[-1000000000, 1000000000]::bigint[],
                   ARRAY[NULL, NULL]::bigint[], 0)
FROM generate_series(1, :customers) i;
ANALYZE;  -- statistics as a live database has them: the plans the functions cache are a live database's plans
