//! `/metrics`: Prometheus text behind its token, moving with traffic, without ids.

use crate::helpers::{assert_error, json_ok, spawn_app, spawn_app_with};
use reqwest::StatusCode;

#[tokio::test]
async fn metrics_need_their_token_and_move_after_a_payment() {
    let app = spawn_app_with(&[("QRGATE_METRICS_TOKEN", "metrics-token-0123456789")]).await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let poor = app.funded_customer(&wallet, "0").await;
    let order = app.create_order(&merchant.cashier_key, "12.34").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let other = app.create_order(&merchant.cashier_key, "1.00").await;
    app.pay(&wallet, &other, &poor).await;

    let anonymous = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let response = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("qrgate_payments_total{outcome=\"succeeded\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("qrgate_payments_total{outcome=\"insufficient_funds\"} 1"),
        "{text}"
    );
    assert!(text.contains("qrgate_http_requests_total{method=\"POST\",route=\"/v1/wallets/{wallet_id}/payments\",status=\"200\"} 1"), "{text}");
    assert!(
        text.contains("qrgate_settlement_duration_seconds_count 2"),
        "{text}"
    );
    assert!(text.contains("qrgate_db_pool_size "), "{text}");
    assert!(text.contains("qrgate_webhook_outbox_depth 0"), "{text}");
    // No merchant, customer, order or account ids as labels.
    let ids = [
        merchant.id.clone(),
        customer.clone(),
        order["id"].as_str().unwrap().to_owned(),
        wallet.wallet_id.clone(),
    ];
    for id in &ids {
        assert!(!text.contains(id.as_str()), "{id} leaked into metrics");
    }
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
}
