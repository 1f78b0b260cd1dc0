//! The daily settlement report reconciles to the merchant's ledger lines to the minor
//! unit, whatever legs its payments and refunds had (issue 11: a merchant-funded
//! discount broke it).

use crate::helpers::{json_ok, spawn_app, TestApp, TestMerchant};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// Pays a new order of `amount` from `customer` with `extra` fields in the payment.
async fn pay(
    app: &TestApp,
    merchant: &TestMerchant,
    wallet: &WalletClient,
    customer: &str,
    amount: &str,
    extra: Value,
) -> Value {
    let order = app.create_order(&merchant.cashier_key, amount).await;
    let mut body = TestApp::pay_body(&order, customer);
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    order
}

async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    order: &Value,
    amount: &str,
    reference: &str,
) {
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    let body = json!({"amount": amount, "refund_reference": reference});
    json_ok(
        app.merchant_post(&merchant.manager_key, &path, &body).await,
        StatusCode::CREATED,
    )
    .await;
}

fn dec(report: &Value, field: &str) -> Decimal {
    report[field].as_str().unwrap().parse().unwrap()
}

/// The report's lines explain its net to the minor unit, and its balances follow.
fn assert_reconciles(report: &Value) {
    let explained =
        dec(report, "payments_amount") - dec(report, "discounts_amount") - dec(report, "fees")
            + dec(report, "tips_amount")
            + dec(report, "convenience_fees_amount")
            - dec(report, "refunds_amount")
            + dec(report, "refunded_discounts_amount")
            - dec(report, "refunded_tips_amount")
            - dec(report, "refunded_convenience_fees_amount")
            - dec(report, "payouts_amount");
    assert_eq!(explained, dec(report, "net"), "{report}");
    assert_eq!(
        dec(report, "opening_balance") + dec(report, "net"),
        dec(report, "closing_balance"),
        "{report}"
    );
}

#[tokio::test]
async fn the_report_reconciles_with_discounts_points_fx_partial_refunds_and_payouts() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let merchant = app
        .create_merchant_with(json!({"time_zone": "Asia/Shanghai"}))
        .await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    // Merchant-funded 10.00 off from 50.00; platform-funded 5% (at most 1.00) on anything.
    app.create_campaign(&json!({"currency": "CNY", "budget": "1000.00", "funded_by": "merchant", "merchant_id": merchant.id,
                          "kind": "amount_off_over", "amount_off": "10.00", "min_amount": "50.00"})).await;
    app.create_campaign(
        &json!({"currency": "CNY", "budget": "1000.00", "funded_by": "platform",
                                "kind": "percent_off", "percent_off": "5", "max_discount": "1.00"}),
    )
    .await;
    // An HKD customer pays CNY orders at a rate plus spread.
    let hkd = app.funded_customer_in(&wallet, "HKD", "500.00").await;
    app.set_fx_rate("CNY", "HKD", "1.0873", 50).await;

    let merchant_funded = pay(&app, &merchant, &wallet, &customer, "60.01", json!({})).await;
    let platform_funded = pay(&app, &merchant, &wallet, &customer, "30.03", json!({})).await;
    let with_points = pay(
        &app,
        &merchant,
        &wallet,
        &customer,
        "17.77",
        json!({"use_points": 33}),
    )
    .await;
    let cross_border = pay(&app, &merchant, &wallet, &hkd, "70.07", json!({})).await;
    refund(&app, &merchant, &merchant_funded, "25.01", "r1").await;
    refund(&app, &merchant, &merchant_funded, "0.03", "r2").await;
    refund(&app, &merchant, &platform_funded, "10.01", "r3").await;
    refund(&app, &merchant, &with_points, "7.77", "r4").await;
    refund(&app, &merchant, &cross_border, "33.33", "r5").await;
    let owner = app.funded_customer(&wallet, "0").await;
    app.allow_payout_account(&merchant.id, &owner).await;
    let payout = json!({"to_account_id": owner, "amount": "12.34", "currency": "CNY", "payout_reference": "po"});
    json_ok(
        app.merchant_post(&merchant.manager_key, "/v1/payouts", &payout)
            .await,
        StatusCode::CREATED,
    )
    .await;

    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;

    assert_eq!(report["payments_count"], 4);
    assert_eq!(report["payments_amount"], "177.88");
    // The merchant's 10.00 off applies to 60.01 and to 70.07 (it beats the platform's 1.00).
    assert_eq!(report["discounts_amount"], "20.00", "{report}");
    assert_eq!(report["refunds_count"], 5);
    assert_eq!(report["refunds_amount"], "76.15");
    // The merchant returns its share of what it was credited, cumulatively rounded:
    // r1 50.01 × 25.01 / 60.01 = 20.84 (4.17 of discount), r2 20.87 − 20.84 = 0.03 (none),
    // r5 60.07 × 33.33 / 70.07 = 28.57 (4.76).
    assert_eq!(report["refunded_discounts_amount"], "8.93", "{report}");
    assert_eq!(report["payouts_amount"], "12.34");
    assert_reconciles(&report);
    assert_eq!(
        report["closing_balance"],
        app.merchant_balance(&merchant).await
    );
    // What each refund took from the merchant is its ledger line, in the order's currency.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM refunds r JOIN postings p ON p.ledger_transaction_id = r.ledger_transaction_id
             JOIN merchants m ON m.account_id = p.account_id
             WHERE r.merchant_debited_minor <> -p.amount_minor"
        )
        .await,
        0
    );
}

