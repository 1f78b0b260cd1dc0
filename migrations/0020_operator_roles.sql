-- Operator roles (issue 15): a named admin token may do what its role allows
-- (gateway/src/roles.rs). Tokens made before roles existed keep every power.
ALTER TABLE admin_tokens
    ADD COLUMN role text NOT NULL DEFAULT 'admin'
        CHECK (role IN ('admin', 'support', 'risk', 'finance'));
