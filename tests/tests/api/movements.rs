//! Transfers between a wallet's customers, merchant payouts, statements and the daily
//! settlement report.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

fn transfer_body(from: &str, to: &str, amount: &str) -> Value {
    json!({"wallet_txn_id": qrgate_domain::ids::mint("tr"), "from_account_id": from, "to_account_id": to, "amount": amount, "currency": "CNY"})
}

#[tokio::test]
async fn a_wallet_moves_money_between_its_customers() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let (alice, bob) = (
        app.funded_customer(&wallet, "50.00").await,
        app.funded_customer(&wallet, "0").await,
    );

    let body = transfer_body(&alice, &bob, "20.00");
    let moved = json_ok(
        wallet.post("transfers", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["status"], "succeeded");
    // A retry with the same wallet_txn_id answers the same and moves nothing more.
    json_ok(
        wallet.post("transfers", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &alice).await, "30.00");
    assert_eq!(app.customer_balance(&wallet, &bob).await, "20.00");

    let too_much = transfer_body(&alice, &bob, "30.01");
    assert_error(
        wallet.post("transfers", &too_much).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;
    assert_error(
        wallet
            .post("transfers", &transfer_body(&alice, &alice, "1.00"))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let other = app.create_wallet().await;
    let stranger = app.funded_customer(&other, "10.00").await;
    assert_error(
        wallet
            .post("transfers", &transfer_body(&alice, &stranger, "1.00"))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        wallet
            .post("transfers", &transfer_body(&stranger, &alice, "1.00"))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &alice).await, "30.00");
}

#[tokio::test]
async fn opposite_transfers_at_once_neither_deadlock_nor_overdraw() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let (a, b) = (
        app.funded_customer(&wallet, "10.00").await,
        app.funded_customer(&wallet, "10.00").await,
    );
    let bodies: Vec<Value> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                transfer_body(&a, &b, "1.00")
            } else {
                transfer_body(&b, &a, "1.00")
            }
        })
        .collect();
    for response in join_all(bodies.iter().map(|body| wallet.post("transfers", body))).await {
        let response = response.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(
            status == StatusCode::OK || body["error"]["code"] == "insufficient_funds",
            "{status}: {body}"
        );
    }
    let total: f64 = [
        app.customer_balance(&wallet, &a).await,
        app.customer_balance(&wallet, &b).await,
    ]
    .iter()
    .map(|s| s.parse::<f64>().unwrap())
    .sum();
    assert_eq!(total, 20.0);
}

async fn earning_merchant(
    app: &TestApp,
    wallet: &WalletClient,
    amount: &str,
) -> (TestMerchant, Value) {
    let merchant = app.create_merchant_with(json!({"fee_rate_bps": 0})).await;
    let customer = app.funded_customer(wallet, "1000.00").await;
    let order = app.create_order(&merchant.cashier_key, amount).await;
    json_ok(app.pay(wallet, &order, &customer).await, StatusCode::OK).await;
    (merchant, order)
}

fn payout_body(to: &str, amount: &str, reference: &str) -> Value {
    json!({"to_account_id": to, "amount": amount, "currency": "CNY", "payout_reference": reference})
}

