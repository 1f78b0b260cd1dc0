//! Issue 16's fields as an outsider sends them: NULs, trailing bytes, wrong types and
//! values out of range on every field the tips, rewards and wallet-event work added,
//! each answered 400 (or 404 for a name that cannot exist) with nothing changed; the
//! first webhook set by a herd of operators at once; and one day of tips, fees,
//! vouchers, campaigns, points and refunds whose settlement report is reconciled to
//! the merchant's postings by hand.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// Sends `raw` as a body exactly as written, signed by the wallet.
async fn wallet_raw(wallet: &WalletClient, rest: &str, raw: &[u8]) -> reqwest::Response {
    let sig = wallet.sign(raw);
    wallet
        .send(Method::POST, &wallet.path(rest), Some(raw.to_vec()), &sig)
        .await
        .unwrap()
}

/// What a merchant or operator request sends, byte for byte.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: &str,
    body: &[u8],
) -> reqwest::Response {
    app.http
        .request(method, app.url(path))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// Every table a refused request might have touched, counted.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for sql in [
        "SELECT count(*) FROM orders",
        "SELECT count(*) FROM payments",
        "SELECT count(*) FROM rewards",
        "SELECT count(*) FROM reward_redemptions",
        "SELECT count(*) FROM postings",
        "SELECT count(*) FROM wallets WHERE webhook_url IS NOT NULL",
        "SELECT count(*) FROM merchants WHERE tip_policy <> 'none' OR tip_max_percent <> 25",
    ] {
        counts.push(app.count(sql).await);
    }
    counts
}

