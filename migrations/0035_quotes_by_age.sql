-- A quote lives 60 seconds and a payment keeps what it used (rate, spread, quote id);
-- every quote a wallet asks for was kept forever. The sweeper prunes them a day after,
-- by their age (a payment naming a pruned quote is refused `quote_expired`, as it was).
CREATE INDEX quotes_by_age ON quotes (created_at);