/// The reports read only the orders that could have been paid in their window: those
/// made at most an order's longest life (24 hours) before it. An order paid near the
/// end of that life, made the day before, still counts in both — and nothing else does.
#[tokio::test]
async fn an_order_paid_at_the_end_of_its_longest_life_counts_in_both_reports() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let body = json!({"amount": "12.34", "currency": "CNY", "merchant_reference": "late",
                      "expires_in_seconds": 86_400});
    let order = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    // As if it had been shown for almost its whole life before the customer paid.
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = created_at - interval '86000 seconds' WHERE id = $1",
            &[&order["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(report["payments_count"], 1, "{report}");
    assert_eq!(report["payments_amount"], "12.34", "{report}");
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let shift = json_ok(
        app.merchant_get(
            &merchant.manager_key,
            &format!("/v1/reports/shift?since={}", since.replace('+', "%2B")),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shift["totals"]["orders_paid"], 1, "{shift}");
    assert_eq!(shift["totals"]["paid_amount"], "12.34", "{shift}");
}

/// The sum of `account`'s postings created before `at`, the slow and obvious way.
const POSTINGS_BEFORE: &str = "SELECT coalesce(sum(p.amount_minor), 0)::bigint FROM postings p
     JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
     WHERE p.account_id = $1 AND t.created_at < $2";
/// The same through the xid clock and the stored balances.
const BALANCE_AT: &str = "SELECT account_balance_at($1, $2)";
/// Whether a balance of `account` at `at` is stored (0 or 1).
const STORED_AT: &str =
    "SELECT count(*) FROM account_balances_at WHERE account_id = $1 AND at = $2";

/// One of the queries above for `account` at `at`.
async fn at_instant(
    db: &tokio_postgres::Client,
    sql: &str,
    account: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    db.query_one(sql, &[&account, &at]).await.unwrap().get(0)
}

/// The wallet's funding account in CNY (where its customers' top-ups come from).
async fn funding_account(db: &tokio_postgres::Client, wallet: &WalletClient) -> String {
    db.query_one(
        "SELECT id FROM accounts WHERE kind = 'funding' AND wallet_id = $1 AND currency = 'CNY'",
        &[&wallet.wallet_id],
    )
    .await
    .unwrap()
    .get(0)
}

async fn now(db: &tokio_postgres::Client) -> chrono::DateTime<chrono::Utc> {
    db.query_one("SELECT clock_timestamp()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Every line of `account` as a statement shows it: the balance before it, read through
/// the clock (`account_balance_below`, in one snapshot), is the sum of every line before
/// it in statement order.
async fn assert_every_line_balance(db: &tokio_postgres::Client, account: &str) -> usize {
    let lines = db
        .query(
            "SELECT p.xid::text, p.id, (SELECT coalesce(sum(q.amount_minor), 0)::bigint FROM postings q
                                        WHERE q.account_id = p.account_id AND (q.xid, q.id) < (p.xid, p.id))
             FROM postings p WHERE p.account_id = $1 ORDER BY p.xid, p.id",
            &[&account],
        )
        .await
        .unwrap();
    for line in &lines {
        let (xid, id, expected): (&str, i64, i64) = (line.get(0), line.get(1), line.get(2));
        db.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await
            .unwrap();
        let below: i64 = db
            .query_one(
                "SELECT account_balance_below($1, $2::text::xid8, $3)",
                &[&account, &xid, &id],
            )
            .await
            .unwrap()
            .get(0);
        db.batch_execute("COMMIT").await.unwrap();
        assert_eq!(below, expected, "before line {xid}/{id} of {account}");
    }
    lines.len()
}

/// A balance at an instant reads only a few minutes of the account's ledger around it
/// (the xid clock), yet must count a posting whose transaction started before the
/// instant and took its xid, and committed, well after: it is not stored until no such
/// posting can still come, and then it is counted.
#[tokio::test]
async fn a_balance_at_an_instant_counts_a_transaction_that_started_before_it_and_committed_after() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let db = app.db().await;
    let funding = funding_account(&db, &wallet).await;
    let straggler = app.db().await;
    straggler.batch_execute("BEGIN").await.unwrap();
    let started: chrono::DateTime<chrono::Utc> = straggler
        .query_one("SELECT now()", &[])
        .await
        .unwrap()
        .get(0);

    let mut instants = vec![now(&db).await];
    for amount in ["1.01", "2.02", "3.03"] {
        pay(&app, &merchant, &wallet, &customer, amount, json!({})).await;
        db.execute("SELECT xid_clock_tick(0)", &[]).await.unwrap();
        instants.push(now(&db).await);
    }
    // The straggler posts only now: its line is created at `started`, before every instant,
    // with an xid above every tick so far.
    straggler
        .execute(
            "SELECT ledger_post('top_up', 'straggler', ARRAY[$1, $2], ARRAY[-500, 500]::bigint[],
                                ARRAY[-1000000, NULL]::bigint[], 0)",
            &[&funding, &customer],
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    db.execute("SELECT xid_clock_tick(0)", &[]).await.unwrap();
    assert_every_line_balance(&db, &customer).await;
    for &at in &instants {
        assert_eq!(
            at_instant(&db, BALANCE_AT, &customer, at).await,
            at_instant(&db, POSTINGS_BEFORE, &customer, at).await
        );
        assert_eq!(
            at_instant(&db, STORED_AT, &customer, at).await,
            0,
            "stored while a writer from before it is open"
        );
    }

    straggler.batch_execute("COMMIT").await.unwrap();
    db.execute("SELECT xid_clock_tick(0)", &[]).await.unwrap();
    for &at in &instants {
        let expected = at_instant(&db, POSTINGS_BEFORE, &customer, at).await;
        assert_eq!(
            at_instant(&db, BALANCE_AT, &customer, at).await,
            expected,
            "at {at}"
        );
        assert_eq!(
            at_instant(&db, STORED_AT, &customer, at).await,
            1,
            "settled at {at}"
        );
        // Read again from what was stored.
        assert_eq!(
            at_instant(&db, BALANCE_AT, &customer, at).await,
            expected,
            "at {at}, stored"
        );
    }
    // A statement's running balance, through the same clock: the straggler's line sorts
    // after the payments (its xid is later) though it was created before them.
    assert_eq!(assert_every_line_balance(&db, &customer).await, 5);
    assert_every_line_balance(&db, &merchant.account_id).await;
    assert_eq!(
        at_instant(&db, BALANCE_AT, &customer, instants[0]).await
            - at_instant(&db, BALANCE_AT, &customer, started).await,
        500,
        "the straggler is the one line created between"
    );
}

/// Reports asked at once while payments land: every one reconciles, each balance at an
/// instant is stored at most once, and only for an instant that is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_asked_together_while_payments_land_all_reconcile() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"time_zone": "Asia/Shanghai"}))
        .await;
    // As if the shop had opened days ago: balances are stored only while it existed.
    app.db()
        .await
        .execute(
            "UPDATE accounts SET created_at = now() - interval '3 days' WHERE id = $1",
            &[&merchant.account_id],
        )
        .await
        .unwrap();
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    let paid = pay(&app, &merchant, &wallet, &customer, "10.00", json!({})).await;
    refund(&app, &merchant, &paid, "4.00", "r1").await;
    let yesterday = app.date_in("Asia/Shanghai", -1).await;
    let paying = async {
        for i in 0..10 {
            pay(
                &app,
                &merchant,
                &wallet,
                &customer,
                &format!("1.{i:02}"),
                json!({}),
            )
            .await;
        }
    };
    let reporting = futures_util::future::join_all((0..12).map(|i| {
        let app = &app;
        let merchant = &merchant;
        let yesterday = &yesterday;
        async move {
            if i % 3 == 0 {
                json_ok(
                    app.merchant_get(
                        &merchant.manager_key,
                        &format!("/v1/reports/settlement?date={yesterday}"),
                    )
                    .await,
                    StatusCode::OK,
                )
                .await
            } else {
                app.settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
                    .await
            }
        }
    }));
    let ((), reports) = tokio::join!(paying, reporting);
    for report in &reports {
        assert_reconciles(report);
    }
    let today = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(today["payments_count"], 11, "{today}");
    assert_eq!(
        today["closing_balance"],
        app.merchant_balance(&merchant).await
    );
    // Yesterday's two instants and today's start are over; today's end is not.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM account_balances_at b JOIN merchants m ON m.account_id = b.account_id
             WHERE m.id = '{}'",
            merchant.id
        ))
        .await,
        2
    );
}

