//! The merchant's order API: creation, the EMV payload, QR images, listing,
//! long-poll, closing, scopes and isolation between merchants.

use crate::helpers::{assert_error, json_ok, spawn_app};
use qrgate_domain::emv::{parse_payload, OrderQr};
use reqwest::StatusCode;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_order_carries_an_emv_payload_we_can_parse() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"name": "Lucky Noodle Bar", "city": "Shanghai", "local_name": "幸运面馆", "local_city": "上海"}))
        .await;
    let body = json!({"amount": "12.3", "currency": "CNY", "merchant_reference": "INV-0001", "terminal_id": "T1", "description": "noodles"});
    let order = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;

    assert_eq!(order["status"], "pending");
    assert_eq!(order["amount"], "12.30");
    assert_eq!(order["currency"], "CNY");
    assert_eq!(order["merchant_reference"], "INV-0001");
    assert!(order["paid_at"].is_null() && order["payment_id"].is_null());
    let id = order["id"].as_str().unwrap();
    assert!(id.starts_with("ord_") && id.len() <= 25);

    let payload = order["qr_payload"].as_str().unwrap();
    assert!(payload.starts_with("000201010212"));
    let qr = OrderQr::parse(payload).unwrap();
    assert_eq!(qr.gateway_guid, "com.qrgate");
    assert_eq!(qr.merchant_id, merchant.id);
    assert_eq!(qr.order_id, id);
    assert_eq!(qr.amount.to_string(), "12.30");
    assert_eq!(qr.amount.currency().numeric(), "156");
    assert_eq!(qr.merchant_name, "Lucky Noodle Bar");
    assert_eq!(qr.merchant_city, "Shanghai");
    assert_eq!(qr.bill_number, "INV-0001");
    assert_eq!(qr.terminal_id.as_deref(), Some("T1"));
    assert!(qr.order_token.len() >= 26);
    let local = qr.local.unwrap();
    assert_eq!(
        (
            local.language.as_str(),
            local.name.as_str(),
            local.city.as_deref()
        ),
        ("ZH", "幸运面馆", Some("上海"))
    );
    let tags: Vec<String> = parse_payload(payload)
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(
        tags,
        ["00", "01", "26", "52", "53", "54", "58", "59", "60", "62", "64"]
    );
    assert!(payload[payload.len() - 8..].starts_with("6304"));
}

#[tokio::test]
async fn tag_64_appears_only_with_a_local_name() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let tags: Vec<String> = parse_payload(order["qr_payload"].as_str().unwrap())
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert!(!tags.contains(&"64".to_owned()));
}

#[tokio::test]
async fn the_qr_is_served_as_svg_and_png() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let id = order["id"].as_str().unwrap();

    let svg = app
        .merchant_get(&merchant.cashier_key, &format!("/v1/orders/{id}/qr.svg"))
        .await;
    assert_eq!(svg.status(), StatusCode::OK);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = app
        .merchant_get(&merchant.cashier_key, &format!("/v1/orders/{id}/qr.png"))
        .await;
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(&png.bytes().await.unwrap()[..4], b"\x89PNG");
}

