//! Wallet request signing, replay protection and isolation between wallets.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp};
use qrgate_domain::signing::SigningSecret;
use reqwest::{Method, StatusCode};
use serde_json::json;
use simulator::wallet::WalletClient;

#[tokio::test]
async fn a_replayed_message_gets_the_same_answer_and_moves_no_money() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let body = serde_json::to_vec(&TestApp::pay_body(&order, &customer)).unwrap();
    let sig = wallet.sign(&body);
    let path = wallet.path("payments");

    let first = json_ok(
        wallet
            .send(Method::POST, &path, Some(body.clone()), &sig)
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let replay = json_ok(
        wallet
            .send(Method::POST, &path, Some(body), &sig)
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;

    assert_eq!(replay, first);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
}

#[tokio::test]
async fn a_seen_webhook_id_on_another_path_or_body_is_replayed_message() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let pay = serde_json::to_vec(&TestApp::pay_body(&order, &customer)).unwrap();
    let sig = wallet.sign_as("msg-once", chrono::Utc::now().timestamp(), &pay);
    json_ok(
        wallet
            .send(Method::POST, &wallet.path("payments"), Some(pay), &sig)
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;

    // Same id on another path, correctly signed.
    let top_up = serde_json::to_vec(&json!({"wallet_txn_id": "tu-x", "account_id": customer, "amount": "1.00", "currency": "CNY"})).unwrap();
    let sig = wallet.sign_as("msg-once", chrono::Utc::now().timestamp(), &top_up);
    let response = wallet
        .send(Method::POST, &wallet.path("top-ups"), Some(top_up), &sig)
        .await
        .unwrap();
    assert_error(response, StatusCode::CONFLICT, "replayed_message").await;

    // Same id on a GET.
    let target = wallet.path(&format!("accounts/{customer}"));
    let sig = wallet.sign_as(
        "msg-once",
        chrono::Utc::now().timestamp(),
        target.as_bytes(),
    );
    assert_error(
        wallet.send(Method::GET, &target, None, &sig).await.unwrap(),
        StatusCode::CONFLICT,
        "replayed_message",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
}

#[tokio::test]
async fn a_tampered_body_is_an_invalid_signature() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let body = serde_json::to_vec(&TestApp::pay_body(&order, &customer)).unwrap();
    let sig = wallet.sign(&body);
    let tampered = String::from_utf8(body)
        .unwrap()
        .replace(&customer, &app.funded_customer(&wallet, "0").await);

    let response = wallet
        .send(
            Method::POST,
            &wallet.path("payments"),
            Some(tampered.into_bytes()),
            &sig,
        )
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_stale_timestamp_is_rejected() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let body = serde_json::to_vec(&json!({"customer_reference": "c1", "currency": "CNY"})).unwrap();
    for skew in [-301, 301] {
        let sig = wallet.sign_as(
            &format!("msg-skew{skew}"),
            chrono::Utc::now().timestamp() + skew,
            &body,
        );
        let response = wallet
            .send(
                Method::POST,
                &wallet.path("customers"),
                Some(body.clone()),
                &sig,
            )
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "stale_timestamp").await;
    }
}

#[tokio::test]
async fn an_unknown_wallet_cannot_sign() {
    let app = spawn_app().await;
    let stranger = WalletClient::new(
        &app.address,
        "wal_doesnotexist",
        SigningSecret::generate(),
        app.http.clone(),
    );
    let response = stranger
        .post(
            "customers",
            &json!({"customer_reference": "c1", "currency": "CNY"}),
        )
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
    let response = stranger.get("accounts/acc_x").await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
}

