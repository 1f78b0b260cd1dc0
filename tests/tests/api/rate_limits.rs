//! Rate limits: `429 rate_limited` with `Retry-After`.

use crate::helpers::{assert_error, json_ok, spawn_app_with};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_source_that_keeps_failing_authentication_is_held_off_for_the_window() {
    let app = spawn_app_with(&[
        ("QRGATE_AUTH_FAILURES_PER_IP_MAX", "3"),
        ("QRGATE_AUTH_FAILURE_WINDOW_SECONDS", "2"),
    ])
    .await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let (key_id, _) = merchant.cashier_key.split_once('.').unwrap();
    for guess in 0..3 {
        let guessed = format!("{key_id}.{}", format!("{guess}").repeat(32));
        assert_error(
            app.merchant_get(&guessed, "/v1/orders").await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }

    // Now even the right credentials wait, on every way in; nothing happens meanwhile.
    let limited = app.merchant_get(&merchant.cashier_key, "/v1/orders").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_error(
        app.pay(&wallet, &order, &customer).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert_error(
        app.admin_post("/v1/admin/wallets", &json!({"name": "w"}))
            .await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM wallets").await, 1);

    // After the window the source is trusted again.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
}
