//! Loyalty points (PTS) and invite-a-friend.

use crate::helpers::{assert_error, json_ok, spawn_app, spawn_app_with, TestApp, TestMerchant};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// The customer's points balance, through the wallet API alone: the customer's account
/// names their points account (issue 11: it was reachable only with SQL).
async fn points(app: &TestApp, wallet: &WalletClient, account: &str) -> String {
    let customer = json_ok(
        wallet.get(&format!("accounts/{account}")).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let points_account = customer["points_account_id"].as_str().unwrap();
    app.customer_balance(wallet, points_account).await
}

async fn pay(
    app: &TestApp,
    merchant: &TestMerchant,
    wallet: &WalletClient,
    customer: &str,
    amount: &str,
    use_points: Option<i64>,
) -> reqwest::Response {
    let order = app.create_order(&merchant.cashier_key, amount).await;
    let mut body = TestApp::pay_body(&order, customer);
    if let Some(p) = use_points {
        body["use_points"] = json!(p);
    }
    wallet.post("payments", &body).await.unwrap()
}

#[tokio::test]
async fn payments_earn_points_per_whole_unit_charged() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let paid = json_ok(
        pay(&app, &merchant, &wallet, &customer, "12.34", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(paid["points_earned"], "12");
    assert_eq!(points(&app, &wallet, &customer).await, "12");
    // A merchant may give more.
    let generous = app
        .create_merchant_with(json!({"points_per_unit": "2.5"}))
        .await;
    let paid = json_ok(
        pay(&app, &generous, &wallet, &customer, "10.00", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(paid["points_earned"], "25");
    assert_eq!(points(&app, &wallet, &customer).await, "37");
}

#[tokio::test]
async fn points_pay_part_of_an_order_at_a_hundred_to_the_unit() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    json_ok(
        pay(&app, &merchant, &wallet, &customer, "500.00", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(points(&app, &wallet, &customer).await, "500");

    let paid = json_ok(
        pay(&app, &merchant, &wallet, &customer, "10.00", Some(300)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            paid["points_used"].as_str(),
            paid["charged"].as_str(),
            paid["points_earned"].as_str()
        ),
        (Some("300"), Some("7.00"), Some("7"))
    );
    assert_eq!(points(&app, &wallet, &customer).await, "207");
    // The merchant is paid in full (less its fee); the platform funds the points.
    assert_eq!(app.merchant_balance(&merchant).await, "508.06");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "493.00");

    // More points than the customer has: nothing moves.
    assert_error(
        pay(&app, &merchant, &wallet, &customer, "10.00", Some(300)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;
    assert_eq!(points(&app, &wallet, &customer).await, "207");
    // Never more than is due: 10.00 needs 1000 points at most.
    let paid = json_ok(
        pay(&app, &merchant, &wallet, &customer, "1.50", Some(200)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["points_used"].as_str(), paid["charged"].as_str()),
        (Some("150"), Some("0.00"))
    );
}

#[tokio::test]
async fn a_quote_shows_what_points_take_off() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let quote = json_ok(
        wallet.post("quotes", &json!({"qr_payload": order["qr_payload"], "customer_account_id": customer, "use_points": 250})).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (quote["points_used"].as_str(), quote["charged"].as_str()),
        (Some("250"), Some("7.50"))
    );
}

#[tokio::test]
async fn refunds_return_points_and_claw_back_earned_ones_never_below_zero() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let first = app.create_order(&merchant.cashier_key, "100.00").await;
    json_ok(app.pay(&wallet, &first, &customer).await, StatusCode::OK).await; // +100 PTS
    let mut spend = TestApp::pay_body(
        &app.create_order(&merchant.cashier_key, "10.00").await,
        &customer,
    );
    spend["use_points"] = json!(80);
    json_ok(
        wallet.post("payments", &spend).await.unwrap(),
        StatusCode::OK,
    )
    .await; // −80, +9 (9.20 charged)
    assert_eq!(points(&app, &wallet, &customer).await, "29");

    let path = format!("/v1/orders/{}/refunds", first["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "100.00", "refund_reference": "r"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // 100 earned points should go back; only 29 are left, so 29 do and the balance stops at 0.
    assert_eq!(points(&app, &wallet, &customer).await, "0");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "490.80");
}

#[tokio::test]
async fn a_refund_returns_redeemed_points_in_proportion() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"points_per_unit": "0"}))
        .await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let earner = app.create_merchant().await;
    json_ok(
        pay(&app, &earner, &wallet, &customer, "20.00", None).await,
        StatusCode::OK,
    )
    .await; // +20 PTS
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let mut body = TestApp::pay_body(&order, &customer);
    body["use_points"] = json!(20);
    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["charged"].as_str(), paid["points_earned"].as_str()),
        (Some("9.80"), Some("0"))
    );
    assert_eq!(points(&app, &wallet, &customer).await, "0");
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "5.00", "refund_reference": "a"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(points(&app, &wallet, &customer).await, "10");
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "5.00", "refund_reference": "b"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(points(&app, &wallet, &customer).await, "20");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "80.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
}

async fn open(wallet: &WalletClient, reference: &str, referral_code: Option<&str>) -> Value {
    let body =
        json!({"customer_reference": reference, "currency": "CNY", "referral_code": referral_code});
    json_ok(
        wallet.post("customers", &body).await.unwrap(),
        StatusCode::CREATED,
    )
    .await
}

async fn top_up(wallet: &WalletClient, account: &str) {
    let body = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": account, "amount": "500.00", "currency": "CNY"});
    json_ok(wallet.post("top-ups", &body).await.unwrap(), StatusCode::OK).await;
}