#[tokio::test]
async fn missing_signature_headers_are_rejected() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let response = app
        .http
        .post(app.url(&wallet.path("customers")))
        .json(&json!({"customer_reference": "c1", "currency": "CNY"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
}

#[tokio::test]
async fn secrets_rotate_without_downtime_and_retired_ones_stop_working() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let first_secret_id: String = app
        .db()
        .await
        .query_one(
            "SELECT id FROM wallet_secrets WHERE wallet_id = $1",
            &[&wallet.wallet_id],
        )
        .await
        .unwrap()
        .get(0);
    let added = json_ok(
        app.admin_post(
            &format!("/v1/admin/wallets/{}/secrets", wallet.wallet_id),
            &json!({}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let second = WalletClient::new(
        &app.address,
        &wallet.wallet_id,
        SigningSecret::parse(added["secret"].as_str().unwrap()).unwrap(),
        app.http.clone(),
    );
    // Both secrets are active during the overlap.
    let open = |r: &str| json!({"customer_reference": r, "currency": "CNY"});
    json_ok(
        wallet.post("customers", &open("a")).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    json_ok(
        second.post("customers", &open("b")).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // A third active secret is refused: the request is well formed, the wallet's state says no.
    let third = app
        .admin_post(
            &format!("/v1/admin/wallets/{}/secrets", wallet.wallet_id),
            &json!({}),
        )
        .await;
    assert_error(third, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded").await;

    let retired = app
        .admin_delete(&format!(
            "/v1/admin/wallets/{}/secrets/{first_secret_id}",
            wallet.wallet_id
        ))
        .await;
    json_ok(retired, StatusCode::OK).await;

    assert_error(
        wallet.post("customers", &open("c")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_signature",
    )
    .await;
    json_ok(
        second.post("customers", &open("d")).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // The last active secret cannot be retired.
    let second_id = added["secret_id"].as_str().unwrap();
    let last = app
        .admin_delete(&format!(
            "/v1/admin/wallets/{}/secrets/{second_id}",
            wallet.wallet_id
        ))
        .await;
    assert_error(last, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn a_webhook_id_is_recorded_only_after_a_valid_signature() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let body = serde_json::to_vec(&json!({"customer_reference": "c1", "currency": "CNY"})).unwrap();
    let now = chrono::Utc::now().timestamp();
    let forged = simulator::wallet::Signature {
        id: "msg-1".into(),
        timestamp: now,
        signature: SigningSecret::generate().sign("msg-1", now, &body),
    };
    let response = wallet
        .send(
            Method::POST,
            &wallet.path("customers"),
            Some(body.clone()),
            &forged,
        )
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;

    let genuine = wallet.sign_as("msg-1", now, &body);
    json_ok(
        wallet
            .send(
                Method::POST,
                &wallet.path("customers"),
                Some(body),
                &genuine,
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn a_signature_from_wallet_a_does_not_open_wallet_b() {
    let app = spawn_app().await;
    let a = app.create_wallet().await;
    let b = app.create_wallet().await;
    let b_customer = app.funded_customer(&b, "100.00").await;
    // Wallet A signs correctly with its own secret but calls B's path.
    let a_on_b = WalletClient::new(
        &app.address,
        &b.wallet_id,
        app.wallet_secret(&a.wallet_id).await,
        app.http.clone(),
    );
    let response = a_on_b.get(&format!("accounts/{b_customer}")).await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
}

#[tokio::test]
async fn a_wallet_cannot_touch_another_wallets_customers() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let a = app.create_wallet().await;
    let b = app.create_wallet().await;
    let b_customer = app.funded_customer(&b, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    // Pay from it, top it up, read it: all 404 for wallet A.
    assert_error(
        app.pay(&a, &order, &b_customer).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let top_up = json!({"wallet_txn_id": "tu-1", "account_id": b_customer, "amount": "1.00", "currency": "CNY"});
    assert_error(
        a.post("top-ups", &top_up).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        a.get(&format!("accounts/{b_customer}")).await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Nor read its payments.
    let body = TestApp::pay_body(&order, &b_customer);
    json_ok(b.post("payments", &body).await.unwrap(), StatusCode::OK).await;
    let lookup = a
        .get(&format!(
            "payments/{}",
            body["wallet_txn_id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_error(lookup, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.customer_balance(&b, &b_customer).await, "90.00");
}

#[tokio::test]
async fn wallet_bodies_are_checked_for_size_type_and_schema() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let path = wallet.path("customers");

    let huge =
        serde_json::to_vec(&json!({"customer_reference": "x".repeat(70_000), "currency": "CNY"}))
            .unwrap();
    let sig = wallet.sign(&huge);
    assert_error(
        wallet
            .send(Method::POST, &path, Some(huge), &sig)
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    let malformed = b"{\"customer_reference\": ".to_vec();
    let sig = wallet.sign(&malformed);
    assert_error(
        wallet
            .send(Method::POST, &path, Some(malformed), &sig)
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let unknown_field = json!({"customer_reference": "c1", "currency": "CNY", "vip": true});
    let body = assert_error(
        wallet.post("customers", &unknown_field).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("vip"),
        "{body}"
    );

    let text = b"customer_reference=c1".to_vec();
    let sig = wallet.sign(&text);
    let response = app
        .http
        .post(app.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("webhook-id", &sig.id)
        .header("webhook-timestamp", sig.timestamp.to_string())
        .header("webhook-signature", &sig.signature)
        .body(text)
        .send()
        .await
        .unwrap();
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM accounts WHERE kind = 'customer'")
            .await,
        0
    );
}

#[tokio::test]
async fn opening_the_same_customer_twice_answers_the_same_account() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let open = json!({"customer_reference": "alice", "currency": "CNY"});
    let first = json_ok(
        wallet.post("customers", &open).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let again = json_ok(
        wallet.post("customers", &open).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(first["account_id"], again["account_id"]);
    // Another currency is another account of the same customer, with the same referral code.
    let hkd = json_ok(
        wallet
            .post(
                "customers",
                &json!({"customer_reference": "alice", "currency": "HKD"}),
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_ne!(hkd["account_id"], first["account_id"]);
    assert_eq!(hkd["referral_code"], first["referral_code"]);
}
