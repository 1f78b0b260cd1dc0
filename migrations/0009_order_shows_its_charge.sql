-- The order shows what its payment took: the discount, and what was charged in which
-- currency (docs/contract.md §6, issue 6).
ALTER TABLE orders ADD COLUMN discount_minor bigint,
                   ADD COLUMN charged_minor bigint,
                   ADD COLUMN charged_currency text;
UPDATE orders o SET discount_minor = p.discount_minor, charged_minor = p.charged_minor, charged_currency = p.charged_currency
FROM payments p WHERE p.order_id = o.id;
