//! Merchant Idempotency-Key: stored first answers, conflicts, transient answers.

use crate::helpers::{assert_error, json_ok, spawn_app, spawn_app_with, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// `POST {base}/v1/orders` with the cashier's key and an Idempotency-Key.
fn keyed_order(
    app: &TestApp,
    base: &str,
    cashier_key: &str,
    key: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    app.http
        .post(format!("{base}/v1/orders"))
        .bearer_auth(cashier_key)
        .header("Idempotency-Key", key)
        .json(body)
}

#[tokio::test]
async fn the_same_key_and_request_returns_the_first_answer() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "8.00", "currency": "CNY", "merchant_reference": "R-1"});
    let send = |body: serde_json::Value, key: &'static str| {
        keyed_order(&app, &app.url(""), &merchant.cashier_key, key, &body).send()
    };
    let first = json_ok(
        send(body.clone(), "key-1").await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // Same parsed request, formatted differently (field order, "8.00" stays a string).
    let reordered = json!({"merchant_reference": "R-1", "currency": "CNY", "amount": "8.00"});
    let again = json_ok(send(reordered, "key-1").await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(again, first);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);

    let different = json!({"amount": "9.00", "currency": "CNY", "merchant_reference": "R-1"});
    assert_error(
        send(different, "key-1").await.unwrap(),
        StatusCode::CONFLICT,
        "idempotency_conflict",
    )
    .await;
    // A stored 409 is given again with its code.
    let dup = send(body.clone(), "key-2").await.unwrap();
    assert_error(dup, StatusCode::CONFLICT, "duplicate_reference").await;
    let dup_again = send(body, "key-2").await.unwrap();
    assert_error(dup_again, StatusCode::CONFLICT, "duplicate_reference").await;
}

#[tokio::test]
async fn a_bad_request_is_not_stored_and_a_retry_runs_afresh() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let send = |body: serde_json::Value| {
        keyed_order(&app, &app.url(""), &merchant.cashier_key, "k", &body).send()
    };
    let bad = json!({"amount": "-1", "currency": "CNY", "merchant_reference": "R"});
    assert_error(
        send(bad).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let good = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R"});
    json_ok(send(good).await.unwrap(), StatusCode::CREATED).await;
}

#[tokio::test]
async fn keys_are_per_merchant_and_endpoint() {
    let app = spawn_app().await;
    let a = app.create_merchant().await;
    let b = app.create_merchant().await;
    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R"});
    for merchant in [&a, &b] {
        let response = keyed_order(&app, &app.url(""), &merchant.cashier_key, "same", &body)
            .send()
            .await
            .unwrap();
        json_ok(response, StatusCode::CREATED).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 2);
    let too_long = app
        .http
        .post(app.url("/v1/orders"))
        .bearer_auth(&a.cashier_key)
        .header("Idempotency-Key", "k".repeat(256))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(too_long, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn concurrent_duplicates_create_one_order_and_all_get_its_answer() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "3.00", "currency": "CNY", "merchant_reference": "R-C"});
    let requests = (0..10)
        .map(|_| keyed_order(&app, &app.url(""), &merchant.cashier_key, "burst", &body).send());
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for response in responses {
        // Each duplicate waits (at most lock_timeout) for the first and replays its answer.
        let order = json_ok(response.unwrap(), StatusCode::CREATED).await;
        ids.insert(order["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
}

/// The key's lock is the database's: duplicates sent at once to two replicas make one
/// order, and every one of them is given its answer.
#[tokio::test]
async fn duplicates_across_two_replicas_create_one_order() {
    let app = spawn_app().await;
    let replica = app.spawn_replica(&[]).await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "4.00", "currency": "CNY", "merchant_reference": "R-2"});
    let requests = (0..12).map(|i| {
        let base = if i % 2 == 0 {
            app.url("")
        } else {
            replica.clone()
        };
        keyed_order(&app, &base, &merchant.cashier_key, "two-replicas", &body).send()
    });
    let mut ids = std::collections::HashSet::new();
    for response in futures_util::future::join_all(requests).await {
        let order = json_ok(response.unwrap(), StatusCode::CREATED).await;
        ids.insert(order["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM merchant_idempotency").await,
        1
    );
}

/// Issue 11: lock_timeout was documented but never set, so a duplicate blocked behind a
/// twin that did not finish waited the whole statement timeout and got 503.
#[tokio::test]
async fn a_duplicate_blocked_behind_its_twin_is_told_in_progress_after_the_lock_timeout() {
    let app = spawn_app_with(&[
        ("QRGATE_LOCK_TIMEOUT_MS", "200"),
        ("QRGATE_STATEMENT_TIMEOUT_MS", "20000"),
    ])
    .await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "3.00", "currency": "CNY", "merchant_reference": "R-H"});
    // The twin: a request with the key still at work (holding the key's lock, as the
    // gateway's does from its first statement to its commit).
    let mut twin = app.db().await;
    let tx = twin.transaction().await.unwrap();
    tx.query(
        "SELECT * FROM merchant_idempotency_earlier($1, 'POST /v1/orders', 'held')",
        &[&merchant.id],
    )
    .await
    .unwrap();
    let send = || keyed_order(&app, &app.url(""), &merchant.cashier_key, "held", &body).send();
    assert_error(
        send().await.unwrap(),
        StatusCode::CONFLICT,
        "idempotency_in_progress",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    tx.rollback().await.unwrap();
    json_ok(send().await.unwrap(), StatusCode::CREATED).await;
}

/// The key and its answer are written once, when the work is done. A row written
/// around the key's lock (not by a gateway request) still holds the key: a request that
/// meets it uncommitted when storing its own answer waits, and once it commits, that
/// answer stands and the request's own work is undone.
#[tokio::test]
async fn an_answer_stored_first_by_another_writer_stands_and_this_work_is_undone() {
    let app = spawn_app_with(&[("QRGATE_LOCK_TIMEOUT_MS", "10000")]).await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "3.00", "currency": "CNY", "merchant_reference": "R-W"});
    let mut other = app.db().await;
    let tx = other.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO merchant_idempotency
             (merchant_id, endpoint, idempotency_key, request_sha256, http_status, response)
         VALUES ($1, 'POST /v1/orders', 'around', '\\x00', 201, '{\"id\": \"ord_elsewhere\"}')",
        &[&merchant.id],
    )
    .await
    .unwrap();
    let request = keyed_order(&app, &app.url(""), &merchant.cashier_key, "around", &body).send();
    let request = tokio::spawn(request);
    // The request makes its order, then waits on the uncommitted key as it stores its answer.
    while app
        .count("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")
        .await
        == 0
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Written for another request: this one is told so, not given that answer.
    tx.commit().await.unwrap();
    assert_error(
        request.await.unwrap().unwrap(),
        StatusCode::CONFLICT,
        "idempotency_conflict",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}
