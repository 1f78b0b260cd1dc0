//! Cross-border payment: rates with spread, quotes locked for a minute, exact rounding
//! in currencies of 0, 2 and 3 decimals, refunds at the payment's rate.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

async fn merchant_in(app: &TestApp, currency: &str, country: &str) -> TestMerchant {
    app.create_merchant_with(json!({"currency": currency, "country": country, "city": "Central"}))
        .await
}

async fn set_rate(app: &TestApp, base: &str, quote: &str, rate: &str, spread_bps: i32) -> Value {
    app.set_fx_rate(base, quote, rate, spread_bps).await
}

/// A customer account in `currency` holding `balance`.
async fn customer_in(
    app: &TestApp,
    wallet: &WalletClient,
    currency: &str,
    balance: &str,
) -> String {
    app.funded_customer_in(wallet, currency, balance).await
}

async fn order_in(app: &TestApp, merchant: &TestMerchant, amount: &str, currency: &str) -> Value {
    let body = json!({"amount": amount, "currency": currency, "merchant_reference": format!("X-{}", qrgate_domain::ids::random_base32(8))});
    json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await
}

fn pay_body(order: &Value, account: &str) -> Value {
    TestApp::pay_body(order, account)
}

async fn balance(app: &TestApp, wallet: &WalletClient, account: &str) -> String {
    app.customer_balance(wallet, account).await
}

