//! Refunds: every leg returned cumulatively, never more than the payment, also under races.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// A paid order of `amount` from a customer who had 100.00.
async fn paid_order(
    app: &TestApp,
    merchant: &TestMerchant,
    wallet: &WalletClient,
    amount: &str,
) -> (Value, String) {
    let customer = app.funded_customer(wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, amount).await;
    json_ok(app.pay(wallet, &order, &customer).await, StatusCode::OK).await;
    (order, customer)
}

async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    order: &Value,
    amount: &str,
    reference: &str,
) -> reqwest::Response {
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    app.merchant_post(
        &merchant.manager_key,
        &path,
        &json!({"amount": amount, "refund_reference": reference}),
    )
    .await
}

#[tokio::test]
async fn a_full_refund_returns_every_leg_exactly() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let (order, customer) = paid_order(&app, &merchant, &wallet, "12.34").await;
    assert_eq!(app.fee_balance_minor("CNY").await, 5);

    let refunded = json_ok(
        refund(&app, &merchant, &order, "12.34", "r-1").await,
        StatusCode::CREATED,
    )
    .await;

    assert_eq!(refunded["status"], "succeeded");
    assert_eq!(refunded["amount"], "12.34");
    assert_eq!(refunded["order_status"], "refunded");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    assert_eq!(app.fee_balance_minor("CNY").await, 0);
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "refunded"
    );
    // Nothing is left to refund.
    assert_error(
        refund(&app, &merchant, &order, "0.01", "r-2").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_payment",
    )
    .await;
}

#[tokio::test]
async fn partial_refunds_return_the_fee_cumulatively() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    // 10.00 at 0.38%: fee 0.038 → 0.04.
    let (order, customer) = paid_order(&app, &merchant, &wallet, "10.00").await;
    assert_eq!(app.merchant_balance(&merchant).await, "9.96");

    // After 3.33: fee returned round(4 × 333/1000) = 1; merchant gives back 3.32.
    let first = json_ok(
        refund(&app, &merchant, &order, "3.33", "a").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first["order_status"], "partially_refunded");
    assert_eq!(app.merchant_balance(&merchant).await, "6.64");
    assert_eq!(app.fee_balance_minor("CNY").await, 3);
    // After 6.66: round(2.664) = 3 in all, so 2 more.
    json_ok(
        refund(&app, &merchant, &order, "3.33", "b").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.fee_balance_minor("CNY").await, 1);
    // After 10.00: all 4 returned; every leg is back where it started.
    let last = json_ok(
        refund(&app, &merchant, &order, "3.34", "c").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(last["order_status"], "refunded");
    assert_eq!(app.fee_balance_minor("CNY").await, 0);
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
}

#[tokio::test]
async fn a_refund_reference_gives_the_same_answer_again() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let (order, customer) = paid_order(&app, &merchant, &wallet, "10.00").await;

    let first = json_ok(
        refund(&app, &merchant, &order, "4.00", "same").await,
        StatusCode::CREATED,
    )
    .await;
    let again = json_ok(
        refund(&app, &merchant, &order, "4.00", "same").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again, first);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "94.00");
    assert_error(
        refund(&app, &merchant, &order, "5.00", "same").await,
        StatusCode::CONFLICT,
        "idempotency_conflict",
    )
    .await;
    // A refused refund's answer is stored under its reference too.
    assert_error(
        refund(&app, &merchant, &order, "7.00", "big").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_payment",
    )
    .await;
    assert_error(
        refund(&app, &merchant, &order, "7.00", "big").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_payment",
    )
    .await;
}

#[tokio::test]
async fn only_paid_orders_are_refundable_and_only_with_the_refunds_scope() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let pending = app.create_order(&merchant.cashier_key, "10.00").await;
    assert_error(
        refund(&app, &merchant, &pending, "1.00", "r").await,
        StatusCode::CONFLICT,
        "order_not_refundable",
    )
    .await;

    let wallet = app.create_wallet().await;
    let (paid, _) = paid_order(&app, &merchant, &wallet, "10.00").await;
    let path = format!("/v1/orders/{}/refunds", paid["id"].as_str().unwrap());
    let cashier = app
        .merchant_post(
            &merchant.cashier_key,
            &path,
            &json!({"amount": "1.00", "refund_reference": "r"}),
        )
        .await;
    assert_error(cashier, StatusCode::FORBIDDEN, "forbidden").await;
    // Another merchant's order does not exist for this one.
    let other = app.create_merchant().await;
    assert_error(
        refund(&app, &other, &paid, "1.00", "r").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for bad in [
        json!({"amount": "0", "refund_reference": "r"}),
        json!({"amount": "1.001", "refund_reference": "r"}),
        json!({"amount": "1.00", "refund_reference": ""}),
        json!({"amount": "1.00"}),
    ] {
        assert_error(
            app.merchant_post(&merchant.manager_key, &path, &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM refunds WHERE outcome = 'succeeded'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_order_takes_at_most_fifty_refunds() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let (order, _) = paid_order(&app, &merchant, &wallet, "1.00").await;
    for i in 0..50 {
        json_ok(
            refund(&app, &merchant, &order, "0.01", &format!("r{i}")).await,
            StatusCode::CREATED,
        )
        .await;
    }
    assert_error(
        refund(&app, &merchant, &order, "0.01", "r50").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_refunds",
    )
    .await;
}

#[tokio::test]
async fn concurrent_refunds_never_exceed_the_payment() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let (order, customer) = paid_order(&app, &merchant, &wallet, "10.00").await;
    let references: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();

    let responses = join_all(
        references
            .iter()
            .map(|r| refund(&app, &merchant, &order, "1.00", r)),
    )
    .await;
    let mut succeeded = 0;
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => succeeded += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "refund_exceeds_payment", "{body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(succeeded, 10);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "refunded"
    );
}

#[tokio::test]
async fn the_sdk_refunds() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let (order, _) = paid_order(&app, &merchant, &wallet, "10.00").await;
    let client = merchant_sdk::Client::builder(&app.address, &merchant.manager_key)
        .build()
        .unwrap();
    let id = order["id"].as_str().unwrap();
    let refund = client
        .refund(
            id,
            rust_decimal::Decimal::new(250, 2),
            "sdk-1",
            Some("cold noodles"),
        )
        .await
        .unwrap();
    assert_eq!(refund.amount, rust_decimal::Decimal::new(250, 2));
    assert_eq!(
        refund.order_status,
        merchant_sdk::OrderStatus::PartiallyRefunded
    );
    assert_eq!(refund.reason.as_deref(), Some("cold noodles"));
    let too_much = client
        .refund(id, rust_decimal::Decimal::new(1000, 2), "sdk-2", None)
        .await
        .unwrap_err();
    assert_eq!(
        too_much.kind(),
        Some(&merchant_sdk::ErrorKind::RefundExceedsPayment)
    );
}
