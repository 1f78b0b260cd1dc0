-- A merchant's keys, newest first: the keys list pages through them, and issuing one
-- counts the live ones against the shop's cap. Without it both read every merchant's keys.
CREATE INDEX api_keys_by_merchant ON api_keys (merchant_id, created_at DESC, id DESC);