#[tokio::test]
async fn payouts_go_only_to_allowed_accounts_and_never_overdraw() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let (merchant, order) = earning_merchant(&app, &wallet, "100.00").await;
    let owner = app.funded_customer(&wallet, "0").await;

    let not_allowed = app
        .merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "10.00", "p1"),
        )
        .await;
    assert_error(not_allowed, StatusCode::NOT_FOUND, "not_found").await;
    app.allow_payout_account(&merchant.id, &owner).await;

    let paid_out = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "60.00", "p2"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(paid_out["status"], "succeeded");
    let again = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "60.00", "p2"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again["id"], paid_out["id"]);
    let conflict = app
        .merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "61.00", "p2"),
        )
        .await;
    assert_error(conflict, StatusCode::CONFLICT, "idempotency_conflict").await;
    let overdraw = app
        .merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "40.01", "p3"),
        )
        .await;
    assert_error(
        overdraw,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_insufficient_funds",
    )
    .await;
    assert_eq!(app.merchant_balance(&merchant).await, "40.00");
    assert_eq!(app.customer_balance(&wallet, &owner).await, "60.00");

    // A refund bigger than what the merchant has left moves nothing.
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    let refund = app
        .merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "50.00", "refund_reference": "r"}),
        )
        .await;
    assert_error(
        refund,
        StatusCode::UNPROCESSABLE_ENTITY,
        "merchant_insufficient_funds",
    )
    .await;
    assert_eq!(app.merchant_balance(&merchant).await, "40.00");
    // Payouts need the refunds scope.
    let cashier = app
        .merchant_post(
            &merchant.cashier_key,
            "/v1/payouts",
            &payout_body(&owner, "1.00", "p4"),
        )
        .await;
    assert_error(cashier, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn statement(wallet: &WalletClient, account: &str, query: &str) -> Value {
    json_ok(
        wallet
            .get(&format!("accounts/{account}/statement{query}"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await
}

#[tokio::test]
async fn a_statement_lists_every_line_with_its_running_balance() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let merchant = app
        .create_merchant_with(json!({"name": "Noodles, \"Best\""}))
        .await;
    let alice = app.funded_customer(&wallet, "100.00").await;
    let bob = app.funded_customer(&wallet, "0").await;
    let order = app.create_order(&merchant.cashier_key, "12.34").await;
    json_ok(app.pay(&wallet, &order, &alice).await, StatusCode::OK).await;
    json_ok(
        wallet
            .post("transfers", &transfer_body(&alice, &bob, "7.66"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;

    let lines = statement(&wallet, &alice, "").await;
    let items = lines["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["top_up", "payment", "transfer"]);
    let amounts: Vec<&str> = items
        .iter()
        .map(|l| l["amount"].as_str().unwrap())
        .collect();
    assert_eq!(amounts, ["100.00", "-12.34", "-7.66"]);
    let balances: Vec<&str> = items
        .iter()
        .map(|l| l["balance_after"].as_str().unwrap())
        .collect();
    assert_eq!(balances, ["100.00", "87.66", "80.00"]);
    assert!(items[1]["description"]
        .as_str()
        .unwrap()
        .contains("Noodles, \"Best\""));
    assert_eq!(app.customer_balance(&wallet, &alice).await, "80.00");

    // The merchant's own statement: the payment, net of its fee.
    let own = json_ok(
        app.merchant_get(
            &merchant.manager_key,
            &format!("/v1/accounts/{}/statement", merchant.account_id),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(own["items"][0]["amount"], "12.29");
    assert_eq!(own["items"][0]["kind"], "payment");
    // Other owners' accounts are not there for them.
    let other = app.create_wallet().await;
    assert_error(
        other
            .get(&format!("accounts/{alice}/statement"))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let foreign = app
        .merchant_get(
            &merchant.manager_key,
            &format!("/v1/accounts/{alice}/statement"),
        )
        .await;
    assert_error(foreign, StatusCode::NOT_FOUND, "not_found").await;
    let cashier = app
        .merchant_get(
            &merchant.cashier_key,
            &format!("/v1/accounts/{}/statement", merchant.account_id),
        )
        .await;
    assert_error(cashier, StatusCode::FORBIDDEN, "forbidden").await;

    // CSV: the same lines, RFC 4180 quoting.
    let csv = wallet
        .get(&format!("accounts/{alice}/statement?format=csv"))
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(
        rows[0],
        "posted_at,ledger_transaction_id,kind,description,amount,balance_after"
    );
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[2].contains("\"payment to Noodles, \"\"Best\"\", order "),
        "{}",
        rows[2]
    );
    assert!(rows[2].ends_with(",-12.34,87.66"), "{}", rows[2]);
}

#[tokio::test]
async fn the_lines_of_a_range_sum_to_its_balance_change() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let alice = app.funded_customer(&wallet, "100.00").await;
    let bob = app.funded_customer(&wallet, "0").await;
    for amount in ["1.11", "2.22", "3.33", "4.44"] {
        json_ok(
            wallet
                .post("transfers", &transfer_body(&alice, &bob, amount))
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
    }
    let all = statement(&wallet, &alice, "").await;
    let items = all["items"].as_array().unwrap();
    let (from, to) = (
        items[2]["posted_at"].as_str().unwrap(),
        items[4]["posted_at"].as_str().unwrap(),
    );
    let range = statement(
        &wallet,
        &alice,
        &format!("?from={}&to={}", urlencode(from), urlencode(to)),
    )
    .await;
    let lines = range["items"].as_array().unwrap();
    let cents = |s: &str| (s.parse::<f64>().unwrap() * 100.0).round() as i64;
    let sum: i64 = lines
        .iter()
        .map(|l| cents(l["amount"].as_str().unwrap()))
        .sum();
    let before = cents(items[1]["balance_after"].as_str().unwrap());
    let after = cents(lines.last().unwrap()["balance_after"].as_str().unwrap());
    assert_eq!(lines.len(), 2);
    assert_eq!(sum, after - before);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn paging_while_lines_are_added_skips_and_repeats_nothing() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let alice = app.funded_customer(&wallet, "0").await;
    for _ in 0..5 {
        let body = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": alice, "amount": "1.00", "currency": "CNY"});
        json_ok(wallet.post("top-ups", &body).await.unwrap(), StatusCode::OK).await;
    }
    let writer = async {
        for _ in 0..30 {
            let body = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": alice, "amount": "1.00", "currency": "CNY"});
            json_ok(wallet.post("top-ups", &body).await.unwrap(), StatusCode::OK).await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..200 {
            let query = cursor
                .as_ref()
                .map_or("?limit=2".to_owned(), |c| format!("?limit=2&cursor={c}"));
            let page = statement(&wallet, &alice, &query).await;
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["ledger_transaction_id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a line was repeated");
    // Read again once all is written: what the concurrent reader saw is a prefix.
    let all: Vec<String> = statement(&wallet, &alice, "?limit=200").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ledger_transaction_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 35);
    assert_eq!(&all[..seen.len()], &seen[..], "a line was skipped");
}

#[tokio::test]
async fn the_daily_settlement_report_reconciles_to_the_ledger() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let merchant = app
        .create_merchant_with(json!({"time_zone": "Asia/Shanghai"}))
        .await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    let owner = app.funded_customer(&wallet, "0").await;
    let mut orders = Vec::new();
    for amount in ["100.00", "50.00"] {
        let order = app.create_order(&merchant.cashier_key, amount).await;
        json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
        orders.push(order);
    }
    let refund_path = format!("/v1/orders/{}/refunds", orders[1]["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &refund_path,
            &json!({"amount": "20.00", "refund_reference": "r"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.allow_payout_account(&merchant.id, &owner).await;
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &payout_body(&owner, "30.00", "po"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    let today = report["date"].as_str().unwrap().to_owned();

    // Fees at 0.38%: 0.38 + 0.19 = 0.57 charged; refunding 20 of 50 returns round(0.19 × 0.4) = 0.08.
    assert_eq!(report["opening_balance"], "0.00");
    assert_eq!(report["payments_count"], 2);
    assert_eq!(report["payments_amount"], "150.00");
    assert_eq!(report["refunds_count"], 1);
    assert_eq!(report["refunds_amount"], "20.00");
    assert_eq!(report["fees"], "0.49");
    assert_eq!(report["payouts_amount"], "30.00");
    assert_eq!(report["net"], "99.51");
    assert_eq!(report["closing_balance"], "99.51");
    assert_eq!(app.merchant_balance(&merchant).await, "99.51");

    let yesterday = app.date_in("Asia/Shanghai", -1).await;
    let before = json_ok(
        app.merchant_get(
            &merchant.manager_key,
            &format!("/v1/reports/settlement?date={yesterday}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(before["payments_count"], 0);
    assert_eq!(before["closing_balance"], "0.00");

    let csv = app
        .merchant_get(
            &merchant.manager_key,
            &format!("/v1/reports/settlement?date={today}&format=csv"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("date,currency,opening_balance,payments_count,payments_amount,discounts_amount,refunds_count,refunds_amount,refunded_discounts_amount,fees,payouts_amount,net,closing_balance,tips_amount,convenience_fees_amount,refunded_tips_amount,refunded_convenience_fees_amount\r\n"));
    assert!(
        csv.contains(",99.51,99.51,0.00,0.00,0.00,0.00\r\n"),
        "{csv}"
    );
    assert_error(
        app.merchant_get(
            &merchant.manager_key,
            "/v1/reports/settlement?date=yesterday",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_error(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/reports/settlement?date={today}"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

/// Lets `wallet` take part in transfers across providers in CNY, up to `max` a transfer.
async fn take_part(app: &TestApp, wallet: &WalletClient, max: &str) {
    json_ok(
        app.admin_put(
            &format!(
                "/v1/admin/wallets/{}/cross-provider-transfers/CNY",
                wallet.wallet_id
            ),
            &json!({"transfer_max": max}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn customers_of_two_wallets_transfer_only_when_both_take_part_and_within_both_maximums() {
    let app = spawn_app().await;
    let (alipay, tenpay) = (app.create_wallet().await, app.create_wallet().await);
    let alice = app.funded_customer(&alipay, "500.00").await;
    let bob = app.funded_customer(&tenpay, "0").await;

    // Neither takes part: another wallet's account does not exist for alipay.
    assert_error(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "10.00"))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // One side takes part, the other not.
    take_part(&app, &alipay, "300.00").await;
    assert_error(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "10.00"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "transfer_not_allowed",
    )
    .await;
    // Both: within the smaller maximum (tenpay's 100.00) it moves; above it, not.
    take_part(&app, &tenpay, "100.00").await;
    let moved = json_ok(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "100.00"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["status"], "succeeded");
    let refused = assert_error(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "100.01"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
    assert_eq!(refused["error"]["rule"], "cross_provider_max");
    // The paying side's own risk limits apply as to any transfer.
    json_ok(
        app.admin_put(
            "/v1/admin/risk-limits/CNY",
            &json!({"transaction_max": "50.00"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let over = assert_error(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "60.00"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
    assert_eq!(over["error"]["rule"], "transaction_max");
    // Back the other way, by the receiving wallet.
    json_ok(
        tenpay
            .post("transfers", &transfer_body(&bob, &alice, "30.00"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.customer_balance(&alipay, &alice).await, "430.00");
    assert_eq!(app.customer_balance(&tenpay, &bob).await, "70.00");
    // A wallet that stops taking part stops both ways.
    json_ok(
        app.admin_delete(
            "/v1/admin/wallets/{}/cross-provider-transfers/CNY"
                .replace("{}", &tenpay.wallet_id)
                .as_str(),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_error(
        alipay
            .post("transfers", &transfer_body(&alice, &bob, "1.00"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "transfer_not_allowed",
    )
    .await;
    let settings = json_ok(
        app.admin_get(&format!(
            "/v1/admin/wallets/{}/cross-provider-transfers",
            alipay.wallet_id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(settings["items"][0]["transfer_max"], "300.00");
}

#[tokio::test]
async fn opposite_transfers_across_two_wallets_at_once_all_land_without_a_deadlock() {
    let app = spawn_app().await;
    let (one, other) = (app.create_wallet().await, app.create_wallet().await);
    take_part(&app, &one, "1000.00").await;
    take_part(&app, &other, "1000.00").await;
    let alice = app.funded_customer(&one, "100.00").await;
    let bob = app.funded_customer(&other, "100.00").await;
    let there: Vec<Value> = (0..20)
        .map(|_| transfer_body(&alice, &bob, "1.00"))
        .collect();
    let back: Vec<Value> = (0..20)
        .map(|_| transfer_body(&bob, &alice, "2.00"))
        .collect();
    let (sent, returned) = tokio::join!(
        join_all(there.iter().map(|b| one.post("transfers", b))),
        join_all(back.iter().map(|b| other.post("transfers", b)))
    );
    for answer in sent.into_iter().chain(returned) {
        json_ok(answer.unwrap(), StatusCode::OK).await;
    }
    assert_eq!(app.customer_balance(&one, &alice).await, "120.00");
    assert_eq!(app.customer_balance(&other, &bob).await, "80.00");
}
