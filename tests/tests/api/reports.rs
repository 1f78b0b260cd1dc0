//! The daily settlement report reconciles to the merchant's ledger lines to the minor
//! unit, whatever legs its payments and refunds had (issue 11: a merchant-funded
//! discount broke it).

use crate::helpers::{json_ok, spawn_app, TestApp, TestMerchant};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// Pays a new order of `amount` from `customer` with `extra` fields in the payment.
async fn pay(
    app: &TestApp,
    merchant: &TestMerchant,
    wallet: &WalletClient,
    customer: &str,
    amount: &str,
    extra: Value,
) -> Value {
    let order = app.create_order(&merchant.cashier_key, amount).await;
    let mut body = TestApp::pay_body(&order, customer);
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    order
}

async fn refund(
    app: &TestApp,
    merchant: &TestMerchant,
    order: &Value,
    amount: &str,
    reference: &str,
) {
    let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    let body = json!({"amount": amount, "refund_reference": reference});
    json_ok(
        app.merchant_post(&merchant.manager_key, &path, &body).await,
        StatusCode::CREATED,
    )
    .await;
}

fn dec(report: &Value, field: &str) -> Decimal {
    report[field].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_report_reconciles_with_discounts_points_fx_partial_refunds_and_payouts() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let merchant = app
        .create_merchant_with(json!({"time_zone": "Asia/Shanghai"}))
        .await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    // Merchant-funded 10.00 off from 50.00; platform-funded 5% (at most 1.00) on anything.
    app.create_campaign(&json!({"currency": "CNY", "budget": "1000.00", "funded_by": "merchant", "merchant_id": merchant.id,
                          "kind": "amount_off_over", "amount_off": "10.00", "min_amount": "50.00"})).await;
    app.create_campaign(
        &json!({"currency": "CNY", "budget": "1000.00", "funded_by": "platform",
                                "kind": "percent_off", "percent_off": "5", "max_discount": "1.00"}),
    )
    .await;
    // An HKD customer pays CNY orders at a rate plus spread.
    let hkd = app.funded_customer_in(&wallet, "HKD", "500.00").await;
    app.set_fx_rate("CNY", "HKD", "1.0873", 50).await;

    let merchant_funded = pay(&app, &merchant, &wallet, &customer, "60.01", json!({})).await;
    let platform_funded = pay(&app, &merchant, &wallet, &customer, "30.03", json!({})).await;
    let with_points = pay(
        &app,
        &merchant,
        &wallet,
        &customer,
        "17.77",
        json!({"use_points": 33}),
    )
    .await;
    let cross_border = pay(&app, &merchant, &wallet, &hkd, "70.07", json!({})).await;
    refund(&app, &merchant, &merchant_funded, "25.01", "r1").await;
    refund(&app, &merchant, &merchant_funded, "0.03", "r2").await;
    refund(&app, &merchant, &platform_funded, "10.01", "r3").await;
    refund(&app, &merchant, &with_points, "7.77", "r4").await;
    refund(&app, &merchant, &cross_border, "33.33", "r5").await;
    let owner = app.funded_customer(&wallet, "0").await;
    app.allow_payout_account(&merchant.id, &owner).await;
    let payout = json!({"to_account_id": owner, "amount": "12.34", "currency": "CNY", "payout_reference": "po"});
    json_ok(
        app.merchant_post(&merchant.manager_key, "/v1/payouts", &payout)
            .await,
        StatusCode::CREATED,
    )
    .await;

    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;

    assert_eq!(report["payments_count"], 4);
    assert_eq!(report["payments_amount"], "177.88");
    // The merchant's 10.00 off applies to 60.01 and to 70.07 (it beats the platform's 1.00).
    assert_eq!(report["discounts_amount"], "20.00", "{report}");
    assert_eq!(report["refunds_count"], 5);
    assert_eq!(report["refunds_amount"], "76.15");
    // The merchant returns its share of what it was credited, cumulatively rounded:
    // r1 50.01 × 25.01 / 60.01 = 20.84 (4.17 of discount), r2 20.87 − 20.84 = 0.03 (none),
    // r5 60.07 × 33.33 / 70.07 = 28.57 (4.76).
    assert_eq!(report["refunded_discounts_amount"], "8.93", "{report}");
    assert_eq!(report["payouts_amount"], "12.34");
    let explained = dec(&report, "payments_amount")
        - dec(&report, "discounts_amount")
        - dec(&report, "fees")
        - dec(&report, "refunds_amount")
        + dec(&report, "refunded_discounts_amount")
        - dec(&report, "payouts_amount");
    assert_eq!(explained, dec(&report, "net"), "{report}");
    assert_eq!(
        dec(&report, "opening_balance") + dec(&report, "net"),
        dec(&report, "closing_balance")
    );
    assert_eq!(
        report["closing_balance"],
        app.merchant_balance(&merchant).await
    );
    // What each refund took from the merchant is its ledger line, in the order's currency.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM refunds r JOIN postings p ON p.ledger_transaction_id = r.ledger_transaction_id
             JOIN merchants m ON m.account_id = p.account_id
             WHERE r.merchant_debited_minor <> -p.amount_minor"
        )
        .await,
        0
    );
}

/// The reports read only the orders that could have been paid in their window: those
/// made at most an order's longest life (24 hours) before it. An order paid near the
/// end of that life, made the day before, still counts in both — and nothing else does.
#[tokio::test]
async fn an_order_paid_at_the_end_of_its_longest_life_counts_in_both_reports() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let body = json!({"amount": "12.34", "currency": "CNY", "merchant_reference": "late",
                      "expires_in_seconds": 86_400});
    let order = json_ok(
        app.create_order_raw(&merchant.cashier_key, &body).await,
        StatusCode::CREATED,
    )
    .await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    // As if it had been shown for almost its whole life before the customer paid.
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = created_at - interval '86000 seconds' WHERE id = $1",
            &[&order["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(report["payments_count"], 1, "{report}");
    assert_eq!(report["payments_amount"], "12.34", "{report}");
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let shift = json_ok(
        app.merchant_get(
            &merchant.manager_key,
            &format!("/v1/reports/shift?since={}", since.replace('+', "%2B")),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(shift["totals"]["orders_paid"], 1, "{shift}");
    assert_eq!(shift["totals"]["paid_amount"], "12.34", "{shift}");
}
