//! The customer-service desk: "I paid but the shop says no", answered in one call from
//! whatever the customer or the shop has; and the merchant's own search.

use crate::helpers::{json_ok, spawn_app_with, TestApp};
use qrgate_domain::signing::SigningSecret;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::hook_sink::HookSink;
use std::time::Duration;

async fn search(app: &TestApp, bearer: &str, query: &str) -> Value {
    json_ok(
        app.http
            .get(app.url(&format!("/v1/admin/search?{query}")))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await
}

fn order_ids(found: &Value) -> Vec<String> {
    found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["order"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_customer_who_paid_is_answered_in_one_call_from_whatever_they_have() {
    let app = spawn_app_with(&[("QRGATE_WEBHOOK_POLL_INTERVAL_MS", "50")]).await;
    let hooks = HookSink::start().await.unwrap();
    let merchant = app
        .create_merchant_with(json!({"webhook_url": hooks.url("desk")}))
        .await;
    hooks.expect_secret(
        "desk",
        SigningSecret::parse(&app.webhook_secret(&merchant.id).await).unwrap(),
    );
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let broke = app.funded_customer(&wallet, "1.00").await;
    let order = app
        .create_order_raw(
            &merchant.cashier_key,
            &json!({"amount": "12.34", "currency": "CNY", "merchant_reference": "TABLE-7"}),
        )
        .await;
    let order = json_ok(order, StatusCode::CREATED).await;
    // First a decline (too little money), then the payment, then a partial refund.
    let declined = app.pay(&wallet, &order, &broke).await;
    assert_eq!(declined.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut body = TestApp::pay_body(&order, &customer);
    body["wallet_txn_id"] = json!("wtx-desk-1");
    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let refund = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap()),
            &json!({"amount": "2.00", "refund_reference": "desk-r1"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    for _ in 0..100 {
        if hooks.received.lock().unwrap().accepted.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let support = json_ok(
        app.admin_post(
            "/v1/admin/tokens",
            &json!({"name": "desk", "role": "support"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let order_id = order["id"].as_str().unwrap();
    let found = search(
        &app,
        &support,
        &format!("q={}", paid["payment_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(order_ids(&found), [order_id]);
    let item = &found["items"][0];
    assert_eq!(item["merchant"]["id"], merchant.id.as_str());
    assert_eq!(item["order"]["status"], "partially_refunded");
    assert_eq!(item["payment"]["wallet_txn_id"], "wtx-desk-1");
    assert_eq!(item["payment"]["customer_account_id"], customer.as_str());
    assert_eq!(item["refunds"][0]["id"], refund["id"]);
    let kinds: Vec<&str> = item["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "payment_failed", "paid", "refunded"]);
    let failed = &item["timeline"][1];
    assert_eq!(failed["code"], "insufficient_funds");
    assert_eq!(failed["customer_account_id"], broke.as_str());
    // What the shop was told, and that it answered.
    let hooks_seen: Vec<(&str, &str)> = item["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["type"].as_str().unwrap(), h["status"].as_str().unwrap()))
        .collect();
    assert!(
        hooks_seen.contains(&("order.paid", "delivered")),
        "{hooks_seen:?}"
    );
    assert!(
        hooks_seen.iter().any(|(t, _)| *t == "refund.succeeded"),
        "{hooks_seen:?}"
    );
    assert!(item["webhooks"][0]["delivered_at"].is_string());

    // The same order from everything else one might have.
    let wallet_id = &wallet.wallet_id;
    for query in [
        format!("q={order_id}"),
        format!("q={}", refund["id"].as_str().unwrap()),
        format!("q={customer}"),
        format!("q=wtx-desk-1&wallet_id={wallet_id}"),
        format!("q=TABLE-7&merchant_id={}", merchant.id),
        format!("q={order_id}&amount=12.34"),
    ] {
        assert_eq!(
            order_ids(&search(&app, &support, &query).await),
            [order_id],
            "{query}"
        );
    }
    for query in [
        format!("q={order_id}&amount=12.35"),
        format!("q={order_id}&to=2020-01-01T00:00:00Z"),
        "q=ord_nosuchorder00000".to_owned(),
        "q=wtx-desk-1&wallet_id=wal_other".to_owned(),
    ] {
        assert_eq!(
            order_ids(&search(&app, &support, &query).await),
            Vec::<String>::new(),
            "{query}"
        );
    }
    // Free text with nothing to scope it: nothing looked up, and a hint why.
    let unscoped = search(&app, &support, "q=TABLE-7").await;
    assert!(unscoped["items"].as_array().unwrap().is_empty());
    assert!(unscoped["hint"].as_str().unwrap().contains("merchant_id"));
    let long_id = "w".repeat(65);
    for query in [
        "q=x&max_results=21".to_owned(),
        "q=x&max_results=99999999999999999999".to_owned(),
        format!("q={order_id}&amount=-1"),
        format!("q={order_id}&amount=1e5"),
        format!("q={order_id}&amount=12345678901234"),
        format!("q=x&wallet_id={long_id}"),
        format!("q={order_id}%00"),
        format!("q={order_id}&from=0000-01-01T00:00:00Z"),
        "q=%E4%BD%A0".to_owned(),
        format!("q={order_id}&unknown=1"),
    ] {
        let bad = app
            .http
            .get(app.url(&format!("/v1/admin/search?{query}")))
            .bearer_auth(&support)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{query}");
    }
}

#[tokio::test]
async fn a_merchant_searches_its_own_orders_only() {
    let app = spawn_app_with(&[]).await;
    let shop = app.create_merchant().await;
    let other = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let mine = app.create_order(&shop.cashier_key, "3.00").await;
    let theirs = app.create_order(&other.cashier_key, "4.00").await;
    let paid_mine = json_ok(app.pay(&wallet, &mine, &customer).await, StatusCode::OK).await;
    let paid_theirs = json_ok(app.pay(&wallet, &theirs, &customer).await, StatusCode::OK).await;
    app.create_order(&shop.cashier_key, "5.00").await;
    let list = |q: String| {
        let key = shop.cashier_key.clone();
        let app = &app;
        async move {
            let page = json_ok(
                app.merchant_get(&key, &format!("/v1/orders?q={q}")).await,
                StatusCode::OK,
            )
            .await;
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let mine_id = mine["id"].as_str().unwrap().to_owned();
    let just_mine = vec![mine_id.clone()];
    assert_eq!(
        list(paid_mine["payment_id"].as_str().unwrap().to_owned()).await,
        just_mine
    );
    assert_eq!(list(mine_id).await, just_mine);
    assert_eq!(
        list(mine["merchant_reference"].as_str().unwrap().to_owned()).await,
        just_mine
    );
    // Another shop's payment, or order, is not found here.
    assert!(list(paid_theirs["payment_id"].as_str().unwrap().to_owned())
        .await
        .is_empty());
    assert!(list(theirs["id"].as_str().unwrap().to_owned())
        .await
        .is_empty());
}
