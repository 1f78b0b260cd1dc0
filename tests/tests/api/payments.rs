//! Paying an order: the money path and every way it can fail.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_payment_settles_exact_amounts_between_customer_merchant_and_fee_account() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await; // default fee: 38 bps
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "12.34").await;

    let paid = json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;

    // 12.34 × 0.38% = 0.046892 → 0.05 (half-up to the fen).
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["order_id"], order["id"]);
    assert_eq!(paid["amount"], "12.34");
    assert_eq!(paid["charged"], "12.34");
    assert_eq!(paid["charged_currency"], "CNY");
    assert_eq!(paid["fee"], "0.05");
    assert_eq!(paid["discount"], "0.00");
    assert!(paid["payment_id"].as_str().unwrap().starts_with("pay_"));
    assert_eq!(app.customer_balance(&wallet, &customer).await, "87.66");
    assert_eq!(app.merchant_balance(&merchant).await, "12.29");
    assert_eq!(app.fee_balance_minor("CNY").await, 5);
    let order = app
        .order(&merchant.cashier_key, order["id"].as_str().unwrap())
        .await;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["payment_id"], paid["payment_id"]);
    assert!(order["paid_at"].is_string());
}

#[tokio::test]
async fn fees_round_half_up_at_the_exact_half() {
    let app = spawn_app().await;
    let merchant = app.create_merchant_with(json!({"fee_rate_bps": 50})).await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;

    // 1.00 × 0.5% = 0.005 → 0.01; 0.99 × 0.5% = 0.00495 → 0.00.
    let half = app.create_order(&merchant.cashier_key, "1.00").await;
    let paid = json_ok(app.pay(&wallet, &half, &customer).await, StatusCode::OK).await;
    assert_eq!(paid["fee"], "0.01");
    let below = app.create_order(&merchant.cashier_key, "0.99").await;
    let paid = json_ok(app.pay(&wallet, &below, &customer).await, StatusCode::OK).await;
    assert_eq!(paid["fee"], "0.00");

    assert_eq!(app.merchant_balance(&merchant).await, "1.98");
    assert_eq!(app.fee_balance_minor("CNY").await, 1);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "8.01");
}

#[tokio::test]
async fn a_retried_payment_returns_its_stored_success_and_moves_no_more_money() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let order = app.create_order(&merchant.cashier_key, "20.00").await;
    let body = TestApp::pay_body(&order, &customer);

    let first = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    // A new message (new webhook-id) with the same wallet_txn_id and request.
    let retry = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;

    assert_eq!(retry, first);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "30.00");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn the_same_wallet_txn_id_for_another_request_is_an_idempotency_conflict() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let first_order = app.create_order(&merchant.cashier_key, "20.00").await;
    let second_order = app.create_order(&merchant.cashier_key, "5.00").await;
    let body = TestApp::pay_body(&first_order, &customer);
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;

    let mut other = TestApp::pay_body(&second_order, &customer);
    other["wallet_txn_id"] = body["wallet_txn_id"].clone();
    assert_error(
        wallet.post("payments", &other).await.unwrap(),
        StatusCode::CONFLICT,
        "idempotency_conflict",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "30.00");
}

#[tokio::test]
async fn insufficient_funds_moves_nothing_and_lands_on_the_timeline() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "5.00").await;
    let order = app.create_order(&merchant.cashier_key, "12.34").await;

    assert_error(
        app.pay(&wallet, &order, &customer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;

    assert_eq!(app.customer_balance(&wallet, &customer).await, "5.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(
        app.order(&merchant.cashier_key, order_id).await["status"],
        "pending"
    );
    let events = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{order_id}/events"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items[0]["kind"], "created");
    assert_eq!(items[1]["kind"], "payment_failed");
    assert_eq!(items[1]["code"], "insufficient_funds");
    // Customer account ids are masked on the merchant's timeline.
    let masked = items[1]["customer_account"].as_str().unwrap();
    assert!(
        masked.starts_with("acc_…") && !masked.contains(&customer[4..20]),
        "{masked}"
    );
}

#[tokio::test]
async fn a_successful_payment_appears_on_the_timeline_after_failed_attempts() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let poor = app.funded_customer(&wallet, "1.00").await;
    let rich = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    app.pay(&wallet, &order, &poor).await;
    json_ok(app.pay(&wallet, &order, &rich).await, StatusCode::OK).await;

    let events = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{}/events", order["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "payment_failed", "paid"]);
}

