-- Operators block a customer account (issue 7): every wallet call from it — payment,
-- top-up, transfer — is declined with `account_blocked`, stored like any decline so a
-- retry gets the same answer, and moves no money. The check rides on the account lookup
-- every wallet call already makes: no extra statement on the hot path.

ALTER TABLE accounts ADD COLUMN blocked_at timestamptz;
