//! The risk engine and strong customer authentication: each rule declines with its
//! code and rule name, moves no money, stores its answer for a retry, and is on the
//! order's timeline; the daily limit holds under concurrent payments on two replicas.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

async fn set_limits(app: &TestApp, limits: Value) {
    json_ok(
        app.admin_put("/v1/admin/risk-limits/CNY", &limits).await,
        StatusCode::OK,
    )
    .await;
}

fn pay_body(order: &Value, account: &str, authentication: &str) -> Value {
    let mut body = TestApp::pay_body(order, account);
    body["customer_authentication"] = authentication.into();
    body
}

fn transfer_body(from: &str, to: &str, amount: &str, authentication: &str) -> Value {
    json!({"wallet_txn_id": qrgate_domain::ids::mint("tr"), "from_account_id": from, "to_account_id": to,
           "amount": amount, "currency": "CNY", "customer_authentication": authentication})
}

/// A customer of `wallet` paying new orders of `merchant`.
struct Payer<'a> {
    app: &'a TestApp,
    merchant: &'a TestMerchant,
    wallet: &'a WalletClient,
    account: &'a str,
}

impl Payer<'_> {
    /// Pays a new order of `amount`: the order and the answer.
    async fn pay(&self, amount: &str, authentication: &str) -> (Value, reqwest::Response) {
        let order = self
            .app
            .create_order(&self.merchant.cashier_key, amount)
            .await;
        let body = pay_body(&order, self.account, authentication);
        (order, self.wallet.post("payments", &body).await.unwrap())
    }

    async fn pays(&self, amount: &str, authentication: &str) {
        json_ok(self.pay(amount, authentication).await.1, StatusCode::OK).await;
    }

    /// Asserts a decline by `rule`, that the order is still pending, and that its
    /// timeline — through the API and the merchant SDK — says why.
    async fn is_declined(&self, amount: &str, authentication: &str, code: &str, rule: &str) {
        let (order, response) = self.pay(amount, authentication).await;
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
        assert_eq!(error["error"]["rule"], rule, "{error}");
        let key = &self.merchant.cashier_key;
        let order_id = order["id"].as_str().unwrap();
        assert_eq!(self.app.order(key, order_id).await["status"], "pending");
        let timeline = self.app.timeline(key, order_id).await;
        let last = timeline.last().unwrap();
        assert_eq!(
            (
                last["kind"].as_str(),
                last["code"].as_str(),
                last["rule"].as_str()
            ),
            (Some("payment_failed"), Some(code), Some(rule)),
            "{timeline:?}"
        );
        let sdk = merchant_sdk::Client::builder(&self.app.address, key)
            .build()
            .unwrap();
        let events = sdk.order_events(order_id).await.unwrap();
        assert_eq!(events.last().unwrap().rule.as_deref(), Some(rule));
    }
}

#[tokio::test]
async fn each_limit_declines_with_its_rule_and_moves_nothing() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let alice_account = app.funded_customer(&wallet, "500.00").await;
    let alice = Payer {
        app: &app,
        merchant: &merchant,
        wallet: &wallet,
        account: &alice_account,
    };
    let bob = app.funded_customer(&wallet, "0").await;
    set_limits(
        &app,
        json!({"transaction_max": "50.00", "daily_amount_max": "100.00", "daily_count_max": 3}),
    )
    .await;

    alice
        .is_declined("60.00", "none", "limit_exceeded", "transaction_max")
        .await;
    alice.pays("40.00", "none").await;
    alice.pays("40.00", "none").await;
    alice
        .is_declined("30.00", "none", "limit_exceeded", "daily_amount")
        .await;
    // Transfers count too: the third movement of the day, then none.
    let transfer = transfer_body(alice.account, &bob, "10.00", "none");
    json_ok(
        wallet.post("transfers", &transfer).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    alice
        .is_declined("1.00", "none", "limit_exceeded", "daily_count")
        .await;
    let late_transfer = transfer_body(alice.account, &bob, "1.00", "mfa");
    let declined = assert_error(
        wallet.post("transfers", &late_transfer).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
    assert_eq!(declined["error"]["rule"], "daily_count");
    // A retry is answered from storage, rule and all, even after the limit is lifted.
    set_limits(&app, json!({})).await;
    let again = assert_error(
        wallet.post("transfers", &late_transfer).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
    assert_eq!(again["error"]["rule"], "daily_count");

    assert_eq!(app.customer_balance(&wallet, alice.account).await, "410.00");
    assert_eq!(app.customer_balance(&wallet, &bob).await, "10.00");
    // With the limits lifted the next movement goes through.
    alice.pays("60.00", "none").await;
}

#[tokio::test]
async fn velocity_declines_past_n_movements_a_minute_and_the_window_slides() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let alice_account = app.funded_customer(&wallet, "100.00").await;
    let alice = Payer {
        app: &app,
        merchant: &merchant,
        wallet: &wallet,
        account: &alice_account,
    };
    set_limits(&app, json!({"per_minute_count_max": 2})).await;

    alice.pays("1.00", "none").await;
    alice.pays("1.00", "none").await;
    alice
        .is_declined("1.00", "mfa", "risk_declined", "velocity")
        .await;

    // A minute later (the recorded times moved back), the customer may pay again.
    app.db()
        .await
        .execute(
            "UPDATE risk_counters SET recent_at = ARRAY(SELECT t - interval '61 seconds' FROM unnest(recent_at) t)",
            &[],
        )
        .await
        .unwrap();
    alice.pays("1.00", "none").await;
    assert_eq!(app.customer_balance(&wallet, alice.account).await, "97.00");
}

#[tokio::test]
async fn concurrent_payments_on_two_replicas_never_pass_the_daily_limit() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let alice = app.funded_customer(&wallet, "1000.00").await;
    set_limits(&app, json!({"daily_amount_max": "100.00"})).await;
    let replica = WalletClient::new(
        &app.spawn_replica(&[]).await,
        &wallet.wallet_id,
        app.wallet_secret(&wallet.wallet_id).await,
        app.http.clone(),
    );
    let mut orders = Vec::new();
    for _ in 0..24 {
        orders.push(app.create_order(&merchant.cashier_key, "10.00").await);
    }

    let answers = join_all(orders.iter().enumerate().map(|(i, order)| {
        let client = if i % 2 == 0 { &wallet } else { &replica };
        let body = pay_body(order, &alice, "none");
        async move { client.post("payments", &body).await.unwrap().status() }
    }))
    .await;

    let succeeded = answers.iter().filter(|s| **s == StatusCode::OK).count();
    let declined = answers
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((succeeded, declined), (10, 14), "{answers:?}");
    assert_eq!(app.customer_balance(&wallet, &alice).await, "900.00");
    let spent = app.count("SELECT spent_minor FROM risk_counters").await;
    assert_eq!(spent, 10_000);
}