#[tokio::test]
async fn a_cny_account_pays_an_hkd_order_at_rate_plus_spread() {
    let app = spawn_app().await;
    let merchant = merchant_in(&app, "HKD", "HK").await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    set_rate(&app, "HKD", "CNY", "0.92", 50).await;
    let order = order_in(&app, &merchant, "100.00", "HKD").await;

    let paid = json_ok(
        wallet
            .post("payments", &pay_body(&order, &customer))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;

    // 100.00 × 0.92 × 1.005 = 92.46 CNY; the merchant gets 100.00 − 0.38 HKD.
    assert_eq!(paid["amount"], "100.00");
    assert_eq!(paid["currency"], "HKD");
    assert_eq!(paid["charged"], "92.46");
    assert_eq!(paid["charged_currency"], "CNY");
    assert_eq!(paid["fee"], "0.38");
    assert_eq!(balance(&app, &wallet, &customer).await, "907.54");
    assert_eq!(app.merchant_balance(&merchant).await, "99.62");
    let recorded: (String, i32) = {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT trim_scale(fx_rate)::text, fx_spread_bps FROM payments",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(recorded, ("0.92".to_owned(), 50));
}

#[tokio::test]
async fn a_quote_holds_its_rate_for_the_payment_and_then_expires() {
    let app = spawn_app().await;
    let merchant = merchant_in(&app, "HKD", "HK").await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    set_rate(&app, "HKD", "CNY", "0.92", 50).await;
    let order = order_in(&app, &merchant, "100.00", "HKD").await;

    let quote = json_ok(
        wallet
            .post(
                "quotes",
                &json!({"qr_payload": order["qr_payload"], "customer_account_id": customer}),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(quote["charged"], "92.46");
    assert_eq!(quote["charged_currency"], "CNY");
    assert_eq!(quote["rate"], "0.92");
    assert_eq!(quote["discount"], "0.00");
    assert!(quote["expires_at"].is_string());

    // The rate moves; the quoted payment still pays at the quoted rate.
    set_rate(&app, "HKD", "CNY", "0.95", 50).await;
    let mut body = pay_body(&order, &customer);
    body["quote_id"] = quote["quote_id"].clone();
    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paid["charged"], "92.46");

    // Without a quote, the current rate: 100.00 × 0.95 × 1.005 = 95.475 → 95.48.
    let second = order_in(&app, &merchant, "100.00", "HKD").await;
    let paid = json_ok(
        wallet
            .post("payments", &pay_body(&second, &customer))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paid["charged"], "95.48");

    // An expired quote moves nothing.
    let third = order_in(&app, &merchant, "10.00", "HKD").await;
    let quote = json_ok(
        wallet
            .post(
                "quotes",
                &json!({"qr_payload": third["qr_payload"], "customer_account_id": customer}),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    app.db()
        .await
        .execute(
            "UPDATE quotes SET expires_at = now() - interval '1 second' WHERE id = $1",
            &[&quote["quote_id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let before = balance(&app, &wallet, &customer).await;
    let mut body = pay_body(&third, &customer);
    body["quote_id"] = quote["quote_id"].clone();
    assert_error(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "quote_expired",
    )
    .await;
    body["wallet_txn_id"] = json!(qrgate_domain::ids::mint("txn"));
    body["quote_id"] = json!("qt_doesnotexist");
    assert_error(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "quote_expired",
    )
    .await;
    assert_eq!(balance(&app, &wallet, &customer).await, before);
}

#[tokio::test]
async fn max_charged_refuses_a_charge_that_moved() {
    let app = spawn_app().await;
    let merchant = merchant_in(&app, "HKD", "HK").await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    set_rate(&app, "HKD", "CNY", "0.92", 50).await;
    let order = order_in(&app, &merchant, "100.00", "HKD").await;
    let mut body = pay_body(&order, &customer);
    body["max_charged"] = json!("92.45");
    assert_error(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "charge_exceeds_max",
    )
    .await;
    let mut body = pay_body(&order, &customer);
    body["max_charged"] = json!("92.46");
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn without_a_rate_another_currency_cannot_pay() {
    let app = spawn_app().await;
    let merchant = merchant_in(&app, "HKD", "HK").await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    let order = order_in(&app, &merchant, "100.00", "HKD").await;
    assert_error(
        wallet
            .post("payments", &pay_body(&order, &customer))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "currency_mismatch",
    )
    .await;
    let quote = wallet
        .post(
            "quotes",
            &json!({"qr_payload": order["qr_payload"], "customer_account_id": customer}),
        )
        .await
        .unwrap();
    assert_error(quote, StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch").await;
    assert_eq!(balance(&app, &wallet, &customer).await, "1000.00");
}

#[tokio::test]
async fn rounding_is_exact_in_jpy_and_kwd() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let cny = customer_in(&app, &wallet, "CNY", "1000.00").await;

    // JPY has no minor unit: 1234 JPY × 0.0485 = 59.849 → 59.85 CNY; fee 4.6892 → 5 JPY.
    let jpy_shop = merchant_in(&app, "JPY", "JP").await;
    set_rate(&app, "JPY", "CNY", "0.0485", 0).await;
    let order = order_in(&app, &jpy_shop, "1234", "JPY").await;
    let paid = json_ok(
        wallet
            .post("payments", &pay_body(&order, &cny))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            paid["amount"].as_str(),
            paid["charged"].as_str(),
            paid["fee"].as_str()
        ),
        (Some("1234"), Some("59.85"), Some("5"))
    );
    assert_eq!(app.merchant_balance(&jpy_shop).await, "1229");

    // KWD has three: 1.234 KWD × 23.4567 = 28.9455678 → 28.95 CNY; fee 4.6892 → 0.005 KWD.
    let kwd_shop = merchant_in(&app, "KWD", "KW").await;
    set_rate(&app, "KWD", "CNY", "23.4567", 0).await;
    let order = order_in(&app, &kwd_shop, "1.234", "KWD").await;
    let paid = json_ok(
        wallet
            .post("payments", &pay_body(&order, &cny))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["charged"].as_str(), paid["fee"].as_str()),
        (Some("28.95"), Some("0.005"))
    );
    assert_eq!(app.merchant_balance(&kwd_shop).await, "1.229");

    // And into three decimals: a KWD account pays 10.00 CNY at 0.04265 → 0.4265 → 0.427 KWD.
    let kwd = customer_in(&app, &wallet, "KWD", "100.000").await;
    let cny_shop = app.create_merchant().await;
    set_rate(&app, "CNY", "KWD", "0.04265", 0).await;
    let order = order_in(&app, &cny_shop, "10.00", "CNY").await;
    let paid = json_ok(
        wallet
            .post("payments", &pay_body(&order, &kwd))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["charged"].as_str(), paid["charged_currency"].as_str()),
        (Some("0.427"), Some("KWD"))
    );
    assert_eq!(balance(&app, &wallet, &kwd).await, "99.573");
    assert_eq!(balance(&app, &wallet, &cny).await, "911.20");
}

#[tokio::test]
async fn refunds_of_a_cross_border_payment_use_its_rate() {
    let app = spawn_app().await;
    let merchant = merchant_in(&app, "HKD", "HK").await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    set_rate(&app, "HKD", "CNY", "0.92", 50).await;
    let order = order_in(&app, &merchant, "100.00", "HKD").await;
    json_ok(
        wallet
            .post("payments", &pay_body(&order, &customer))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    set_rate(&app, "HKD", "CNY", "1.50", 0).await; // the rate moves a lot; refunds do not care
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());

    // Half: round(92.46 × 0.5) = 46.23 CNY back; the merchant returns 50.00 − 0.19 HKD.
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "50.00", "refund_reference": "a"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(balance(&app, &wallet, &customer).await, "953.77");
    assert_eq!(app.merchant_balance(&merchant).await, "49.81");
    // The rest: every leg back exactly.
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "50.00", "refund_reference": "b"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(balance(&app, &wallet, &customer).await, "1000.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    assert_eq!(app.fee_balance_minor("HKD").await, 0);
}

#[tokio::test]
async fn fx_rates_are_checked() {
    let app = spawn_app().await;
    for body in [
        json!({"base": "HKD", "quote": "HKD", "rate": "1"}),
        json!({"base": "HKD", "quote": "CNY", "rate": "0"}),
        json!({"base": "HKD", "quote": "CNY", "rate": "-1"}),
        json!({"base": "HKD", "quote": "CNY", "rate": "0.123456789"}),
        json!({"base": "HKD", "quote": "CNY", "rate": 0.92}),
        json!({"base": "HKD", "quote": "CNY", "rate": "0.92", "spread_bps": 10001}),
        json!({"base": "XXX", "quote": "CNY", "rate": "0.92"}),
    ] {
        assert_error(
            app.admin_post("/v1/admin/fx-rates", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let set = set_rate(&app, "HKD", "CNY", "0.92000000", 25).await;
    assert_eq!(set["rate"], "0.92");
    assert!(set["id"].as_str().unwrap().starts_with("fx_"));
}

#[tokio::test]
async fn discount_points_and_fx_together_and_back() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let customer = customer_in(&app, &wallet, "CNY", "1000.00").await;
    // 500 points earned at home first.
    let home = app.create_merchant().await;
    let order = app.create_order(&home.cashier_key, "500.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;

    let shop = merchant_in(&app, "HKD", "HK").await;
    set_rate(&app, "HKD", "CNY", "0.92", 0).await;
    let campaign = json!({"kind": "percent_off", "percent_off": "10", "currency": "HKD", "budget": "100.00", "funded_by": "platform"});
    app.create_campaign(&campaign).await;
    let order = order_in(&app, &shop, "100.00", "HKD").await;
    let mut body = pay_body(&order, &customer);
    body["use_points"] = json!(500);

    let paid = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;

    // 100.00 − 10.00 (discount) − 5.00 (500 points) = 85.00 HKD × 0.92 = 78.20 CNY; earns 78.
    assert_eq!(
        (
            paid["discount"].as_str(),
            paid["points_used"].as_str(),
            paid["charged"].as_str(),
            paid["points_earned"].as_str()
        ),
        (Some("10.00"), Some("500"), Some("78.20"), Some("78"))
    );
    assert_eq!(app.merchant_balance(&shop).await, "99.62");
    assert_eq!(balance(&app, &wallet, &customer).await, "421.80");

    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &shop.manager_key,
            &path,
            &json!({"amount": "100.00", "refund_reference": "all"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(balance(&app, &wallet, &customer).await, "500.00");
    assert_eq!(app.merchant_balance(&shop).await, "0.00");
}
