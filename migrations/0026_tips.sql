-- Tips and convenience fees (EMV tags 55–57, domain/src/tips.rs). An order lets the
-- customer add a tip (prompt) or carries the shop's convenience fee, fixed or a
-- percentage of the amount; the shop's default applies to an order that names none.
-- Both are credited whole to the merchant on legs of their own (no platform fee on
-- them) and return pro rata with refunds.

-- The shop's default, and the largest tip it takes (percent of the amount).
ALTER TABLE merchants
    ADD COLUMN tip_policy text NOT NULL DEFAULT 'none'
        CHECK (tip_policy IN ('none', 'prompt', 'fixed_fee', 'percentage_fee')),
    ADD COLUMN convenience_fee_minor bigint CHECK (convenience_fee_minor > 0),
    ADD COLUMN convenience_fee_percent_hundredths integer
        CHECK (convenience_fee_percent_hundredths BETWEEN 1 AND 9999),
    ADD COLUMN tip_max_percent integer NOT NULL DEFAULT 25 CHECK (tip_max_percent BETWEEN 0 AND 100),
    ADD CONSTRAINT merchants_tip_policy_values CHECK (
        (tip_policy = 'fixed_fee') = (convenience_fee_minor IS NOT NULL)
        AND (tip_policy = 'percentage_fee') = (convenience_fee_percent_hundredths IS NOT NULL));

-- An order's policy as its QR states it; convenience_fee_minor is the fee it charges
-- (fixed, or the percentage of the amount, computed once at creation); tip_minor the
-- tip its payment carried (0 when none).
ALTER TABLE orders
    ADD COLUMN tip_policy text NOT NULL DEFAULT 'none'
        CHECK (tip_policy IN ('none', 'prompt', 'fixed_fee', 'percentage_fee')),
    ADD COLUMN convenience_fee_minor bigint NOT NULL DEFAULT 0 CHECK (convenience_fee_minor >= 0),
    ADD COLUMN convenience_fee_percent_hundredths integer
        CHECK (convenience_fee_percent_hundredths BETWEEN 1 AND 9999),
    ADD COLUMN tip_minor bigint CHECK (tip_minor >= 0),
    ADD CONSTRAINT orders_tip_policy_values CHECK (
        (tip_policy IN ('fixed_fee', 'percentage_fee') OR convenience_fee_minor = 0)
        AND (tip_policy = 'percentage_fee') = (convenience_fee_percent_hundredths IS NOT NULL)
        AND (tip_policy = 'prompt' OR coalesce(tip_minor, 0) = 0));

ALTER TABLE payments
    ADD COLUMN tip_minor bigint NOT NULL DEFAULT 0 CHECK (tip_minor >= 0),
    ADD COLUMN convenience_fee_minor bigint NOT NULL DEFAULT 0 CHECK (convenience_fee_minor >= 0);

-- What each refund returned of the tip and the convenience fee (NULL: refused).
ALTER TABLE refunds
    ADD COLUMN tip_returned_minor bigint CHECK (tip_returned_minor >= 0),
    ADD COLUMN convenience_fee_returned_minor bigint CHECK (convenience_fee_returned_minor >= 0);

-- The tip the wallet's signed payment carries, in the order's currency (NULL: none).
ALTER TYPE payment_request ADD ATTRIBUTE tip_minor bigint;
ALTER TYPE order_price ADD ATTRIBUTE tip_minor bigint, ADD ATTRIBUTE convenience_fee_minor bigint;
ALTER TYPE wallet_outcome ADD ATTRIBUTE tip_minor bigint, ADD ATTRIBUTE convenience_fee_minor bigint;
ALTER TYPE refund_shares ADD ATTRIBUTE tip bigint, ADD ATTRIBUTE convenience_fee bigint;
ALTER TYPE refund_outcome ADD ATTRIBUTE tip_minor bigint, ADD ATTRIBUTE convenience_fee_minor bigint;
