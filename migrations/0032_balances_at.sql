-- An account's balance at an instant (the sum of its postings created before it), for
-- reports and statements, without summing the account's whole history every time.
--
-- A posting's time is its transaction's start (ledger_transactions.created_at, now()),
-- while its order is (xid, id): the xid is taken later, when the transaction first
-- writes. The xid clock ties the two together. A tick, taken by the sweeper about once
-- a minute, records:
--   next_xid        the next transaction id to be handed out at `at`: every transaction
--                   starting at or after `at` has an xid at or above it;
--   settled_before  every transaction of this database that started before it had
--                   finished at `at`: all of their xids are below next_xid, and all of
--                   their postings are committed or gone.
-- So the postings created in [a, b) are among those with xid in [next_xid of the last
-- tick at or before a, next_xid of the first tick settled at or after b): a range of
-- the account's index a few minutes wider than [a, b), whatever the account's age.
CREATE TABLE xid_clock (
    at              timestamptz PRIMARY KEY,
    next_xid        xid8 NOT NULL,
    settled_before  timestamptz NOT NULL CHECK (settled_before <= at)
);
-- A statement line's balance starts from the last tick below the line's xid.
CREATE INDEX xid_clock_by_xid ON xid_clock (next_xid);

-- A balance at an instant, stored once that instant is settled (no posting created
-- before it can still commit): it never changes after, the ledger being append-only.
CREATE TABLE account_balances_at (
    account_id      text NOT NULL REFERENCES accounts (id),
    at              timestamptz NOT NULL,
    balance_minor   bigint NOT NULL,
    PRIMARY KEY (account_id, at)
);

-- A day's refunds, for the settlement report and a shift's close, without walking
-- every order the shop ever made (a refund row is written in its ledger transaction:
-- its created_at is that transaction's).
CREATE INDEX refunds_succeeded_by_time ON refunds (created_at) WHERE outcome = 'succeeded';

-- The sweeper's daily pass storing each merchant's balance at the start of the UTC day
-- (store_daily_balances): how far it got, so a pass resumes and runs once a day.
CREATE TABLE balance_days (
    day                 timestamptz PRIMARY KEY,
    after_merchant_id   text NOT NULL DEFAULT '',
    done_at             timestamptz
);