#[tokio::test]
async fn strong_customer_authentication_by_threshold_allowance_and_risk() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let alice_account = app.funded_customer(&wallet, "500.00").await;
    let alice = Payer {
        app: &app,
        merchant: &merchant,
        wallet: &wallet,
        account: &alice_account,
    };
    let bob = app.funded_customer(&wallet, "0").await;
    let sca_path = format!("/v1/admin/wallets/{}/sca/CNY", wallet.wallet_id);
    let rule = json_ok(
        app.admin_put(
            &sca_path,
            &json!({"threshold": "50.00", "allowance": "30.00"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (rule["threshold"].as_str(), rule["allowance"].as_str()),
        (Some("50.00"), Some("30.00"))
    );

    // Above the threshold: MFA, however the customer was verified otherwise.
    alice
        .is_declined("60.00", "pin", "authentication_required", "sca_threshold")
        .await;
    alice.pays("60.00", "mfa").await;
    // Small payments pass until 30.00 have moved without MFA since the last MFA.
    alice.pays("20.00", "none").await;
    alice
        .is_declined("20.00", "none", "authentication_required", "sca_allowance")
        .await;
    alice.pays("20.00", "mfa").await;
    alice.pays("20.00", "none").await;
    // Transfers are held to the same rule.
    assert_error(
        wallet
            .post(
                "transfers",
                &transfer_body(alice.account, &bob, "60.00", "none"),
            )
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "authentication_required",
    )
    .await;
    json_ok(
        wallet
            .post(
                "transfers",
                &transfer_body(alice.account, &bob, "60.00", "mfa"),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    // A risk rule asks for MFA past an amount a day, whatever the wallet's allowance:
    // 180.00 have moved today (120.00 paid, 60.00 transferred).
    set_limits(&app, json!({"mfa_daily_amount_above": "180.00"})).await;
    alice
        .is_declined(
            "5.00",
            "none",
            "authentication_required",
            "mfa_daily_amount",
        )
        .await;
    alice.pays("5.00", "mfa").await;

    // Without the wallet's rule, small and large payments need no MFA from us.
    set_limits(&app, json!({})).await;
    json_ok(app.admin_delete(&sca_path).await, StatusCode::OK).await;
    alice.pays("60.00", "none").await;
    assert_eq!(app.customer_balance(&wallet, alice.account).await, "255.00");
}

#[tokio::test]
async fn risk_settings_are_validated_listed_and_audited() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    for (body, field) in [
        (json!({"transaction_max": "0"}), "transaction_max"),
        (json!({"daily_amount_max": "1.001"}), "daily_amount_max"),
        (json!({"daily_count_max": 0}), "daily_count_max"),
        (json!({"per_minute_count_max": 101}), "per_minute_count_max"),
        (json!({"velocity": 3}), "velocity"),
    ] {
        let error = assert_error(
            app.admin_put("/v1/admin/risk-limits/CNY", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            error["error"]["message"].as_str().unwrap().contains(field),
            "{error}"
        );
    }
    assert_error(
        app.admin_put("/v1/admin/risk-limits/XXX", &json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let listed = json_ok(app.admin_get("/v1/admin/risk-limits").await, StatusCode::OK).await;
    assert_eq!(
        listed["items"],
        json!([]),
        "nothing was stored by bad requests"
    );

    set_limits(
        &app,
        json!({"transaction_max": "50.00", "per_minute_count_max": 5}),
    )
    .await;
    let listed = json_ok(app.admin_get("/v1/admin/risk-limits").await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["transaction_max"], "50.00");
    assert_eq!(listed["items"][0]["daily_amount_max"], Value::Null);
    assert_eq!(listed["items"][0]["per_minute_count_max"], 5);

    assert_error(
        app.admin_put(
            "/v1/admin/wallets/wal_nosuchwallet/sca/CNY",
            &json!({"threshold": "1.00", "allowance": "0"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let sca_path = format!("/v1/admin/wallets/{}/sca", wallet.wallet_id);
    json_ok(
        app.admin_put(
            &format!("{sca_path}/CNY"),
            &json!({"threshold": "0", "allowance": "0"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let listed = json_ok(app.admin_get(&sca_path).await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["threshold"], "0.00");

    let audit = json_ok(app.admin_get("/v1/admin/audit").await, StatusCode::OK).await;
    let routes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["route"].as_str())
        .collect();
    assert!(routes.iter().any(|r| r.contains("risk-limits")), "{audit}");
    assert!(routes.iter().any(|r| r.contains("/sca/")), "{audit}");
}
