//! Races: many wallets paying one order, one customer paying many orders at once.

use crate::helpers::{json_ok, spawn_app, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn fifty_concurrent_payments_of_one_order_settle_exactly_once() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let mut customers = Vec::new();
    for _ in 0..50 {
        customers.push(app.funded_customer(&wallet, "100.00").await);
    }
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    let responses = join_all(customers.iter().map(|c| app.pay(&wallet, &order, c))).await;
    let mut succeeded = 0;
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::OK => succeeded += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "already_paid", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(app.merchant_balance(&merchant).await, "9.96");
    // One payment's postings (customer, merchant, fee, and the points it earned); the rest are top-ups.
    let count = |kind: &str| {
        format!("SELECT count(*) FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id WHERE t.kind = '{kind}'")
    };
    assert_eq!(app.count(&count("payment")).await, 5);
    assert_eq!(app.count(&count("points")).await, 0);
    assert_eq!(app.count(&count("top_up")).await, 50 * 2);
}

#[tokio::test]
async fn fifty_concurrent_payments_never_take_a_customer_below_zero() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let mut orders = Vec::new();
    for _ in 0..50 {
        orders.push(app.create_order(&merchant.cashier_key, "7.00").await);
    }

    let responses = join_all(orders.iter().map(|o| app.pay(&wallet, o, &customer))).await;
    let mut succeeded = 0;
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::OK => succeeded += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "insufficient_funds", "{body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // 100.00 / 7.00 → 14 payments, 2.00 left.
    assert_eq!(succeeded, 14);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "2.00");
}

#[tokio::test]
async fn concurrent_retries_of_one_payment_apply_it_once() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let body = TestApp::pay_body(&order, &customer);

    let responses = join_all((0..20).map(|_| wallet.post("payments", &body))).await;
    let mut payment_ids = std::collections::HashSet::new();
    for response in responses {
        let paid = json_ok(response.unwrap(), StatusCode::OK).await;
        payment_ids.insert(paid["payment_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(payment_ids.len(), 1);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
}

#[tokio::test]
async fn many_payments_to_one_hot_merchant_all_settle() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(serde_json::json!({"fee_rate_bps": 0}))
        .await;
    let wallet = app.create_wallet().await;
    let mut pairs = Vec::new();
    for _ in 0..40 {
        let customer = app.funded_customer(&wallet, "5.00").await;
        pairs.push((
            app.create_order(&merchant.cashier_key, "5.00").await,
            customer,
        ));
    }
    let responses = join_all(pairs.iter().map(|(o, c)| app.pay(&wallet, o, c))).await;
    for response in responses {
        json_ok(response, StatusCode::OK).await;
    }
    assert_eq!(app.merchant_balance(&merchant).await, "200.00");
    // Credits spread over the merchant's balance shards instead of one hot row.
    let shards_used = app
        .count(&format!(
            "SELECT count(*) FROM account_balances WHERE account_id = '{}' AND balance_minor > 0",
            merchant.account_id
        ))
        .await;
    assert!(shards_used > 1, "{shards_used}");
}
