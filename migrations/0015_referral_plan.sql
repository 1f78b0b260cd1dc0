-- Issue 11. A referral is decided (and both customers' points rows locked) before the
-- payment moves money, and booked after it: the plan passed between the two.
CREATE TYPE referral_plan AS (
    referee_points      text,
    referrer_points     text,
    referee_reference   text,
    referrer_reference  text,
    bonus_points        bigint
);

-- What a refund took from the merchant's account, in the order's currency (its share of
-- what the merchant was credited, less the fee returned). Earlier rows subtracted the
-- fee from the customer's share, which is in the charged currency and ignores discount
-- and points legs; recompute them from their postings.
COMMENT ON COLUMN refunds.merchant_debited_minor IS
    'debited from the merchant''s account by this refund, order currency, minor units';
COMMENT ON COLUMN refunds.customer_returned_minor IS
    'returned to the customer''s account, in the currency they were charged, minor units';
UPDATE refunds r SET merchant_debited_minor = -p.amount_minor
FROM postings p, orders o, merchants m
WHERE r.outcome = 'succeeded' AND p.ledger_transaction_id = r.ledger_transaction_id
  AND o.id = r.order_id AND m.id = o.merchant_id AND p.account_id = m.account_id;
