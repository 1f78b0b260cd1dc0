-- Tells every replica's credential cache (gateway/src/credentials.rs) what changed: a
-- merchant API key (revoked), a merchant (blocked, unblocked, its profile), a wallet's
-- secrets (added, retired). Only these rare writes notify; no payment touches them.
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

CREATE OR REPLACE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Separate branches: PL/pgSQL resolves NEW's fields per statement, and each table
    -- has only its own.
    IF TG_TABLE_NAME = 'api_keys' THEN
        PERFORM pg_notify('qrgate_credentials', 'key:' || NEW.id);
    ELSIF TG_TABLE_NAME = 'merchants' THEN
        PERFORM pg_notify('qrgate_credentials', 'merchant:' || NEW.id);
    ELSE
        PERFORM pg_notify('qrgate_credentials', 'wallet:' || NEW.wallet_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION credentials_changed();
CREATE TRIGGER merchants_changed AFTER UPDATE ON merchants
    FOR EACH ROW EXECUTE FUNCTION credentials_changed();
CREATE TRIGGER wallet_secrets_changed AFTER INSERT OR UPDATE ON wallet_secrets
    FOR EACH ROW EXECUTE FUNCTION credentials_changed();
