//! Tips and convenience fees (EMV tags 55–57): stated in the order's QR, paid on top of
//! the amount, credited whole to the merchant on legs of their own, returned pro rata
//! by refunds, shown in statements and reports, and held to the shop's tip cap.

use crate::helpers::{assert_error, json_ok, TestApp, TestMerchant};
use qrgate_domain::{emv::OrderQr, tips::TipPolicy};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

async fn order_with(app: &TestApp, key: &str, amount: &str, tip: Value) -> Value {
    let mut body = json!({
        "amount": amount, "currency": "CNY",
        "merchant_reference": format!("T-{}", qrgate_domain::ids::random_base32(8)),
    });
    for (k, v) in tip.as_object().unwrap() {
        body[k] = v.clone();
    }
    json_ok(app.create_order_raw(key, &body).await, StatusCode::CREATED).await
}

fn tipped(order: &Value, customer: &str, tip: &str) -> Value {
    let mut body = TestApp::pay_body(order, customer);
    body["tip"] = json!(tip);
    body
}

async fn pay(wallet: &WalletClient, body: &Value) -> reqwest::Response {
    wallet.post("payments", body).await.unwrap()
}

async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    order: &Value,
    amount: &str,
    reference: &str,
) -> Value {
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": amount, "refund_reference": reference}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

fn qr_tip(order: &Value) -> TipPolicy {
    OrderQr::parse(order["qr_payload"].as_str().unwrap())
        .unwrap()
        .tip
}

#[tokio::test]
async fn a_tip_is_the_merchants_whole_on_its_own_leg_and_returns_pro_rata() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "200.00").await;
    let order = order_with(
        &app,
        &merchant.cashier_key,
        "100.00",
        json!({"tip_policy": "prompt"}),
    )
    .await;
    assert_eq!(order["tip_policy"], "prompt");
    assert_eq!(order["tip"], Value::Null);
    assert_eq!(order["convenience_fee"], Value::Null);
    assert_eq!(qr_tip(&order), TipPolicy::Prompt);

    let paid = json_ok(
        pay(&wallet, &tipped(&order, &customer, "10.00")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(paid["amount"], "100.00");
    assert_eq!(paid["tip"], "10.00");
    assert_eq!(paid["convenience_fee"], "0.00");
    assert_eq!(paid["charged"], "110.00");
    assert_eq!(
        paid["fee"], "0.38",
        "the platform's fee is on the amount only"
    );
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
    assert_eq!(app.merchant_balance(&merchant).await, "109.62");
    let shown = app
        .order(&merchant.cashier_key, order["id"].as_str().unwrap())
        .await;
    assert_eq!(shown["tip"], "10.00");
    assert_eq!(shown["charged"], "110.00");

    // The statement shows the tip as its own line.
    let statement = json_ok(
        app.merchant_get(
            &merchant.manager_key,
            &format!("/v1/accounts/{}/statement", merchant.account_id),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let lines: Vec<(&str, &str)> = statement["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["description"].as_str().unwrap(),
                l["amount"].as_str().unwrap(),
            )
        })
        .collect();
    let id = order["id"].as_str().unwrap();
    assert_eq!(
        lines,
        [
            (&*format!("payment for order {id}"), "99.62"),
            (&*format!("tip on order {id}"), "10.00")
        ]
    );

    // Half refunded: half the tip goes back with it; then the rest, every leg exactly.
    let first = refund(&app, &merchant, &order, "50.00", "r1").await;
    assert_eq!(first["tip_refunded"], "5.00");
    assert_eq!(first["convenience_fee_refunded"], "0.00");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "145.00");
    assert_eq!(app.merchant_balance(&merchant).await, "54.81");
    let rest = refund(&app, &merchant, &order, "50.00", "r2").await;
    assert_eq!(rest["tip_refunded"], "5.00");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "200.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    let listed = json_ok(
        app.merchant_get(&merchant.cashier_key, &format!("/v1/orders/{id}/refunds"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"][1]["tip_refunded"], "5.00");

    // The day's report and the shift's show the tips, and the report reconciles.
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(report["tips_amount"], "10.00");
    assert_eq!(report["refunded_tips_amount"], "10.00");
    assert_eq!(report["net"], "0.00");
    assert_eq!(report["closing_balance"], "0.00");
    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let shift = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/reports/shift?since={}", since.replace('+', "%2B")),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shift["totals"]["tips_amount"], "10.00");
}

#[tokio::test]
async fn an_uneven_tip_returns_to_the_minor_unit_over_three_refunds() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let order = order_with(
        &app,
        &merchant.cashier_key,
        "10.00",
        json!({"tip_policy": "prompt"}),
    )
    .await;
    json_ok(
        pay(&wallet, &tipped(&order, &customer, "1.01")).await,
        StatusCode::OK,
    )
    .await;
    let mut returned = Vec::new();
    for (amount, reference) in [("3.33", "a"), ("3.33", "b"), ("3.34", "c")] {
        returned
            .push(refund(&app, &merchant, &order, amount, reference).await["tip_refunded"].clone());
    }
    // Cumulative shares: round(101 × 333/1000) = 34, round(101 × 666/1000) = 67, then the rest.
    assert_eq!(returned, [json!("0.34"), json!("0.33"), json!("0.34")]);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "50.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
}

#[tokio::test]
async fn convenience_fees_are_stated_in_the_qr_and_charged_on_top() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;

    let fixed = order_with(
        &app,
        &merchant.cashier_key,
        "20.00",
        json!({"tip_policy": "fixed_fee", "convenience_fee": "1.50"}),
    )
    .await;
    assert_eq!(fixed["convenience_fee"], "1.50");
    assert_eq!(fixed["convenience_fee_percent"], Value::Null);
    assert!(fixed["qr_payload"]
        .as_str()
        .unwrap()
        .contains("55020256041.50"));
    let percent = order_with(
        &app,
        &merchant.cashier_key,
        "19.99",
        json!({"tip_policy": "percentage_fee", "convenience_fee_percent": "2.5"}),
    )
    .await;
    assert_eq!(percent["convenience_fee"], "0.50", "49.975 rounds half up");
    assert_eq!(percent["convenience_fee_percent"], "2.5");
    assert!(percent["qr_payload"]
        .as_str()
        .unwrap()
        .contains("55020357032.5"));

    // A tip on an order that asks for none is refused, and nothing moves.
    assert_error(
        pay(&wallet, &tipped(&fixed, &customer, "1.00")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tip_not_allowed",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(
        app.order(&merchant.cashier_key, fixed["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );

    let paid = json_ok(app.pay(&wallet, &fixed, &customer).await, StatusCode::OK).await;
    assert_eq!(paid["convenience_fee"], "1.50");
    assert_eq!(paid["charged"], "21.50");
    assert_eq!(paid["fee"], "0.08");
    let paid = json_ok(app.pay(&wallet, &percent, &customer).await, StatusCode::OK).await;
    assert_eq!(paid["charged"], "20.49");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "58.01");
    // 20.00 − 0.08 + 1.50, and 19.99 − 0.08 + 0.50.
    assert_eq!(app.merchant_balance(&merchant).await, "41.83");
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(report["convenience_fees_amount"], "2.00");
    assert_eq!(report["net"], "41.83");

    // A full refund gives the fee back too.
    let back = refund(&app, &merchant, &fixed, "20.00", "all").await;
    assert_eq!(back["convenience_fee_refunded"], "1.50");
    assert_eq!(app.customer_balance(&wallet, &customer).await, "79.51");
}

#[tokio::test]
async fn the_shop_sets_its_default_and_its_cap_and_tips_above_the_cap_are_refused() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let me = |key: String| {
        let app = &app;
        async move { json_ok(app.merchant_get(&key, "/v1/me").await, StatusCode::OK).await }
    };
    let tipping = me(merchant.manager_key.clone()).await["tipping"].clone();
    assert_eq!(
        tipping,
        json!({"tip_policy": "none", "convenience_fee": null, "convenience_fee_percent": null, "tip_max_percent": 25})
    );

    // The default cap is 25% of the amount.
    let order = order_with(
        &app,
        &merchant.cashier_key,
        "10.00",
        json!({"tip_policy": "prompt"}),
    )
    .await;
    assert_error(
        pay(&wallet, &tipped(&order, &customer, "2.51")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tip_exceeds_cap",
    )
    .await;
    json_ok(
        pay(&wallet, &tipped(&order, &customer, "2.50")).await,
        StatusCode::OK,
    )
    .await;

    // Bad settings are refused and change nothing; a cashier's key may not set them.
    let put = |key: String, body: Value| {
        let app = &app;
        async move {
            app.http
                .put(app.url("/v1/me/tip-policy"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [
        json!({"tip_policy": "fixed_fee"}),
        json!({"tip_policy": "prompt", "convenience_fee": "1.00"}),
        json!({"tip_policy": "percentage_fee", "convenience_fee_percent": "100"}),
        json!({"tip_policy": "percentage_fee", "convenience_fee_percent": "0"}),
        json!({"tip_policy": "fixed_fee", "convenience_fee": "1.001"}),
        json!({"tip_policy": "prompt", "tip_max_percent": 101}),
        json!({"tip_policy": "prompt", "tip_max_percent": -1}),
        json!({"tip_policy": "tips"}),
    ] {
        assert_error(
            put(merchant.manager_key.clone(), bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_error(
        put(
            merchant.cashier_key.clone(),
            json!({"tip_policy": "prompt"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(me(merchant.manager_key.clone()).await["tipping"], tipping);

    let set = json_ok(
        put(
            merchant.manager_key.clone(),
            json!({"tip_policy": "prompt", "tip_max_percent": 10}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["tip_max_percent"], 10);
    // An order that names no policy takes the shop's, on every replica's cached profile.
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    assert_eq!(order["tip_policy"], "prompt");
    assert_eq!(qr_tip(&order), TipPolicy::Prompt);
    assert_error(
        pay(&wallet, &tipped(&order, &customer, "1.01")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "tip_exceeds_cap",
    )
    .await;
    json_ok(
        pay(&wallet, &tipped(&order, &customer, "1.00")).await,
        StatusCode::OK,
    )
    .await;
    // Changing the policy leaves the cap alone when it is not named.
    let set = json_ok(
        put(
            merchant.manager_key.clone(),
            json!({"tip_policy": "percentage_fee", "convenience_fee_percent": "3"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["tip_max_percent"], 10);
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    assert_eq!(order["convenience_fee"], "0.30");
    // The order's own policy wins over the shop's.
    let plain = order_with(
        &app,
        &merchant.cashier_key,
        "10.00",
        json!({"tip_policy": "none"}),
    )
    .await;
    assert_eq!(plain["convenience_fee"], Value::Null);
    assert_eq!(qr_tip(&plain), TipPolicy::None);

    // A tip that is not an amount in the order's currency is refused before anything.
    let mut body = tipped(&plain, &customer, "0.001");
    assert_error(
        pay(&wallet, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    body["tip"] = json!("-1");
    assert_error(
        pay(&wallet, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    body["tip"] = json!("0");
    json_ok(pay(&wallet, &body).await, StatusCode::OK).await;
}

#[tokio::test]
async fn a_herd_paying_one_tipped_order_settles_it_once_with_its_tip() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let order = order_with(
        &app,
        &merchant.cashier_key,
        "40.00",
        json!({"tip_policy": "prompt"}),
    )
    .await;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.funded_customer(&wallet, "100.00").await);
    }
    let sends = customers.iter().enumerate().map(|(i, customer)| {
        let body = tipped(&order, customer, &format!("{}.00", i + 1));
        let wallet = &wallet;
        async move { pay(wallet, &body).await.status() }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    let shown = app
        .order(&merchant.cashier_key, order["id"].as_str().unwrap())
        .await;
    let tip: rust_decimal::Decimal = shown["tip"].as_str().unwrap().parse().unwrap();
    let credited: rust_decimal::Decimal = app.merchant_balance(&merchant).await.parse().unwrap();
    assert_eq!(
        credited,
        rust_decimal::Decimal::new(3985, 2) + tip,
        "40.00 − 0.15 fee + the one tip"
    );
}

#[tokio::test]
async fn the_sdk_and_the_cashier_cli_set_and_show_tips() {
    use merchant_sdk::{Client, FeePercent, NewOrder};
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let cny: qrgate_domain::Currency = "CNY".parse().unwrap();
    let manager = Client::builder(&app.address, &merchant.manager_key)
        .build()
        .unwrap();

    let settings = manager
        .set_tip_policy(TipPolicy::Prompt, Some(20))
        .await
        .unwrap();
    assert_eq!(
        (settings.policy, settings.tip_max_percent),
        (TipPolicy::Prompt, 20)
    );
    let order = manager
        .create_order(&NewOrder::new(
            rust_decimal::Decimal::new(1000, 2),
            cny,
            "SDK-TIP",
        ))
        .await
        .unwrap();
    assert_eq!(order.tip_policy, TipPolicy::Prompt);
    let wire = json!({"qr_payload": order.qr_payload, "amount": "10.00", "currency": "CNY"});
    json_ok(
        pay(&wallet, &tipped(&wire, &customer, "2.00")).await,
        StatusCode::OK,
    )
    .await;
    let paid = manager.get_order(&order.id).await.unwrap();
    assert_eq!(paid.tip, Some(rust_decimal::Decimal::new(200, 2)));
    let refunded = manager
        .refund(&order.id, rust_decimal::Decimal::new(500, 2), "half", None)
        .await
        .unwrap();
    assert_eq!(refunded.tip_refunded, rust_decimal::Decimal::new(100, 2));
    let fee_order = manager
        .create_order(&NewOrder {
            tip_policy: Some(TipPolicy::PercentageFee(FeePercent::parse("2.5").unwrap())),
            ..NewOrder::new(rust_decimal::Decimal::new(1999, 2), cny, "SDK-FEE")
        })
        .await
        .unwrap();
    assert_eq!(
        fee_order.convenience_fee,
        Some(rust_decimal::Decimal::new(50, 2))
    );
    assert_eq!(
        fee_order.tip_policy,
        TipPolicy::PercentageFee(FeePercent::parse("2.5").unwrap())
    );

    // The command line: the shop's policy, then a charge that asks for a tip.
    let out = tokio::process::Command::new(crate::helpers::workspace_binary("cashier"))
        .args([
            "--url",
            &app.address,
            "tip-policy",
            "fee:1.50",
            "--max-percent",
            "15",
        ])
        .env("QRGATE_API_KEY", &merchant.manager_key)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tip policy convenience fee 1.50; tips up to 15% of an order\n"
    );
    let out = tokio::process::Command::new(crate::helpers::workspace_binary("cashier"))
        .args(["--url", &app.address, "tip-policy", "fee:1.5.0"])
        .env("QRGATE_API_KEY", &merchant.manager_key)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--tip"),
        "one clear line"
    );
    let out = tokio::process::Command::new(crate::helpers::workspace_binary("cashier"))
        .args(["--url", &app.address, "status", &order.id])
        .env("QRGATE_API_KEY", &merchant.cashier_key)
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  tip 2.00 CNY\n"),
        "{out:?}"
    );
}

#[tokio::test]
async fn across_currencies_the_tip_is_converted_with_the_amount_and_refunded_at_the_payments_rate()
{
    let app = crate::helpers::spawn_app().await;
    let merchant = app
        .create_merchant_with(json!({"currency": "HKD", "country": "HK", "city": "Hong Kong"}))
        .await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer_in(&wallet, "CNY", "500.00").await;
    app.set_fx_rate("HKD", "CNY", "0.92", 50).await;
    let mut body = json!({"amount": "100.00", "currency": "HKD", "merchant_reference": "FX-TIP", "tip_policy": "prompt"});
    let order = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    body = tipped(&order, &customer, "10.00");
    let paid = json_ok(pay(&wallet, &body).await, StatusCode::OK).await;
    // 110.00 HKD × 0.92 × 1.005 = 101.706 → 101.71 CNY, rounded once.
    assert_eq!(
        (paid["charged"].as_str(), paid["charged_currency"].as_str()),
        (Some("101.71"), Some("CNY"))
    );
    assert_eq!(app.merchant_balance(&merchant).await, "109.62");
    let half = refund(&app, &merchant, &order, "50.00", "half").await;
    assert_eq!(half["tip_refunded"], "5.00");
    assert_eq!(
        app.customer_balance(&wallet, &customer).await,
        "449.15",
        "500 − 101.71 + 50.86"
    );
    refund(&app, &merchant, &order, "50.00", "rest").await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "500.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
}