#[tokio::test]
async fn paying_a_paid_order_again_is_already_paid() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;

    assert_error(
        app.pay(&wallet, &order, &customer).await,
        StatusCode::CONFLICT,
        "already_paid",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
}

#[tokio::test]
async fn a_closed_order_is_not_payable() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let order_id = order["id"].as_str().unwrap();
    let closed = json_ok(
        app.merchant_post(
            &merchant.cashier_key,
            &format!("/v1/orders/{order_id}/close"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(closed["status"], "closed");

    assert_error(
        app.pay(&wallet, &order, &customer).await,
        StatusCode::CONFLICT,
        "order_not_payable",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
}

#[tokio::test]
async fn an_order_past_its_expiry_is_expired_by_the_database_clock() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let order_id = order["id"].as_str().unwrap();
    // Time travel: the order was created 10 minutes ago with a 5-minute expiry.
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = now() - interval '10 minutes', expires_at = now() - interval '5 minutes' WHERE id = $1",
            &[&order_id],
        )
        .await
        .unwrap();

    // Reads never show pending past expires_at, even before the sweeper runs.
    assert_eq!(
        app.order(&merchant.cashier_key, order_id).await["status"],
        "expired"
    );
    assert_error(
        app.pay(&wallet, &order, &customer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "order_expired",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    let stored: String = app
        .db()
        .await
        .query_one("SELECT status FROM orders WHERE id = $1", &[&order_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "expired");
}

#[tokio::test]
async fn the_sweeper_moves_due_orders_to_expired() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let order_id = order["id"].as_str().unwrap();
    let db = app.db().await;
    db.execute(
        "UPDATE orders SET created_at = now() - interval '10 minutes', expires_at = now() - interval '1 minute' WHERE id = $1",
        &[&order_id],
    )
    .await
    .unwrap();

    let mut status = String::new();
    for _ in 0..50 {
        status = db
            .query_one("SELECT status FROM orders WHERE id = $1", &[&order_id])
            .await
            .unwrap()
            .get(0);
        if status == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "expired");
    let events = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{order_id}/events"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(events["items"][1]["kind"], "expired");
}

#[tokio::test]
async fn a_payload_with_a_bad_crc_or_never_issued_is_invalid_qr() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let payload = order["qr_payload"].as_str().unwrap();

    let mut bad_crc = TestApp::pay_body(&order, &customer);
    let last = if payload.ends_with('0') { "1" } else { "0" };
    bad_crc["qr_payload"] = json!(format!("{}{last}", &payload[..payload.len() - 1]));
    assert_error(
        wallet.post("payments", &bad_crc).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_qr",
    )
    .await;

    // Well-formed with a valid CRC, for this very order, but not the payload we issued
    // (another merchant name): the gateway compares against what it issued.
    let mut qr = qrgate_domain::emv::OrderQr::parse(payload).unwrap();
    qr.merchant_name = "Someone Else".into();
    let mut forged = TestApp::pay_body(&order, &customer);
    forged["qr_payload"] = json!(qr.encode().unwrap());
    assert_error(
        wallet.post("payments", &forged).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_qr",
    )
    .await;

    // A public EMV payload (PromptPay) that is no order of ours.
    let mut foreign = TestApp::pay_body(&order, &customer);
    foreign["qr_payload"] =
        json!("00020101021229370016A000000677010111011300660000000005802TH530376454044.226304E469");
    assert_error(
        wallet.post("payments", &foreign).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_qr",
    )
    .await;

    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );
}

#[tokio::test]
async fn amount_and_currency_must_match_the_order() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    let mut wrong_amount = TestApp::pay_body(&order, &customer);
    wrong_amount["amount"] = json!("1.00");
    assert_error(
        wallet.post("payments", &wrong_amount).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount_mismatch",
    )
    .await;

    let mut wrong_currency = TestApp::pay_body(&order, &customer);
    wrong_currency["currency"] = json!("HKD");
    assert_error(
        wallet.post("payments", &wrong_currency).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;

    // "10" and "10.00" are the same number.
    let mut same_number = TestApp::pay_body(&order, &customer);
    same_number["amount"] = json!("10");
    json_ok(
        wallet.post("payments", &same_number).await.unwrap(),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn max_charged_guards_the_customer() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    let mut capped = TestApp::pay_body(&order, &customer);
    capped["max_charged"] = json!("9.99");
    assert_error(
        wallet.post("payments", &capped).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "charge_exceeds_max",
    )
    .await;
    let mut enough = TestApp::pay_body(&order, &customer);
    enough["max_charged"] = json!("10.00");
    json_ok(
        wallet.post("payments", &enough).await.unwrap(),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn a_wallet_can_look_up_a_payment_by_wallet_txn_id() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let body = TestApp::pay_body(&order, &customer);
    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let txn = body["wallet_txn_id"].as_str().unwrap();

    let looked_up = json_ok(
        wallet.get(&format!("payments/{txn}")).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(looked_up, paid);

    // A failed payment's lookup gives its stored failure.
    let poor = app.funded_customer(&wallet, "1.00").await;
    let other = app.create_order(&merchant.cashier_key, "10.00").await;
    let failed = TestApp::pay_body(&other, &poor);
    wallet.post("payments", &failed).await.unwrap();
    let looked_up = wallet
        .get(&format!(
            "payments/{}",
            failed["wallet_txn_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_error(
        looked_up,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;

    assert_error(
        wallet.get("payments/never-sent").await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn top_ups_stay_within_the_wallet_funding_limit() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    app.set_funding_limit(&wallet.wallet_id, "CNY", "100.00")
        .await;
    let customer = app.funded_customer(&wallet, "60.00").await;

    let over = json!({"wallet_txn_id": "tu-over", "account_id": customer, "amount": "40.01", "currency": "CNY"});
    assert_error(
        wallet.post("top-ups", &over).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
    let exact = json!({"wallet_txn_id": "tu-exact", "account_id": customer, "amount": "40.00", "currency": "CNY"});
    json_ok(
        wallet.post("top-ups", &exact).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");

    // No limit in a currency means no top-ups in it.
    let hkd = json_ok(
        wallet
            .post(
                "customers",
                &json!({"customer_reference": "hk-1", "currency": "HKD"}),
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let top_up = json!({"wallet_txn_id": "tu-hkd", "account_id": hkd["account_id"], "amount": "1.00", "currency": "HKD"});
    assert_error(
        wallet.post("top-ups", &top_up).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
}

#[tokio::test]
async fn bad_amounts_are_rejected_and_change_nothing() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    for amount in [
        json!("0"),
        json!("0.00"),
        json!("-1.00"),
        json!("1.001"),
        json!("10000000000.00"),
        json!(10),
        json!("1e3"),
        json!(""),
    ] {
        let body = json!({"amount": amount, "currency": "CNY", "merchant_reference": "R-1"});
        let body = assert_error(
            app.create_order_raw(&merchant.cashier_key, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("amount"),
            "{body}"
        );

        let mut pay = TestApp::pay_body(&order, &customer);
        pay["amount"] = amount.clone();
        assert_error(
            wallet.post("payments", &pay).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    // JPY has no minor unit; 13 characters is the EMV limit.
    let jpy = json!({"amount": "1.5", "currency": "JPY", "merchant_reference": "R-2"});
    assert_error(
        app.create_order_raw(&merchant.cashier_key, &jpy).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
}

#[tokio::test]
async fn orders_must_be_in_the_merchants_currency() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let body = json!({"amount": "10.00", "currency": "HKD", "merchant_reference": "R-1"});
    assert_error(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;
}

#[tokio::test]
async fn the_timeline_keeps_a_bounded_number_of_failed_attempts() {
    let app =
        crate::helpers::spawn_app_with(&[("QRGATE_TIMELINE_ENTRIES_PER_ORDER_MAX", "3")]).await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let poor = app.funded_customer(&wallet, "1.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    for _ in 0..5 {
        assert_error(
            app.pay(&wallet, &order, &poor).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
        )
        .await;
    }
    let events = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{}/events", order["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let failed = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "payment_failed")
        .count();
    assert_eq!(failed, 3);
}
