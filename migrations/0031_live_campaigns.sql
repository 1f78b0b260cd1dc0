-- Every payment asks which campaigns could discount it (campaign_take): the live ones
-- of its currency, the platform's and its merchant's. Ended and paused campaigns stay
-- for their history and would otherwise be read by every payment in their currency,
-- more each month; another shop's live ones are skipped by merchant.
CREATE INDEX campaigns_live ON campaigns (currency, merchant_id) WHERE paused_at IS NULL AND ended_at IS NULL;
