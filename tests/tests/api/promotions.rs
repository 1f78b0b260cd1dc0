//! Promotions: the best eligible campaign applies, funded by the merchant or the
//! platform; budgets and per-customer limits hold under concurrency.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn campaign(app: &TestApp, fields: Value) -> String {
    let mut body = json!({"currency": "CNY", "budget": "1000.00", "funded_by": "platform"});
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.create_campaign(&body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn promotions_balance_minor(app: &TestApp) -> i64 {
    app.db()
        .await
        .query_one("SELECT coalesce(sum(balance_minor), 0)::bigint FROM account_balances WHERE account_id = 'acc_promotions_cny'", &[])
        .await
        .unwrap()
        .get(0)
}

async fn pay(
    app: &TestApp,
    merchant: &TestMerchant,
    wallet: &simulator::wallet::WalletClient,
    customer: &str,
    amount: &str,
) -> Value {
    let order = app.create_order(&merchant.cashier_key, amount).await;
    json_ok(app.pay(wallet, &order, customer).await, StatusCode::OK).await
}

#[tokio::test]
async fn a_platform_funded_percentage_is_capped_and_paid_by_the_platform() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "200.00").await;
    campaign(
        &app,
        json!({"kind": "percent_off", "percent_off": "10", "max_discount": "5.00"}),
    )
    .await;

    let paid = pay(&app, &merchant, &wallet, &customer, "30.00").await;
    assert_eq!(
        (
            paid["amount"].as_str(),
            paid["discount"].as_str(),
            paid["charged"].as_str()
        ),
        (Some("30.00"), Some("3.00"), Some("27.00"))
    );
    // The merchant gets the full amount less the fee on it (0.114 → 0.11).
    assert_eq!(paid["fee"], "0.11");
    assert_eq!(app.merchant_balance(&merchant).await, "29.89");
    assert_eq!(promotions_balance_minor(&app).await, -300);

    let capped = pay(&app, &merchant, &wallet, &customer, "80.00").await;
    assert_eq!(
        (capped["discount"].as_str(), capped["charged"].as_str()),
        (Some("5.00"), Some("75.00"))
    );
    assert_eq!(app.customer_balance(&wallet, &customer).await, "98.00");
}

#[tokio::test]
async fn a_merchant_funded_amount_off_applies_over_its_minimum() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "200.00").await;
    campaign(&app, json!({"kind": "amount_off_over", "amount_off": "10.00", "min_amount": "50.00", "funded_by": "merchant", "merchant_id": merchant.id})).await;

    let under = pay(&app, &merchant, &wallet, &customer, "40.00").await;
    assert_eq!(under["discount"], "0.00");
    let over = pay(&app, &merchant, &wallet, &customer, "60.00").await;
    assert_eq!(
        (
            over["discount"].as_str(),
            over["charged"].as_str(),
            over["fee"].as_str()
        ),
        (Some("10.00"), Some("50.00"), Some("0.19"))
    );
    // 40.00 − 0.15 (fee) + 50.00 − 0.19: the merchant funds its discount.
    assert_eq!(app.merchant_balance(&merchant).await, "89.66");
    assert_eq!(promotions_balance_minor(&app).await, 0);
    // Another merchant's customers get nothing from it.
    let other = app.create_merchant().await;
    assert_eq!(
        pay(&app, &other, &wallet, &customer, "60.00").await["discount"],
        "0.00"
    );
}

#[tokio::test]
async fn the_biggest_discount_wins_and_ties_go_to_the_earliest() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let five_percent = campaign(&app, json!({"kind": "percent_off", "percent_off": "5"})).await;
    let three_off = campaign(
        &app,
        json!({"kind": "amount_off_over", "amount_off": "3.00", "min_amount": "20.00"}),
    )
    .await;

    pay(&app, &merchant, &wallet, &customer, "100.00").await; // 5.00 beats 3.00
    pay(&app, &merchant, &wallet, &customer, "40.00").await; // 3.00 beats 2.00
    pay(&app, &merchant, &wallet, &customer, "60.00").await; // 3.00 each: the earlier campaign
    let used: Vec<(String, i64)> = app
        .db()
        .await
        .query("SELECT p.campaign_id, p.discount_minor FROM payments p JOIN orders o ON o.id = p.order_id ORDER BY p.paid_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        used,
        [
            (five_percent.clone(), 500),
            (three_off, 300),
            (five_percent, 300)
        ]
    );
}