#[tokio::test]
async fn a_referral_rewards_both_once_on_the_first_payment_over_the_minimum() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"points_per_unit": "0"}))
        .await;
    let wallet = app.create_wallet().await;
    let alice = open(&wallet, "alice", None).await;
    let bob = open(&wallet, "bob", alice["referral_code"].as_str()).await;
    let (alice_account, bob_account) = (
        alice["account_id"].as_str().unwrap(),
        bob["account_id"].as_str().unwrap(),
    );
    top_up(&wallet, bob_account).await;

    json_ok(
        pay(&app, &merchant, &wallet, bob_account, "5.00", None).await,
        StatusCode::OK,
    )
    .await; // under 10.00
    assert_eq!(points(&app, &wallet, bob_account).await, "0");
    // The first payment of at least 10.00, sent twice (a retry): one bonus each.
    let order = app.create_order(&merchant.cashier_key, "20.00").await;
    let body = TestApp::pay_body(&order, bob_account);
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    json_ok(
        pay(&app, &merchant, &wallet, bob_account, "30.00", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(points(&app, &wallet, bob_account).await, "500");
    assert_eq!(points(&app, &wallet, alice_account).await, "500");
    // A second account of the same customer is not a new customer.
    let bob_again = json_ok(
        wallet.post("customers", &json!({"customer_reference": "bob", "currency": "HKD", "referral_code": alice["referral_code"]})).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(bob_again["referral_code"], bob["referral_code"]);
    assert_eq!(app.count("SELECT count(*) FROM referral_rewards").await, 1);
}

#[tokio::test]
async fn a_referrer_is_rewarded_at_most_the_cap() {
    let app = spawn_app_with(&[
        ("QRGATE_REFERRAL_REWARDS_PER_REFERRER_MAX", "1"),
        ("QRGATE_REFERRAL_BONUS_POINTS", "100"),
    ])
    .await;
    let merchant = app
        .create_merchant_with(json!({"points_per_unit": "0"}))
        .await;
    let wallet = app.create_wallet().await;
    let alice = open(&wallet, "alice", None).await;
    let code = alice["referral_code"].as_str();
    for friend in ["bob", "carol"] {
        let account = open(&wallet, friend, code).await["account_id"]
            .as_str()
            .unwrap()
            .to_owned();
        top_up(&wallet, &account).await;
        json_ok(
            pay(&app, &merchant, &wallet, &account, "10.00", None).await,
            StatusCode::OK,
        )
        .await;
    }
    assert_eq!(
        points(&app, &wallet, alice["account_id"].as_str().unwrap()).await,
        "100"
    );
    assert_eq!(app.count("SELECT count(*) FROM referral_rewards").await, 1);
}

#[tokio::test]
async fn points_in_yen_are_whole_yen() {
    let app = spawn_app().await;
    let shop = app
        .create_merchant_with(json!({"currency": "JPY", "country": "JP", "city": "Tokyo"}))
        .await;
    let wallet = app.create_wallet().await;
    app.set_funding_limit(&wallet.wallet_id, "JPY", "1000000")
        .await;
    let opened = json_ok(
        wallet
            .post(
                "customers",
                &json!({"customer_reference": "yuki", "currency": "JPY"}),
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let account = opened["account_id"].as_str().unwrap();
    let top_up = json!({"wallet_txn_id": "tu-jpy", "account_id": account, "amount": "10000", "currency": "JPY"});
    json_ok(
        wallet.post("top-ups", &top_up).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let earn = json!({"amount": "500", "currency": "JPY", "merchant_reference": "J1"});
    let order = json_ok(
        app.create_order_raw(&shop.cashier_key, &earn).await,
        StatusCode::CREATED,
    )
    .await;
    json_ok(
        wallet
            .post("payments", &TestApp::pay_body(&order, account))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await; // +500 PTS
    let spend = json!({"amount": "1000", "currency": "JPY", "merchant_reference": "J2"});
    let order = json_ok(
        app.create_order_raw(&shop.cashier_key, &spend).await,
        StatusCode::CREATED,
    )
    .await;
    let mut body = TestApp::pay_body(&order, account);
    body["use_points"] = json!(150);
    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    // 150 points are worth 1.5 yen: 1 yen is taken, for 100 points.
    assert_eq!(
        (paid["points_used"].as_str(), paid["charged"].as_str()),
        (Some("100"), Some("999"))
    );
}

#[tokio::test]
async fn a_wallet_finds_the_points_account_and_reads_its_statement() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let opened = open(&wallet, "carol", None).await;
    let account = opened["account_id"].as_str().unwrap();
    let points_account = opened["points_account_id"].as_str().unwrap().to_owned();
    let read = json_ok(
        wallet
            .get(&format!("accounts/{points_account}"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (read["currency"].as_str(), read["balance"].as_str()),
        (Some("PTS"), Some("0"))
    );
    assert_eq!(read["points_account_id"], points_account.as_str());
    top_up(&wallet, account).await;
    json_ok(
        pay(&app, &merchant, &wallet, account, "12.00", None).await,
        StatusCode::OK,
    )
    .await;
    let statement = json_ok(
        wallet
            .get(&format!("accounts/{points_account}/statement"))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let lines = statement["items"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{statement}");
    assert_eq!(lines[0]["amount"], "12");
    // Opening the same customer again names the same points account.
    let again = open(&wallet, "carol", None).await;
    assert_eq!(again["points_account_id"], points_account.as_str());
}
