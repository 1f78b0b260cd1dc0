//! Online checkout: checkout sessions and the payment page's calls.

use crate::helpers::*;
use crate::tills::read_events;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const LOOPBACK: &[(&str, &str)] = &[("QRGATE_CHECKOUT_HTTP_LOOPBACK_ALLOWED", "true")];

fn session_body(amount: &str) -> Value {
    json!({
        "amount": amount, "currency": "CNY",
        "merchant_reference": format!("WEB-{}", qrgate_domain::ids::random_base32(8)),
        "return_url": "https://shop.example/thanks?cart=7", "cancel_url": "https://shop.example/cart",
    })
}

async fn open_session(app: &TestApp, key: &str, body: &Value) -> Value {
    json_ok(
        app.merchant_post(key, "/v1/checkout-sessions", body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn public(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn a_session_paid_by_a_wallet_completes_and_sends_the_customer_back_with_its_id() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let mut body = session_body("25.50");
    body["line_items"] = json!([{"name": "Noodles", "quantity": 2, "amount": "10.00"}, {"name": "Tea", "quantity": 1, "amount": "5.50"}]);
    let session = open_session(&app, &shop.cashier_key, &body).await;
    let path = session["path"].as_str().unwrap();
    assert!(path.starts_with("/pay/") && session["url"].as_str().unwrap().ends_with(path));
    assert_eq!(session["status"], "open");
    assert_eq!(session["order"]["amount"], "25.50");
    assert_eq!(session["line_items"][1]["amount"], "5.50");
    // Only the token's hash is stored.
    let token = path.trim_start_matches("/pay/");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM checkout_sessions s WHERE s::text LIKE '%{token}%'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM checkout_sessions WHERE token_sha256 = sha256('{token}')"
        ))
        .await,
        1
    );

    let view = json_ok(
        public(&app, &format!("{path}/session")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["qr_payload"], session["order"]["qr_payload"]);
    assert_eq!(view["merchant_name"], "Lucky Noodle Bar");
    for field in [
        "merchant_id",
        "order",
        "order_id",
        "return_url",
        "created_by_key_id",
        "redirect_url",
    ] {
        assert!(
            view.get(field).is_none(),
            "the open page shows no {field}: {view}"
        );
    }
    let svg = public(&app, &format!("{path}/qr.svg")).await;
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");

    let events = tokio::spawn(read_events(
        public(&app, &format!("{path}/stream")).await,
        2,
        Duration::from_secs(10),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    json_ok(
        app.pay(&wallet, &session["order"], &customer).await,
        StatusCode::OK,
    )
    .await;
    let events = events.await.unwrap();
    assert_eq!(
        events
            .iter()
            .map(|(_, e)| e["status"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["open", "complete"]
    );
    let done = &events[1].1;
    let session_id = session["id"].as_str().unwrap();
    assert_eq!(
        done["redirect_url"],
        format!("https://shop.example/thanks?cart=7&session_id={session_id}")
    );
    assert!(done.get("qr_payload").is_none());

    let merchant_view = json_ok(
        app.merchant_get(
            &shop.cashier_key,
            &format!("/v1/checkout-sessions/{session_id}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(merchant_view["status"], "complete");
    assert_eq!(merchant_view["order"]["status"], "paid");
    assert!(
        merchant_view.get("url").is_none(),
        "the page address is shown once"
    );
    assert_error(
        public(&app, &format!("{path}/qr.svg")).await,
        StatusCode::CONFLICT,
        "order_not_payable",
    )
    .await;
}

#[tokio::test]
async fn the_customer_cancels_and_the_order_is_closed() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let session = open_session(&app, &shop.cashier_key, &session_body("9.00")).await;
    let path = session["path"].as_str().unwrap();
    let cancelled = app
        .http
        .post(app.url(&format!("{path}/cancel")))
        .send()
        .await
        .unwrap();
    let view = json_ok(cancelled, StatusCode::OK).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["cancel_url"], "https://shop.example/cart");
    let order = app
        .order(&shop.cashier_key, session["order"]["id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "closed");
    let merchant_view = json_ok(
        app.merchant_get(
            &shop.cashier_key,
            &format!("/v1/checkout-sessions/{}", session["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(merchant_view["status"], "cancelled");
    assert!(merchant_view["cancelled_at"].is_string());
}

#[tokio::test]
async fn unknown_tokens_and_other_merchants_sessions_are_not_found() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let other = app.create_merchant().await;
    let session = open_session(&app, &shop.cashier_key, &session_body("9.00")).await;
    let id = session["id"].as_str().unwrap();
    assert_error(
        app.merchant_get(&other.cashier_key, &format!("/v1/checkout-sessions/{id}"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let token = session["path"]
        .as_str()
        .unwrap()
        .trim_start_matches("/pay/");
    let mut near = token.to_owned();
    near.replace_range(0..1, if token.starts_with('a') { "b" } else { "a" });
    for bad in [near.as_str(), "x", "../session", &"a".repeat(33)] {
        for tail in ["session", "stream", "qr.svg"] {
            let response = public(&app, &format!("/pay/{bad}/{tail}")).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "/pay/{bad}/{tail}"
            );
        }
        let response = app
            .http
            .post(app.url(&format!("/pay/{bad}/cancel")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.order(&shop.cashier_key, session["order"]["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );
}

#[tokio::test]
async fn bad_sessions_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let with = |field: &str, value: Value| {
        let mut body = session_body("20.00");
        body[field] = value;
        body
    };
    for body in [
        with("return_url", json!("http://127.0.0.1:8080/done")),
        with("return_url", json!("http://shop.example/done")),
        with("cancel_url", json!("https://user:pw@shop.example/")),
        with("cancel_url", json!("ftp://shop.example/")),
        with("return_url", json!("/relative")),
        with(
            "line_items",
            json!([{"name": "Tea", "quantity": 1, "amount": "19.99"}]),
        ),
        with(
            "line_items",
            json!([{"name": "", "quantity": 1, "amount": "20.00"}]),
        ),
        with(
            "line_items",
            json!([{"name": "Tea", "quantity": 0, "amount": "20.00"}]),
        ),
        with(
            "line_items",
            json!([{"name": "Tea", "quantity": 1, "amount": "20.001"}]),
        ),
    ] {
        let response = app
            .merchant_post(&shop.cashier_key, "/v1/checkout-sessions", &body)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM checkout_sessions").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);

    // A deployment that allows it takes loopback http returns (a shop's dev server).
    let dev = spawn_app_with(LOOPBACK).await;
    let dev_shop = dev.create_merchant().await;
    let mut body = session_body("20.00");
    body["return_url"] = json!("http://127.0.0.1:8080/done");
    open_session(&dev, &dev_shop.cashier_key, &body).await;
    body["merchant_reference"] = json!("another");
    body["return_url"] = json!("http://shop.example/done");
    assert_error(
        dev.merchant_post(&dev_shop.cashier_key, "/v1/checkout-sessions", &body)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

/// The customer cancels while their wallet pays: whichever wins, the session, its order
/// and the ledger agree — paid and complete with no cancellation, or cancelled, closed
/// and unpaid.
#[tokio::test]
async fn a_cancel_racing_a_payment_leaves_one_consistent_outcome() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    for _ in 0..12 {
        let session = open_session(&app, &shop.cashier_key, &session_body("5.00")).await;
        let cancel_url = app.url(&format!("{}/cancel", session["path"].as_str().unwrap()));
        let (cancelled, paid) = tokio::join!(
            app.http.post(&cancel_url).send(),
            app.pay(&wallet, &session["order"], &customer)
        );
        assert!(cancelled.unwrap().status().is_success());
        let paid = paid.status() == StatusCode::OK;
        let read = json_ok(
            app.merchant_get(
                &shop.cashier_key,
                &format!("/v1/checkout-sessions/{}", session["id"].as_str().unwrap()),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        if paid {
            assert_eq!(
                (read["status"].as_str(), read["order"]["status"].as_str()),
                (Some("complete"), Some("paid")),
                "{read}"
            );
            assert!(
                read["cancelled_at"].is_null(),
                "paid, yet marked cancelled: {read}"
            );
        } else {
            assert_eq!(
                (read["status"].as_str(), read["order"]["status"].as_str()),
                (Some("cancelled"), Some("closed")),
                "{read}"
            );
            assert!(read["cancelled_at"].is_string());
        }
    }
    let payments = app.count("SELECT count(*) FROM payments").await;
    let complete = app
        .count("SELECT count(*) FROM orders WHERE status = 'paid'")
        .await;
    assert_eq!(payments, complete);
}
