-- Issue 12: the one pricing chain of quotes and payments (price_order) answers one
-- named value instead of six loose variables.
CREATE TYPE order_price AS (
    offer             campaign_offer,
    redeem            points_redemption,
    due_minor         bigint,           -- in the order's currency, after discount and points
    rate              fx_rates,         -- across currencies; rate.id NULL: no rate
    charged_minor     bigint,
    charged_currency  text
);
