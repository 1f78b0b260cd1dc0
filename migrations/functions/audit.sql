-- The audit log of admin actions is append-only: no row is ever changed or removed,
-- whoever asks (a table owner could drop this trigger; the gateway never does, and it
-- is created again with every other function whenever this folder changes).
--
-- Applied by db::migrate after the versioned migrations, whenever this folder changes.

CREATE OR REPLACE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER admin_audit_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();
