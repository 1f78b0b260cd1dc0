-- The sweeper prunes events past their retention every second on every replica; with no
-- index on their age it read the whole outbox each time (30 days of events). Only
-- settled events (delivered, failed, gone) are pruned and indexed: an event enters this
-- index when its delivery settles it (an update that is never HOT: the due index's
-- predicate changes), so a payment's commit writes no entry here. A pending event
-- settles within the delivery give-up age, which is shorter than the retention.
CREATE INDEX webhook_events_settled_by_age ON webhook_events (created_at) WHERE status <> 'pending';
