-- The customer-service desk (issue 15): what the shop was told about an order, found
-- by the order (or refund) the webhook event is about.
CREATE INDEX webhook_events_by_object ON webhook_events (object_id);
