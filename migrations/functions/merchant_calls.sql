-- What every merchant POST with an Idempotency-Key shares (docs/contract.md §6).
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

-- The stored answer of an earlier request with this key, or no row. Takes the key's
-- transaction-scoped advisory lock first: a duplicate waits here (at most the
-- connection's lock_timeout, then idempotency_in_progress) until its twin's transaction
-- ends, and then reads the twin's answer (a new statement, a new snapshot). The key
-- and its answer are written once, together, when the work is done (the gateway's
-- idempotency::finish), under the lock this took: a key is one row version, not a
-- claim and then its answer. (The two-key form keeps these locks apart from every
-- one-key advisory lock.)
CREATE OR REPLACE FUNCTION merchant_idempotency_earlier(p_merchant_id text, p_endpoint text, p_key text)
RETURNS TABLE (request_sha256 bytea, http_status smallint, response jsonb) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('qrgate.merchant_idempotency'),
                                  hashtext(p_merchant_id || ' ' || p_endpoint || ' ' || p_key));
    RETURN QUERY SELECT m.request_sha256, m.http_status, m.response FROM merchant_idempotency m
                 WHERE m.merchant_id = p_merchant_id AND m.endpoint = p_endpoint AND m.idempotency_key = p_key;
END $$;
