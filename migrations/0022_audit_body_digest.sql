-- The audit log keeps a digest of each operator request's body (issue 15): what was
-- asked can be proven later without storing it (bodies may carry secrets' neighbours).
ALTER TABLE admin_audit ADD COLUMN body_sha256 text CHECK (body_sha256 ~ '^[0-9a-f]{64}$');
