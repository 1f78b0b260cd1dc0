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

/// The database's current unix second: request windows are its seconds.
async fn db_second(app: &crate::helpers::TestApp) -> i64 {
    app.count("SELECT floor(extract(epoch FROM clock_timestamp()))::bigint")
        .await
}

/// Sends `count` requests through `send`, `batch` at a time; the statuses, and how many
/// one-second windows of the database clock they spanned.
async fn burst<F, Fut>(
    app: &crate::helpers::TestApp,
    count: usize,
    batch: usize,
    send: F,
) -> (Vec<reqwest::Response>, i64)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    let first = db_second(app).await;
    let mut responses = Vec::new();
    for start in (0..count).step_by(batch) {
        let sent = (start..(start + batch).min(count)).map(&send);
        responses.extend(futures_util::future::join_all(sent).await);
    }
    let windows = db_second(app).await - first + 1;
    (responses, windows)
}

fn tally(responses: &[reqwest::Response]) -> (usize, usize) {
    let ok = responses.iter().filter(|r| r.status().is_success()).count();
    let limited = responses
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let others: Vec<String> = responses
        .iter()
        .filter(|r| !r.status().is_success() && r.status() != StatusCode::TOO_MANY_REQUESTS)
        .map(|r| r.status().to_string())
        .collect();
    assert_eq!(
        ok + limited,
        responses.len(),
        "only 2xx and 429 expected, also got {others:?}"
    );
    for r in responses.iter().filter(|r| !r.status().is_success()) {
        assert_eq!(r.headers()["retry-after"], "1");
    }
    (ok, limited)
}

#[tokio::test]
async fn an_api_key_gets_at_most_its_rate_across_two_replicas() {
    let limits = [("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "20")];
    let app = spawn_app_with(&limits).await;
    let replica = app.spawn_replica(&limits).await;
    let merchant = app.create_merchant().await;
    let other = app.create_merchant().await;

    let (responses, windows) = burst(&app, 300, 30, |i| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        let request = app
            .http
            .get(format!("{base}/v1/orders"))
            .bearer_auth(&merchant.cashier_key);
        async move { request.send().await.unwrap() }
    })
    .await;
    let (ok, limited) = tally(&responses);
    assert!(limited > 0, "300 requests in {windows} s at 20/s");
    assert!(
        ok as i64 <= 20 * windows,
        "{ok} admitted in {windows} windows of 20"
    );
    let error = assert_error(
        responses
            .into_iter()
            .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
            .unwrap(),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("API key"));
    // Another merchant's key has its own allowance.
    json_ok(
        app.merchant_get(&other.cashier_key, "/v1/orders").await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn a_wallet_gets_at_most_its_rate_and_a_limited_call_changes_nothing() {
    let app = spawn_app_with(&[("QRGATE_WALLET_REQUESTS_PER_SECOND_MAX", "10")]).await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let mut orders = Vec::new();
    for _ in 0..60 {
        orders.push(app.create_order(&merchant.cashier_key, "1.00").await);
    }

    let (responses, windows) = burst(&app, orders.len(), 20, |i| {
        let body = crate::helpers::TestApp::pay_body(&orders[i], &customer);
        let wallet = &wallet;
        async move { wallet.post("payments", &body).await.unwrap() }
    })
    .await;
    let (ok, limited) = tally(&responses);
    assert!(limited > 0, "60 payments in {windows} s at 10/s");
    assert!(
        ok as i64 <= 10 * windows,
        "{ok} admitted in {windows} windows of 10"
    );
    // What was refused moved nothing: every paid order is an admitted payment.
    assert_eq!(app.count("SELECT count(*) FROM payments").await, ok as i64);
    let spent_minor = 100 * ok as i64;
    assert_eq!(
        app.count(&format!(
            "SELECT sum(balance_minor)::bigint FROM account_balances WHERE account_id = '{customer}'"
        ))
        .await,
        10_000 - spent_minor
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_failure_limit() {
    let app = spawn_app_with(&[
        ("QRGATE_AUTH_FAILURES_PER_IP_MAX", "2"),
        ("QRGATE_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let merchant = app.create_merchant().await;
    let get = |key: &str, forwarded_for: &str| {
        app.http
            .get(app.url("/v1/orders"))
            .bearer_auth(key)
            .header("x-forwarded-for", forwarded_for)
            .send()
    };
    let (key_id, _) = merchant.cashier_key.split_once('.').unwrap();
    let wrong = format!("{key_id}.{}", "0".repeat(32));
    for _ in 0..2 {
        // The client writes an address of its own; the proxy appends the one it saw.
        let response = get(&wrong, "198.51.100.9, 203.0.113.7").await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let held = get(&merchant.cashier_key, "203.0.113.7").await.unwrap();
    assert_error(held, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Other clients of the same proxy, and the forged address, are not held off.
    let other = get(&merchant.cashier_key, "198.51.100.9").await.unwrap();
    json_ok(other, StatusCode::OK).await;
    json_ok(
        app.merchant_get(&merchant.cashier_key, "/v1/orders").await,
        StatusCode::OK,
    )
    .await;
}

/// Issue 11: concurrent requests that found no lease each leased a tenth of the limit,
/// so a burst far under the limit was partly refused. All of these must pass.
#[tokio::test]
async fn a_concurrent_burst_under_the_wallet_rate_all_passes() {
    let app = spawn_app_with(&[("QRGATE_WALLET_REQUESTS_PER_SECOND_MAX", "1000")]).await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1.00").await;
    let path = format!("accounts/{customer}");
    let (responses, _) = burst(&app, 400, 200, |_| {
        let (wallet, path) = (&wallet, &path);
        async move { wallet.get(path).await.unwrap() }
    })
    .await;
    assert_eq!(tally(&responses), (400, 0));
}

#[tokio::test]
async fn a_concurrent_burst_under_the_key_rate_all_passes_on_one_replica_and_on_two() {
    // The rate limit is what is tested: admission is opened wide enough for the whole
    // burst at once, so that a busy machine (a full test run beside it) cannot make its
    // queue look standing and shed part of the burst with 503s.
    let limits = [
        ("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "200"),
        ("QRGATE_REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX", "32"),
    ];
    let app = spawn_app_with(&limits).await;
    let replica = app.spawn_replica(&limits).await;
    let merchant = app.create_merchant().await;
    for replicas in [1, 2] {
        // A fresh window, so both rounds start from a whole allowance.
        let second = db_second(&app).await;
        while db_second(&app).await == second {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (responses, _) = burst(&app, 150, 150, |i| {
            let base = if replicas == 2 && i % 2 == 1 {
                replica.clone()
            } else {
                app.address.clone()
            };
            let request = app
                .http
                .get(format!("{base}/v1/orders"))
                .bearer_auth(&merchant.cashier_key);
            async move { request.send().await.unwrap() }
        })
        .await;
        assert_eq!(tally(&responses), (150, 0), "{replicas} replica(s)");
    }
}