#[tokio::test]
async fn another_merchants_orders_answer_404() {
    let app = spawn_app().await;
    let a = app.create_merchant().await;
    let b = app.create_merchant().await;
    let order = app.create_order(&a.cashier_key, "1.00").await;
    let id = order["id"].as_str().unwrap();

    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{id}/qr.svg"),
        format!("/v1/orders/{id}/qr.png"),
        format!("/v1/orders/{id}/events"),
    ] {
        assert_error(
            app.merchant_get(&b.cashier_key, &path).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let close = app
        .merchant_post(
            &b.cashier_key,
            &format!("/v1/orders/{id}/close"),
            &json!({}),
        )
        .await;
    assert_error(close, StatusCode::NOT_FOUND, "not_found").await;
    let account = app
        .merchant_get(&b.manager_key, &format!("/v1/accounts/{}", a.account_id))
        .await;
    assert_error(account, StatusCode::NOT_FOUND, "not_found").await;
    let listed = json_ok(
        app.merchant_get(&b.cashier_key, "/v1/orders").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    assert_eq!(app.order(&a.cashier_key, id).await["status"], "pending");
}

#[tokio::test]
async fn a_missing_scope_is_forbidden_and_a_bad_key_unauthenticated() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let reports_only = app.create_api_key(&merchant.id, &["reports"]).await;

    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R"});
    assert_error(
        app.create_order_raw(&reports_only, &body).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let account = app
        .merchant_get(
            &merchant.cashier_key,
            &format!("/v1/accounts/{}", merchant.account_id),
        )
        .await;
    assert_error(account, StatusCode::FORBIDDEN, "forbidden").await;

    let (key_id, _) = merchant.cashier_key.split_once('.').unwrap();
    for bad in [
        "",
        "nonsense",
        &format!("{key_id}.wrongsecret"),
        &format!("{}x", merchant.cashier_key),
    ] {
        assert_error(
            app.create_order_raw(bad, &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_error(
        app.http.get(app.url("/v1/orders")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn a_revoked_key_stops_working() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let (key_id, _) = merchant.cashier_key.split_once('.').unwrap();
    json_ok(
        app.admin_delete(&format!(
            "/v1/admin/merchants/{}/api-keys/{key_id}",
            merchant.id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R"});
    assert_error(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn merchant_bodies_are_checked_for_size_type_and_schema() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let huge = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R", "description": "x".repeat(70_000)});
    assert_error(
        app.create_order_raw(&merchant.cashier_key, &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let malformed = app
        .http
        .post(app.url("/v1/orders"))
        .bearer_auth(&merchant.cashier_key)
        .header("content-type", "application/json")
        .body("{\"amount\": \"1.00\",")
        .send()
        .await
        .unwrap();
    assert_error(malformed, StatusCode::BAD_REQUEST, "invalid_request").await;

    let unknown =
        json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R", "tip": "1.00"});
    assert_error(
        app.create_order_raw(&merchant.cashier_key, &unknown).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let form = app
        .http
        .post(app.url("/v1/orders"))
        .bearer_auth(&merchant.cashier_key)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(
        form,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    for (field, value) in [
        ("merchant_reference", json!("R".repeat(26))),
        ("merchant_reference", json!("发票")),
        ("terminal_id", json!("T".repeat(26))),
        ("expires_in_seconds", json!(29)),
        ("expires_in_seconds", json!(86_401)),
    ] {
        let mut body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R"});
        body[field] = value;
        let error = assert_error(
            app.create_order_raw(&merchant.cashier_key, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{error}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
}

#[tokio::test]
async fn optional_fields_may_be_null() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "R", "description": null, "terminal_id": null, "expires_in_seconds": null});
    let order = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(order["terminal_id"].is_null());
}

#[tokio::test]
async fn a_merchant_reference_is_reusable_only_after_its_order_closed_or_expired() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "TABLE-7"});
    let first = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    let first_id = first["id"].as_str().unwrap();

    let duplicate = assert_error(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CONFLICT,
        "duplicate_reference",
    )
    .await;
    let message = duplicate["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(first_id) && message.contains("close it"),
        "{message}"
    );

    app.merchant_post(
        &merchant.cashier_key,
        &format!("/v1/orders/{first_id}/close"),
        &json!({}),
    )
    .await;
    let second = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(second["id"], first["id"]);

    // A pending order past its expiry frees the reference too, swept or not.
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second' WHERE id = $1",
            &[&second["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
}

/// Issue 11: the README's own session left TABLE-7 paid, and the hint said to close it.
#[tokio::test]
async fn a_paid_order_keeps_its_reference_and_the_hint_says_so() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let body = json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "TABLE-7"});
    let paid = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    json_ok(app.pay(&wallet, &paid, &customer).await, StatusCode::OK).await;
    let duplicate = assert_error(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CONFLICT,
        "duplicate_reference",
    )
    .await;
    let message = duplicate["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("which is paid")
            && message.contains("use another")
            && !message.contains("close"),
        "{message}"
    );
}

#[tokio::test]
async fn closing_is_idempotent_and_a_paid_order_cannot_be_closed() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let id = order["id"].as_str().unwrap();
    let close = format!("/v1/orders/{id}/close");

    assert_eq!(
        json_ok(
            app.merchant_post(&merchant.cashier_key, &close, &json!({}))
                .await,
            StatusCode::OK
        )
        .await["status"],
        "closed"
    );
    assert_eq!(
        json_ok(
            app.merchant_post(&merchant.cashier_key, &close, &json!({}))
                .await,
            StatusCode::OK
        )
        .await["status"],
        "closed"
    );

    let paid = app.create_order(&merchant.cashier_key, "1.00").await;
    json_ok(app.pay(&wallet, &paid, &customer).await, StatusCode::OK).await;
    let response = app
        .merchant_post(
            &merchant.cashier_key,
            &format!("/v1/orders/{}/close", paid["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_error(response, StatusCode::CONFLICT, "already_paid").await;
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_the_order_is_paid() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let id = order["id"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let path = format!("/v1/orders/{id}?wait_seconds=20");
    let waiting = app.merchant_get(&merchant.cashier_key, &path);
    let paying = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.pay(&wallet, &order, &customer).await
    };
    let (seen, paid) = tokio::join!(waiting, paying);
    assert_eq!(paid.status(), StatusCode::OK);
    let seen = json_ok(seen, StatusCode::OK).await;
    assert_eq!(seen["status"], "paid");
    // Held while pending, released by the payment long before the 20 s are up.
    assert!(started.elapsed() < Duration::from_secs(15));
    // Answered from the settlement on this replica, it is exactly what a read shows.
    assert_eq!(seen, app.order(&merchant.cashier_key, &id).await);
}

/// The settlement handed to a long-poll carries every field a payment changes, a
/// discount and a cross-currency charge included: the answer equals a fresh read.
#[tokio::test]
async fn a_long_poll_answered_by_the_settlement_equals_a_fresh_read() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    app.create_campaign(&json!({"currency": "CNY", "budget": "100.00", "funded_by": "platform", "kind": "percent_off", "percent_off": "10"}))
        .await;
    app.set_fx_rate("CNY", "HKD", "1.0873", 50).await;
    let customer = app.funded_customer_in(&wallet, "HKD", "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "12.34").await;
    let id = order["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/orders/{id}?wait_seconds=20");
    let waiting = app.merchant_get(&merchant.cashier_key, &path);
    let paying = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.pay(&wallet, &order, &customer).await
    };
    let (seen, paid) = tokio::join!(waiting, paying);
    let paid = json_ok(paid, StatusCode::OK).await;
    let seen = json_ok(seen, StatusCode::OK).await;
    assert_eq!(seen, app.order(&merchant.cashier_key, &id).await);
    assert_eq!(
        (seen["discount"].as_str(), seen["charged_currency"].as_str()),
        (Some("1.23"), Some("HKD"))
    );
    assert_eq!(seen["charged"], paid["charged"]);
}

#[tokio::test]
async fn long_poll_on_a_settled_order_answers_at_once_and_is_bounded() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "1.00").await;
    let id = order["id"].as_str().unwrap();
    app.merchant_post(
        &merchant.cashier_key,
        &format!("/v1/orders/{id}/close"),
        &json!({}),
    )
    .await;

    let closed = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{id}?wait_seconds=30"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(closed["status"], "closed");
    let too_long = app
        .merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{id}?wait_seconds=31"),
        )
        .await;
    assert_error(too_long, StatusCode::BAD_REQUEST, "invalid_request").await;
    let pending = app.create_order(&merchant.cashier_key, "1.00").await;
    let waited = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!(
                "/v1/orders/{}?wait_seconds=1",
                pending["id"].as_str().unwrap()
            ),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(waited["status"], "pending");
}

#[tokio::test]
async fn orders_are_listed_newest_first_with_a_cursor_and_filters() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create_order(&merchant.cashier_key, "1.00").await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.merchant_post(
        &merchant.cashier_key,
        &format!("/v1/orders/{}/close", ids[0]),
        &json!({}),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orders?limit=2&cursor={c}"),
            None => "/v1/orders?limit=2".to_owned(),
        };
        let page = json_ok(
            app.merchant_get(&merchant.cashier_key, &path).await,
            StatusCode::OK,
        )
        .await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    let closed = json_ok(
        app.merchant_get(&merchant.cashier_key, "/v1/orders?status=closed")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(closed["items"].as_array().unwrap().len(), 1);
    let future = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            "/v1/orders?from=2100-01-01T00:00:00Z",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    for bad in [
        "/v1/orders?limit=201",
        "/v1/orders?limit=0",
        "/v1/orders?status=lost",
        "/v1/orders?cursor=zzz",
        "/v1/orders?from=yesterday",
    ] {
        assert_error(
            app.merchant_get(&merchant.cashier_key, bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
}
