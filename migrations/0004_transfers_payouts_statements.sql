-- Transfers between a wallet's customers, merchant payouts to allowed accounts, and
-- what statements need: a commit-safe order for ledger lines.

-- Statement order. A posting's id is taken before its transaction commits, so ids alone
-- let a late commit slip behind a reader's cursor. Each line also records its
-- transaction id (xid8); a statement returns only lines whose xid is below its
-- snapshot's xmin (every older writer has finished), in (xid, id) order: a line that
-- commits later always sorts after every line already returned.
ALTER TABLE ledger_transactions ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE postings ADD COLUMN xid xid8;
UPDATE postings p SET xid = t.xid FROM ledger_transactions t WHERE t.id = p.ledger_transaction_id;
ALTER TABLE postings ALTER COLUMN xid SET NOT NULL, ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
DROP INDEX postings_by_account;
CREATE INDEX postings_by_account ON postings (account_id, xid, id);
CREATE INDEX ledger_transactions_by_time ON ledger_transactions (created_at);

-- Customer accounts an operator allows a merchant to pay out to.
CREATE TABLE payout_accounts (
    merchant_id     text NOT NULL REFERENCES merchants (id),
    account_id      text NOT NULL REFERENCES accounts (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, account_id)
);

CREATE TABLE payouts (
    id                      text PRIMARY KEY,
    merchant_id             text NOT NULL REFERENCES merchants (id),
    payout_reference        text NOT NULL CHECK (payout_reference ~ '^[ -~]{1,64}$'),
    request_sha256          bytea NOT NULL,
    http_status             smallint NOT NULL,
    outcome                 text NOT NULL,
    outcome_message         text,
    to_account_id           text NOT NULL,
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    currency                text NOT NULL,
    ledger_transaction_id   bigint UNIQUE REFERENCES ledger_transactions (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (merchant_id, payout_reference),
    CHECK ((outcome = 'succeeded') = (ledger_transaction_id IS NOT NULL))
);

-- What a transfer answered, for the wallet's retries (wallet_txns keeps the outcome).
CREATE TABLE transfers (
    wallet_id               text NOT NULL,
    wallet_txn_id           text NOT NULL,
    from_account_id         text NOT NULL,
    to_account_id           text NOT NULL,
    amount_minor            bigint NOT NULL CHECK (amount_minor > 0),
    currency                text NOT NULL,
    ledger_transaction_id   bigint NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, wallet_txn_id)
);

CREATE TYPE payout_outcome AS (
    outcome         text,
    http_status     smallint,
    message         text,
    payout_id       text,
    to_account_id   text,
    amount_minor    bigint,
    currency        text,
    payout_reference text,
    created_at      timestamptz
);