#[tokio::test]
async fn a_budget_is_never_overspent_under_concurrency() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    campaign(&app, json!({"kind": "amount_off_over", "amount_off": "1.00", "min_amount": "2.00", "budget": "5.00"})).await;
    let mut pairs = Vec::new();
    for _ in 0..20 {
        let customer = app.funded_customer(&wallet, "10.00").await;
        pairs.push((
            app.create_order(&merchant.cashier_key, "10.00").await,
            customer,
        ));
    }
    let paid = join_all(pairs.iter().map(|(o, c)| app.pay(&wallet, o, c))).await;
    let mut discounted = 0;
    for response in paid {
        let body = json_ok(response, StatusCode::OK).await;
        if body["discount"] == "1.00" {
            discounted += 1;
        }
    }
    assert_eq!(discounted, 5);
    assert_eq!(app.count("SELECT spent_minor FROM campaigns").await, 500);
}

#[tokio::test]
async fn a_per_customer_limit_holds_under_concurrency() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    campaign(
        &app,
        json!({"kind": "percent_off", "percent_off": "10", "per_customer_limit": 1}),
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..10 {
        orders.push(app.create_order(&merchant.cashier_key, "5.00").await);
    }
    let paid = join_all(orders.iter().map(|o| app.pay(&wallet, o, &customer))).await;
    let mut discounted = 0;
    for response in paid {
        if json_ok(response, StatusCode::OK).await["discount"] != "0.00" {
            discounted += 1;
        }
    }
    assert_eq!(discounted, 1);
    // Another customer still has their use.
    let other = app.funded_customer(&wallet, "100.00").await;
    assert_eq!(
        pay(&app, &merchant, &wallet, &other, "5.00").await["discount"],
        "0.50"
    );
}

#[tokio::test]
async fn a_quote_shows_the_discount_without_reserving_it() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    campaign(
        &app,
        json!({"kind": "percent_off", "percent_off": "20", "budget": "2.00"}),
    )
    .await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
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
    assert_eq!(
        (quote["discount"].as_str(), quote["charged"].as_str()),
        (Some("2.00"), Some("8.00"))
    );
    assert_eq!(app.count("SELECT spent_minor FROM campaigns").await, 0);
    // Someone else spends the budget first: the payment re-checks, and max_charged guards.
    let other = app.funded_customer(&wallet, "100.00").await;
    pay(&app, &merchant, &wallet, &other, "10.00").await;
    let mut body = TestApp::pay_body(&order, &customer);
    body["max_charged"] = quote["charged"].clone();
    assert_error(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "charge_exceeds_max",
    )
    .await;
}

#[tokio::test]
async fn refunds_return_a_platform_discount_to_the_promotions_account() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    campaign(&app, json!({"kind": "percent_off", "percent_off": "10"})).await;
    let order = app.create_order(&merchant.cashier_key, "30.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    // Half: the customer gets 13.50 back, the platform 1.50; the merchant returns 15.00 − 0.06.
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "15.00", "refund_reference": "a"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "86.50");
    assert_eq!(promotions_balance_minor(&app).await, -150);
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "15.00", "refund_reference": "b"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "100.00");
    assert_eq!(promotions_balance_minor(&app).await, 0);
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    assert_eq!(app.fee_balance_minor("CNY").await, 0);
}

#[tokio::test]
async fn campaigns_are_checked_when_created() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let base = json!({"currency": "CNY", "budget": "100.00", "funded_by": "platform"});
    for fields in [
        json!({"kind": "percent_off", "percent_off": "10", "funded_by": "merchant"}),
        json!({"kind": "amount_off_over", "amount_off": "10.00", "min_amount": "10.00"}),
        json!({"kind": "amount_off_over", "amount_off": "11.00", "min_amount": "10.00"}),
        json!({"kind": "percent_off", "percent_off": "0"}),
        json!({"kind": "percent_off", "percent_off": "100"}),
        json!({"kind": "percent_off", "percent_off": "150"}),
        json!({"kind": "percent_off", "percent_off": "10", "amount_off": "1.00"}),
        json!({"kind": "bogo"}),
        json!({"kind": "percent_off", "percent_off": "10", "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}),
    ] {
        let mut body = base.clone();
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        assert_error(
            app.admin_post("/v1/admin/campaigns", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let foreign = json!({"kind": "percent_off", "percent_off": "10", "currency": "HKD", "budget": "1.00", "funded_by": "merchant", "merchant_id": merchant.id});
    assert_error(
        app.admin_post("/v1/admin/campaigns", &foreign).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM campaigns").await, 0);
}

#[tokio::test]
async fn a_campaign_outside_its_window_does_not_apply() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    campaign(
        &app,
        json!({"kind": "percent_off", "percent_off": "10", "starts_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    campaign(
        &app,
        json!({"kind": "percent_off", "percent_off": "20", "ends_at": "2000-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        pay(&app, &merchant, &wallet, &customer, "10.00").await["discount"],
        "0.00"
    );
}
