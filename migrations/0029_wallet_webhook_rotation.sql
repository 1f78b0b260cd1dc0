-- A wallet's webhook secret rotates like a merchant's: the previous one keeps signing
-- beside the new one for a day, so the wallet can switch without missing an event.
ALTER TABLE wallets ADD COLUMN webhook_secret_previous text,
                    ADD COLUMN webhook_secret_previous_until timestamptz;
