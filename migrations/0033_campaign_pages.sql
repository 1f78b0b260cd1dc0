-- The operator's campaign list (newest first, a page at a time, optionally one shop's)
-- sorted every campaign ever made for each page. A payment's budget update changes
-- none of these columns, so it stays a HOT update.
CREATE INDEX campaigns_by_time ON campaigns (created_at DESC, id DESC);
CREATE INDEX campaigns_by_merchant ON campaigns (merchant_id, created_at DESC, id DESC) WHERE merchant_id IS NOT NULL;