#[tokio::test]
async fn nuls_trailing_bytes_and_out_of_range_values_change_nothing() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let before = footprint(&app).await;

    let order_bodies: &[&str] = &[
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"prompt\u0000"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"prompt"} x"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":1}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"PROMPT"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"fixed_fee","convenience_fee":"99999999999.99"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"fixed_fee","convenience_fee":"-1"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"fixed_fee","convenience_fee":1.5}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"percentage_fee","convenience_fee_percent":"99.999"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","tip_policy":"percentage_fee","convenience_fee_percent":"1e1"}"#,
        r#"{"amount":"1.00","currency":"CNY","merchant_reference":"P1","convenience_fee":"1.00"}"#,
    ];
    for body in order_bodies {
        let r = raw(
            &app,
            Method::POST,
            "/v1/orders",
            &merchant.cashier_key,
            body.as_bytes(),
        )
        .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let policy_bodies: &[&str] = &[
        r#"{"tip_policy":"none","tip_max_percent":101}"#,
        r#"{"tip_policy":"none","tip_max_percent":2147483648}"#,
        r#"{"tip_policy":"none","tip_max_percent":"10"}"#,
        r#"{"tip_policy":"none"}{"tip_policy":"prompt"}"#,
        r#"{"tip_policy":"none","extra":true}"#,
        r#"{"tip_policy":"percentage_fee","convenience_fee_percent":"0.001"}"#,
    ];
    for body in policy_bodies {
        let r = raw(
            &app,
            Method::PUT,
            "/v1/me/tip-policy",
            &merchant.manager_key,
            body.as_bytes(),
        )
        .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let reward_bodies: &[&str] = &[
        r#"{"kind":"gift","name":"Mug\u0000","points_cost":1}"#,
        r#"{"kind":"gift","name":"Mug","points_cost":1}]"#,
        r#"{"kind":"gift","name":"Mug","points_cost":1000000001}"#,
        r#"{"kind":"gift","name":"Mug","points_cost":-5}"#,
        r#"{"kind":"gift","name":"Mug","points_cost":1.5}"#,
        r#"{"kind":"gift","name":"Mug","points_cost":1,"stock":1000001}"#,
        r#"{"kind":"voucher","name":"V","points_cost":1,"value":"1.00","valid_days":367}"#,
        r#"{"kind":"voucher","name":"V","points_cost":1,"value":"0"}"#,
        r#"{"kind":"gift","name":"","points_cost":1}"#,
    ];
    for body in reward_bodies {
        let r = raw(
            &app,
            Method::POST,
            "/v1/rewards",
            &merchant.manager_key,
            body.as_bytes(),
        )
        .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let admin_rewards: &[&str] = &[
        r#"{"kind":"voucher","name":"V","points_cost":1,"value":"1.00","merchant_id":"mch_\u0000"}"#,
        r#"{"kind":"voucher","name":"V","points_cost":1,"value":"1.00","merchant_id":"a-b"}"#,
        r#"{"kind":"gift","name":"G","points_cost":1,"merchant_id":"MERCHANT_ID"}"#,
    ];
    for body in admin_rewards {
        let r = raw(
            &app,
            Method::POST,
            "/v1/admin/rewards",
            &app.admin_token,
            body.as_bytes(),
        )
        .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let hook_path = format!("/v1/admin/wallets/{}/webhook", wallet.wallet_id);
    for body in [
        r#"{"url":"https://example.com/\u0000"}"#.to_owned(),
        r#"{"url":"https://example.com/h"} "#.to_owned() + "x",
        format!(r#"{{"url":"https://example.com/{}"}}"#, "a".repeat(2100)),
        r#"{"url":["https://example.com/h"]}"#.to_owned(),
    ] {
        let r = raw(
            &app,
            Method::PUT,
            &hook_path,
            &app.admin_token,
            body.as_bytes(),
        )
        .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }

    // The wallet's signed bodies: tip and voucher on a payment, a redemption.
    let pay = |extra: &str| {
        format!(
            r#"{{"wallet_txn_id":"{}","qr_payload":{},"customer_account_id":"{customer}","amount":"10.00","currency":"CNY"{extra}}}"#,
            qrgate_domain::ids::mint("prb"),
            order["qr_payload"],
        )
    };
    for extra in [
        r#","tip":"1.00\u0000""#,
        r#","tip":"1.001""#,
        r#","tip":"99999999999.99""#,
        r#","tip":1"#,
        r#","tip":"-0.01""#,
        r#","voucher_code":"""#,
        r#","voucher_code":"ABCD EFGH""#,
        r#","voucher_code":"ABCD\u0000""#,
        r#","voucher_code":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA""#,
    ] {
        let r = wallet_raw(&wallet, "payments", pay(extra).as_bytes()).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let trailing = pay(r#","tip":"1.00""#) + "garbage";
    assert_error(
        wallet_raw(&wallet, "payments", trailing.as_bytes()).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    for body in [
        format!(
            r#"{{"wallet_txn_id":"r1","customer_account_id":"{customer}","reward_id":"rwd_\u0000"}}"#
        ),
        format!(
            r#"{{"wallet_txn_id":"r2","customer_account_id":"{customer}","reward_id":"rwd-x"}}"#
        ),
        format!(r#"{{"wallet_txn_id":"","customer_account_id":"{customer}","reward_id":"rwd_x"}}"#),
        format!(
            r#"{{"wallet_txn_id":"r3","customer_account_id":"{customer}","reward_id":"rwd_x","points":5}}"#
        ),
        format!(
            r#"{{"wallet_txn_id":"r4","customer_account_id":"{customer}","reward_id":"rwd_x"}}trailing"#
        ),
    ] {
        let r = wallet_raw(&wallet, "rewards/redemptions", body.as_bytes()).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    // Queries: a NUL, a bad id, an out-of-range limit.
    for query in [
        "rewards/redemptions?customer_account_id=acc%00",
        "rewards/redemptions?customer_account_id=a-b",
        "rewards?limit=0",
        "rewards?limit=100000",
        "webhooks/deliveries?cursor=nope",
    ] {
        let status = wallet.get(query).await.unwrap().status();
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND].contains(&status),
            "{query}: {status}"
        );
    }
    for path in [
        "/v1/rewards?limit=201",
        "/v1/rewards/rwd%00x",
        "/v1/rewards?cursor=%00",
    ] {
        let status = app.merchant_get(&merchant.cashier_key, path).await.status();
        assert!(
            [StatusCode::BAD_REQUEST, StatusCode::NOT_FOUND].contains(&status),
            "{path}: {status}"
        );
    }
    assert_eq!(
        footprint(&app).await,
        before,
        "nothing a refused request sent changed anything"
    );
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );
}

#[tokio::test]
async fn operators_setting_a_first_webhook_at_once_make_one_secret() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let path = format!("/v1/admin/wallets/{}/webhook", wallet.wallet_id);
    let sends = (0..8).map(|i| {
        let (app, path) = (&app, &path);
        async move {
            json_ok(
                app.admin_put(
                    path,
                    &json!({"url": format!("https://example.com/hook{i}")}),
                )
                .await,
                StatusCode::OK,
            )
            .await
        }
    });
    let answers: Vec<Value> = futures_util::future::join_all(sends).await;
    let secrets: Vec<&str> = answers
        .iter()
        .filter_map(|a| a["webhook_secret"].as_str())
        .collect();
    assert_eq!(
        secrets.len(),
        1,
        "one call made the secret and showed it: {answers:?}"
    );
    // The one shown is the one that signs (sealed at rest; opened by the gateway's key).
    let stored: String = app
        .db()
        .await
        .query_one(
            "SELECT webhook_secret FROM wallets WHERE id = $1",
            &[&wallet.wallet_id],
        )
        .await
        .unwrap()
        .get(0);
    let opened = app
        .keyring()
        .open_signing_secret(
            gateway::sealed::SecretKind::WalletWebhook,
            &wallet.wallet_id,
            &stored,
        )
        .unwrap();
    assert_eq!(opened.expose(), secrets[0]);
}

/// One day of everything that touches a merchant's money, then its settlement report
/// checked against the postings of its account: each figure from the records, and the
/// report's net from the ledger.
#[tokio::test]
async fn the_settlement_report_of_a_day_of_tips_fees_vouchers_and_refunds_reconciles_to_the_ledger()
{
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    app.create_campaign(
        &json!({"kind": "percent_off", "percent_off": "10", "currency": "CNY", "budget": "100.00",
                                "funded_by": "merchant", "merchant_id": merchant.id}),
    )
    .await;
    let order_with = |amount: &str, tip: Value| {
        let mut body = json!({"amount": amount, "currency": "CNY",
                              "merchant_reference": format!("R-{}", qrgate_domain::ids::random_base32(8))});
        for (k, v) in tip.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut paid = Vec::new();
    for (amount, policy, tip) in [
        ("100.00", json!({"tip_policy": "prompt"}), Some("12.34")),
        (
            "55.55",
            json!({"tip_policy": "fixed_fee", "convenience_fee": "1.25"}),
            None,
        ),
        (
            "80.00",
            json!({"tip_policy": "percentage_fee", "convenience_fee_percent": "3.5"}),
            None,
        ),
        ("20.00", json!({}), None),
    ] {
        let order = json_ok(
            app.create_order_raw(&merchant.cashier_key, &order_with(amount, policy))
                .await,
            StatusCode::CREATED,
        )
        .await;
        let mut body = TestApp::pay_body(&order, &customer);
        if let Some(tip) = tip {
            body["tip"] = json!(tip);
        }
        json_ok(
            wallet.post("payments", &body).await.unwrap(),
            StatusCode::OK,
        )
        .await;
        paid.push(order);
    }
    // Partial and whole refunds across them.
    for (order, amount, reference) in [
        (&paid[0], "33.33", "a"),
        (&paid[1], "55.55", "b"),
        (&paid[2], "0.01", "c"),
    ] {
        json_ok(
            app.merchant_post(
                &merchant.manager_key,
                &format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap()),
                &json!({"amount": amount, "refund_reference": reference}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    let minor = |field: &str| -> i64 {
        let d: rust_decimal::Decimal = report[field].as_str().unwrap().parse().unwrap();
        (d * rust_decimal::Decimal::from(100)).try_into().unwrap()
    };
    let explained = minor("payments_amount") - minor("discounts_amount") - minor("fees")
        + minor("tips_amount")
        + minor("convenience_fees_amount")
        - minor("refunds_amount")
        + minor("refunded_discounts_amount")
        - minor("refunded_tips_amount")
        - minor("refunded_convenience_fees_amount")
        - minor("payouts_amount");
    assert_eq!(explained, minor("net"), "{report}");
    let db = app.db().await;
    let ledger: i64 = db
        .query_one(
            "SELECT coalesce(sum(amount_minor), 0)::bigint FROM postings WHERE account_id = $1",
            &[&merchant.account_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        minor("net"),
        ledger,
        "the report's net is the account's postings"
    );
    assert_eq!(minor("closing_balance"), ledger);
    // The itemised figures from the records the report does not read.
    let row = db
        .query_one(
            "SELECT (SELECT sum(tip_minor) FROM payments)::bigint, (SELECT sum(convenience_fee_minor) FROM payments)::bigint,
                    (SELECT sum(tip_returned_minor) FROM refunds)::bigint,
                    (SELECT sum(convenience_fee_returned_minor) FROM refunds)::bigint",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(minor("tips_amount"), row.get::<_, i64>(0));
    assert_eq!(minor("convenience_fees_amount"), row.get::<_, i64>(1));
    assert_eq!(minor("refunded_tips_amount"), row.get::<_, i64>(2));
    assert_eq!(
        minor("refunded_convenience_fees_amount"),
        row.get::<_, i64>(3)
    );
    assert_eq!(minor("tips_amount"), 1234);
    assert_eq!(minor("convenience_fees_amount"), 125 + 280);
    // 12.34 × 33.33 / 100 = 4.113… → 4.11; the whole fixed fee with the whole refund; 2.80 × 0.01 / 80 → 0.
    assert_eq!(
        (
            minor("refunded_tips_amount"),
            minor("refunded_convenience_fees_amount")
        ),
        (411, 125)
    );
}

/// The report's and the statement's time inputs at their edges, from outside: NULs,
/// trailing bytes and dates past the allowed years are 400 and store nothing; the first
/// and last allowed days answer, reconcile, and store no balance from before the
/// shop's account existed or after now; a statement over every allowed year sums to the
/// shop's balance. Then replicas racing the daily pass store each balance once.
#[tokio::test]
async fn reports_and_statements_at_the_edges_of_time() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    for amount in ["12.34", "0.01", "45.00"] {
        let order = app.create_order(&merchant.cashier_key, amount).await;
        json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    }
    let key = &merchant.manager_key;
    let stored = || app.count("SELECT count(*) FROM account_balances_at");
    let before = stored().await;
    let statement = format!("/v1/accounts/{}/statement", merchant.account_id);
    let report_dates = [
        "2026-01-01%00",
        "%002026-01-01",
        "2026-01-01x",
        "2026-1-1",
        "1969-12-31",
        "10000-01-01",
        "2026-02-30",
        "",
        "2026-01-01T00:00:00Z",
    ]
    .map(|date| format!("/v1/reports/settlement?date={date}"));
    let statement_ranges = [
        "from=2026-01-01T00:00:00Z%00",
        "from=1969-12-31T23:59:59Z",
        "to=10000-01-01T00:00:00Z",
        "from=2026-01-01T00:00:00Zjunk",
        "to=%00",
    ]
    .map(|range| format!("{statement}?{range}"));
    for path in report_dates.iter().chain(&statement_ranges) {
        assert_error(
            app.merchant_get(key, path).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_eq!(stored().await, before, "a refused request stores nothing");

    let balance = app.merchant_balance(&merchant).await;
    let first = json_ok(
        app.merchant_get(key, "/v1/reports/settlement?date=1970-01-01")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            first["opening_balance"].as_str(),
            first["closing_balance"].as_str(),
            first["payments_count"].as_i64()
        ),
        (Some("0.00"), Some("0.00"), Some(0))
    );
    let last = json_ok(
        app.merchant_get(key, "/v1/reports/settlement?date=9999-12-31")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(last["opening_balance"], balance, "{last}");
    assert_eq!(
        (last["net"].as_str(), last["closing_balance"].as_str()),
        (Some("0.00"), Some(balance.as_str()))
    );
    // Nothing stored from before the account was opened, nor for an instant still to come.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM account_balances_at b JOIN accounts a ON a.id = b.account_id
             WHERE b.account_id = '{}' AND (b.at < a.created_at OR b.at > now())",
            merchant.account_id
        ))
        .await,
        0
    );
    let all = json_ok(
        app.merchant_get(
            key,
            &format!("{statement}?from=1970-01-01T00:00:00Z&to=9999-12-31T23:59:59Z&limit=200"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let lines = all["items"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{all}");
    assert_eq!(lines.last().unwrap()["balance_after"], balance);

    // Replicas racing the daily pass (one shop a call): each balance is stored once and
    // counted once.
    let db = app.db().await;
    db.batch_execute(&format!(
        "DELETE FROM balance_days; DELETE FROM account_balances_at;
         UPDATE accounts SET created_at = now() - interval '2 days' WHERE id = '{}'",
        merchant.account_id
    ))
    .await
    .unwrap();
    let racers = (0..8).map(|_| async {
        let db = app.db().await;
        let mut stored = 0;
        for _ in 0..5 {
            stored += db
                .query_one("SELECT store_daily_balances(1)", &[])
                .await
                .unwrap()
                .get::<_, i32>(0);
        }
        stored
    });
    let stored_by_racers: i32 = futures_util::future::join_all(racers)
        .await
        .into_iter()
        .sum();
    let rows = stored().await;
    assert_eq!(i64::from(stored_by_racers), rows);
    assert_eq!(rows, 1, "the one shop with lines");
    assert_eq!(
        app.count("SELECT count(*) FROM balance_days WHERE done_at IS NOT NULL")
            .await,
        1
    );
}
