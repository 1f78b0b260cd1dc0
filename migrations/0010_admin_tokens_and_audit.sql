-- Named admin tokens (stored as SHA-256, revocable; the QRGATE_ADMIN_TOKEN from the
-- environment only bootstraps) and the audit log of every admin action (issue 7).

CREATE TABLE admin_tokens (
    id              text PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    secret_sha256   bytea NOT NULL CHECK (length(secret_sha256) = 32),
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE admin_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor           text NOT NULL,           -- 'bootstrap' (the environment token) or an admin token id
    method          text NOT NULL,
    route           text NOT NULL,
    path            text NOT NULL,
    http_status     smallint NOT NULL,
    request_id      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_by_time ON admin_audit (created_at DESC, id DESC);
