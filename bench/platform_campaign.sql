-- A platform-funded 1% off every CNY sale (at most 1.00), budget never reached.
INSERT INTO campaigns (id, kind, percent_off, max_discount_minor, currency, budget_minor, funded_by)
VALUES ('cmp_platform', 'percent_off', 1, 100, 'CNY', 1000000000000, 'platform');
SELECT platform_account('promotions', 'CNY');
