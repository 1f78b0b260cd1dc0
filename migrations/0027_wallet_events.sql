-- Wallet-provider events: the outbox that tells merchants about their orders also tells
-- a wallet about its customers (refunds, points, referrals, payouts received), signed with
-- the wallet's own webhook secret and delivered to its URL by the same workers.

-- Where a wallet's events go and the secret that signs them (sealed like a merchant's).
ALTER TABLE wallets ADD COLUMN webhook_url text,
                    ADD COLUMN webhook_secret text,
                    ADD CONSTRAINT wallets_webhook_has_secret CHECK (webhook_url IS NULL OR webhook_secret IS NOT NULL);

-- An event is for one recipient: a merchant or a wallet.
ALTER TABLE webhook_events ALTER COLUMN merchant_id DROP NOT NULL,
    ADD COLUMN wallet_id text REFERENCES wallets (id),
    ADD CONSTRAINT webhook_events_one_recipient CHECK ((merchant_id IS NULL) <> (wallet_id IS NULL)),
    DROP CONSTRAINT webhook_events_type_check,
    ADD CONSTRAINT webhook_events_type_check CHECK (
        (merchant_id IS NOT NULL AND type IN ('order.paid', 'order.expired', 'order.closed', 'refund.succeeded'))
        OR (wallet_id IS NOT NULL AND type IN ('refund.succeeded', 'points.earned', 'points.redeemed',
                                               'points.clawed_back', 'referral.rewarded', 'payout.received')));
CREATE INDEX webhook_events_by_wallet ON webhook_events (wallet_id, created_at DESC, id DESC)
    WHERE wallet_id IS NOT NULL;
CREATE INDEX referral_rewards_by_payment ON referral_rewards (payment_id);  -- rendering referral.rewarded