/// Two read paths over one day of one account, held to each other: the settlement
/// report (by time, through stored balances) and the statement of that day paged three
/// lines at a time (by transaction order, through the clock). The lines sum to the
/// report's net, the first line starts from its opening balance and the last ends at
/// its closing balance; the CSV says the same.
#[tokio::test]
async fn the_days_statement_paged_through_reconciles_with_its_settlement_report() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"time_zone": "America/New_York"}))
        .await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let mut paid = Vec::new();
    for amount in ["12.34", "0.99", "100.00", "7.77", "45.10"] {
        paid.push(pay(&app, &merchant, &wallet, &customer, amount, json!({})).await);
        // A tick between sales: pages then start from different ticks' balances.
        app.db()
            .await
            .execute("SELECT xid_clock_tick(0)", &[])
            .await
            .unwrap();
    }
    refund(&app, &merchant, &paid[2], "40.00", "r1").await;
    refund(&app, &merchant, &paid[0], "12.34", "r2").await;
    let report = app
        .settlement_report_today(&merchant.manager_key, "America/New_York")
        .await;
    assert_reconciles(&report);
    let today = app.date_in("America/New_York", 0).await;
    let (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT $1::date::timestamp AT TIME ZONE 'America/New_York',
                        ($1::date + 1)::timestamp AT TIME ZONE 'America/New_York'",
                &[&today.parse::<chrono::NaiveDate>().unwrap()],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    let range = format!(
        "from={}&to={}",
        from.to_rfc3339().replace('+', "%2B"),
        to.to_rfc3339().replace('+', "%2B")
    );
    let path = format!("/v1/accounts/{}/statement", merchant.account_id);
    let mut lines = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let query = match &cursor {
            Some(c) => format!("?{range}&limit=3&cursor={c}"),
            None => format!("?{range}&limit=3"),
        };
        let page = json_ok(
            app.merchant_get(&merchant.manager_key, &format!("{path}{query}"))
                .await,
            StatusCode::OK,
        )
        .await;
        lines.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // Five sales and two refunds (the fees are the fee account's lines, not these).
    assert_eq!(lines.len(), 7, "{lines:?}");
    let net: Decimal = lines.iter().map(|l| dec(l, "amount")).sum();
    assert_eq!(net, dec(&report, "net"), "{report}");
    assert_eq!(
        dec(&lines[0], "balance_after") - dec(&lines[0], "amount"),
        dec(&report, "opening_balance")
    );
    assert_eq!(
        dec(lines.last().unwrap(), "balance_after"),
        dec(&report, "closing_balance")
    );
    for pair in lines.windows(2) {
        assert_eq!(
            dec(&pair[0], "balance_after") + dec(&pair[1], "amount"),
            dec(&pair[1], "balance_after"),
            "{pair:?}"
        );
    }
    let csv = app
        .merchant_get(&merchant.manager_key, &format!("{path}?{range}&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let last_balance = csv.lines().last().unwrap().rsplit(',').next().unwrap();
    assert_eq!(csv.lines().count(), 1 + lines.len(), "{csv}");
    assert_eq!(last_balance, report["closing_balance"], "{csv}");
}

/// Once the UTC day's start is settled, the sweeper's daily pass stores each merchant's
/// balance at it (a batch a call, resuming where it stopped; once a day), so even a
/// shop's first report reads about a day of lines. A shop with no lines is passed over.
#[tokio::test]
async fn the_daily_pass_stores_each_active_shops_balance_at_the_days_start_once() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let (old, new, idle) = (
        app.create_merchant_with(json!({"time_zone": "UTC"})).await,
        app.create_merchant().await,
        app.create_merchant().await,
    );
    let db = app.db().await;
    // Yesterday's line of the old shop, as an earlier day's payment left it: created and
    // given its xid before the clock's first tick (xid 3 is older than any here).
    db.batch_execute(&format!(
        "WITH t AS (INSERT INTO ledger_transactions (kind, reference, created_at, xid)
                    VALUES ('top_up', 'yesterday', now() - interval '1 day', '3') RETURNING id)
         INSERT INTO postings (ledger_transaction_id, account_id, amount_minor, xid)
         SELECT t.id, a, m, '3' FROM t, (VALUES ('{old}', 500), ('{funding}', -500)) v(a, m);
         UPDATE account_balances SET balance_minor = balance_minor + 500 WHERE account_id = '{old}' AND shard = 0;
         UPDATE account_balances SET balance_minor = balance_minor - 500 WHERE account_id = '{funding}';
         UPDATE accounts SET created_at = now() - interval '2 days' WHERE id = '{old}';",
        old = old.account_id,
        funding = funding_account(&db, &wallet).await,
    ))
    .await
    .unwrap();
    pay(&app, &new, &wallet, &customer, "2.50", json!({})).await;
    // The pass ran for today when the gateway started, before these shops: run it again.
    db.batch_execute("DELETE FROM balance_days").await.unwrap();
    let mut stored = 0;
    for _ in 0..10 {
        stored += db
            .query_one("SELECT store_daily_balances(1)", &[])
            .await
            .unwrap()
            .get::<_, i32>(0);
    }
    // The new shop's account was opened today: nothing to store at the day's start.
    assert_eq!(stored, 1, "the old shop");
    let balances: Vec<(String, i64)> = db
        .query(
            "SELECT m.id, b.balance_minor FROM account_balances_at b JOIN merchants m ON m.account_id = b.account_id
             WHERE b.at = date_trunc('day', now(), 'UTC') ORDER BY b.balance_minor DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(balances, [(old.id.clone(), 500)]);
    assert!(!balances
        .iter()
        .any(|(id, _)| *id == idle.id || *id == new.id));
    assert_eq!(
        app.count("SELECT count(*) FROM balance_days WHERE done_at IS NOT NULL")
            .await,
        1
    );
    // Once a day: another call stores nothing.
    let again: i32 = db
        .query_one("SELECT store_daily_balances(100)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(again, 0);
    // The old shop's report of today opens at yesterday's line, in UTC.
    let report = app.settlement_report_today(&old.manager_key, "UTC").await;
    assert_eq!(report["opening_balance"], "5.00", "{report}");
    assert_reconciles(&report);
}
