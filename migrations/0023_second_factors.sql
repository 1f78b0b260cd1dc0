-- A second factor (TOTP) for a named admin token or a merchant API key
-- (gateway/src/second_factor.rs), and the refund amount above which a shop asks for it.
CREATE TABLE second_factors (
    id              text PRIMARY KEY,
    holder_kind     text NOT NULL CHECK (holder_kind IN ('admin_token', 'api_key')),
    holder_id       text NOT NULL,
    -- Sealed (sealed:v1:…), bound to id.
    secret          text NOT NULL,
    confirmed_at    timestamptz,
    -- The last time step whose code was accepted: never accepted again.
    last_used_step  bigint NOT NULL DEFAULT 0,
    failures        integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    held_until      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (holder_kind, holder_id)
);

-- A refund of more than this (minor units of the merchant's currency) needs the
-- refunding key's second factor. NULL: no refund does.
ALTER TABLE merchants ADD COLUMN refund_second_factor_above_minor bigint
    CHECK (refund_second_factor_above_minor >= 0);
