//! Static merchant codes: one printed code, paid many times with the amount the
//! customer enters; each payment makes its order and settles it in one call, exactly
//! once per wallet_txn_id.

use crate::helpers::{assert_error, json_ok, TestApp};
use qrgate_domain::emv::{MerchantQr, OrderQr};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn issue(app: &TestApp, key: &str, body: Value) -> Value {
    json_ok(
        app.merchant_post(key, "/v1/static-codes", &body).await,
        StatusCode::CREATED,
    )
    .await
}

/// What a wallet sends for a static code: the amount is the customer's.
fn pay_body(code: &Value, account_id: &str, amount: &str) -> Value {
    json!({
        "wallet_txn_id": qrgate_domain::ids::mint("txn"),
        "qr_payload": code["qr_payload"],
        "customer_account_id": account_id,
        "amount": amount,
        "currency": code["currency"],
    })
}

#[tokio::test]
async fn a_static_code_is_paid_with_the_customers_amount_and_shows_as_the_shops_order() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let code = issue(&app, &merchant.cashier_key, json!({"name": "Counter"})).await;

    assert!(code["id"].as_str().unwrap().starts_with("sqr_"));
    assert_eq!(code["currency"], "CNY");
    assert_eq!(code["revoked_at"], Value::Null);
    let MerchantQr::Static(qr) = MerchantQr::parse(code["qr_payload"].as_str().unwrap()).unwrap()
    else {
        panic!("a static code's payload is static");
    };
    assert_eq!(qr.code_id, code["id"].as_str().unwrap());
    assert_eq!(qr.terminal_id.as_deref(), Some("Counter"));
    assert!(OrderQr::parse(code["qr_payload"].as_str().unwrap()).is_err());

    // Two customers' payments through the one code, each its own order.
    let first = json_ok(
        wallet
            .post("payments", &pay_body(&code, &customer, "12.34"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["amount"], "12.34");
    assert_eq!(first["fee"], "0.05");
    let second = json_ok(
        wallet
            .post("payments", &pay_body(&code, &customer, "7.00"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_ne!(first["order_id"], second["order_id"]);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "80.66");
    assert_eq!(app.merchant_balance(&merchant).await, "19.26");

    let order = app
        .order(&merchant.cashier_key, first["order_id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["amount"], "12.34");
    assert_eq!(order["static_code_id"], code["id"]);
    assert_eq!(order["terminal_id"], "Counter");
    assert_eq!(order["qr_payload"], code["qr_payload"]);
    assert_eq!(order["payment_id"], first["payment_id"]);
    let listed = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders?static_code_id={}", code["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_static_code_payment_settles_once_per_wallet_txn_id_even_when_sent_together() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let code = issue(&app, &merchant.cashier_key, json!({"name": "Till 2"})).await;
    let body = pay_body(&code, &customer, "10.00");

    // Eight sends of one payment (each a new webhook-id), all at once.
    let sends = (0..8).map(|_| wallet.post("payments", &body));
    let answers = futures_util::future::join_all(sends).await;
    let mut paid = Vec::new();
    for answer in answers {
        paid.push(json_ok(answer.unwrap(), StatusCode::OK).await);
    }
    assert!(paid.iter().all(|p| p == &paid[0]), "{paid:?}");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM orders WHERE status = 'paid'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_revoked_code_or_a_refused_payment_moves_no_money() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "5.00").await;
    let code = issue(&app, &merchant.cashier_key, json!({"name": "Door"})).await;
    let code_id = code["id"].as_str().unwrap();

    // More than the customer has: refused, and the order it made is closed with the
    // attempt on its timeline.
    assert_error(
        wallet
            .post("payments", &pay_body(&code, &customer, "9.00"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;
    let closed = app
        .count(&format!(
            "SELECT count(*) FROM orders WHERE static_code_id = '{code_id}' AND status = 'closed'"
        ))
        .await;
    assert_eq!(closed, 1);

    // Another currency than the code's.
    let mut usd = pay_body(&code, &customer, "1.00");
    usd["currency"] = json!("USD");
    assert_error(
        wallet.post("payments", &usd).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;

    // A payload altered by one character (CRC recomputed) is not the shop's code.
    let payload = code["qr_payload"].as_str().unwrap();
    let body = &payload[..payload.len() - 8];
    let forged_body = body.replacen("Door", "Doos", 1);
    let forged = format!(
        "{forged_body}6304{:04X}",
        qrgate_domain::emv::crc16_ccitt_false(format!("{forged_body}6304").as_bytes())
    );
    let mut forged_pay = pay_body(&code, &customer, "1.00");
    forged_pay["qr_payload"] = json!(forged);
    assert_error(
        wallet.post("payments", &forged_pay).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_qr",
    )
    .await;

    let revoked = json_ok(
        app.merchant_post(
            &merchant.cashier_key,
            &format!("/v1/static-codes/{code_id}/revoke"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    assert_error(
        wallet
            .post("payments", &pay_body(&code, &customer, "1.00"))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "static_code_revoked",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "5.00");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 0);
    // Revoked codes leave the default list and stay readable.
    let live = json_ok(
        app.merchant_get(&merchant.cashier_key, "/v1/static-codes")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(live["items"].as_array().unwrap().len(), 0);
    let all = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            "/v1/static-codes?include_revoked=true",
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["items"][0]["id"], code["id"]);
}

#[tokio::test]
async fn issuing_a_code_checks_its_name_currency_and_owner() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let other = app.create_merchant().await;
    let key = &merchant.cashier_key;
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "N".repeat(26)}),
        json!({"name": "Till\u{0}"}),
        json!({"name": "柜台"}),
        json!({"name": "Till", "currency": "XXX"}),
        json!({"name": "Till", "extra": 1}),
    ] {
        assert_error(
            app.merchant_post(key, "/v1/static-codes", &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_error(
        app.merchant_post(
            key,
            "/v1/static-codes",
            &json!({"name": "Till", "currency": "USD"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM static_codes").await, 0);

    let code = issue(&app, key, json!({"name": "Till", "currency": "CNY"})).await;
    let path = format!("/v1/static-codes/{}", code["id"].as_str().unwrap());
    assert_eq!(
        json_ok(app.merchant_get(key, &path).await, StatusCode::OK).await,
        code
    );
    // Another shop sees nothing of it.
    for p in [
        path.clone(),
        format!("{path}/qr.svg"),
        format!("{path}/qr.png"),
    ] {
        assert_error(
            app.merchant_get(&other.cashier_key, &p).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // An order filter that names no id is refused, as the document says.
    for filter in [
        "static_code_id=",
        "static_code_id=a%20b",
        "key_id=",
        "static_code_id=x%00",
    ] {
        assert_error(
            app.merchant_get(key, &format!("/v1/orders?{filter}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let svg = app.merchant_get(key, &format!("{path}/qr.svg")).await;
    assert_eq!(svg.status(), StatusCode::OK);
    assert!(svg.text().await.unwrap().contains("<svg"));
}

#[tokio::test]
async fn a_herd_of_issues_stops_at_the_shops_cap_and_sales_go_on_meanwhile() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let key = &merchant.cashier_key;
    let cap = gateway::api::static_codes::STATIC_CODES_PER_MERCHANT_MAX;
    // Twenty more than the cap, all at once, with sales in between.
    let bodies: Vec<Value> = (0..cap + 20)
        .map(|i| json!({"name": format!("Till {i}")}))
        .collect();
    let issues = bodies
        .iter()
        .map(|b| app.merchant_post(key, "/v1/static-codes", b));
    let orders: Vec<Value> = (0..10)
        .map(|i| json!({"amount": "1.00", "currency": "CNY", "merchant_reference": format!("HERD-{i}")}))
        .collect();
    let sales = orders.iter().map(|o| app.create_order_raw(key, o));
    let (issued, sold) = tokio::join!(
        futures_util::future::join_all(issues),
        futures_util::future::join_all(sales)
    );
    let mut created = 0;
    for response in issued {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "limit_exceeded", "{body}");
            }
            other => panic!("issuing a code answered {other}"),
        }
    }
    assert_eq!(created, cap);
    assert_eq!(
        app.count("SELECT count(*) FROM static_codes WHERE revoked_at IS NULL")
            .await,
        cap
    );
    for response in sold {
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    // Revoking one makes room for one.
    let listed = json_ok(
        app.merchant_get(key, "/v1/static-codes?limit=1").await,
        StatusCode::OK,
    )
    .await;
    let id = listed["items"][0]["id"].as_str().unwrap();
    json_ok(
        app.merchant_post(key, &format!("/v1/static-codes/{id}/revoke"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    issue(&app, key, json!({"name": "Spare"})).await;
}
