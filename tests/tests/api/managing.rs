//! Reading back what exists: an order's refunds and its refunded total, a merchant's
//! payouts, exchange rates now and before, a wallet's funding limits, and the accounts
//! a merchant may pay out to (and removing one).

use crate::helpers::{assert_error, json_ok, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_order_lists_its_refunds_and_shows_their_total() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let other = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&shop.cashier_key, "30.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(app.order(&shop.cashier_key, id).await["refunded"], "0.00");
    let path = format!("/v1/orders/{id}/refunds");
    for (amount, reference) in [("10.00", "r1"), ("5.50", "r2")] {
        json_ok(
            app.merchant_post(
                &shop.manager_key,
                &path,
                &json!({"amount": amount, "refund_reference": reference}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    // Refused: more than is left. Not a refund, so not listed.
    assert_error(
        app.merchant_post(
            &shop.manager_key,
            &path,
            &json!({"amount": "20.00", "refund_reference": "r3"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_payment",
    )
    .await;

    let listed = json_ok(
        app.merchant_get(&shop.cashier_key, &path).await,
        StatusCode::OK,
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["amount"], "10.00");
    assert_eq!(items[0]["refund_reference"], "r1");
    assert_eq!(items[1]["amount"], "5.50");
    assert_eq!(items[1]["order_status"], "partially_refunded");
    let read = app.order(&shop.cashier_key, id).await;
    assert_eq!(read["refunded"], "15.50");
    assert_eq!(read["status"], "partially_refunded");
    // The refunded total is what the ledger's refund postings gave back to the customer
    // (no discount or exchange here: all of it).
    let from_ledger: i64 = app
        .count(&format!(
            "SELECT coalesce(sum(p.amount_minor), 0)::bigint FROM postings p
             JOIN refunds r ON r.ledger_transaction_id = p.ledger_transaction_id
             WHERE r.order_id = '{id}' AND p.account_id = '{customer}'"
        ))
        .await;
    assert_eq!(from_ledger, 1550);
    assert_error(
        app.merchant_get(&other.cashier_key, &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn payouts_are_listed_and_an_allowed_account_can_be_removed() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let order = app.create_order(&shop.cashier_key, "100.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let owner = app.funded_customer(&wallet, "0").await;
    app.allow_payout_account(&shop.id, &owner).await;
    let accounts_path = format!("/v1/admin/merchants/{}/payout-accounts", shop.id);
    let accounts = json_ok(app.admin_get(&accounts_path).await, StatusCode::OK).await;
    assert_eq!(accounts["items"][0]["account_id"], owner.as_str());

    for (amount, reference) in [("10.00", "p1"), ("20.00", "p2"), ("30.00", "p3")] {
        json_ok(
            app.merchant_post(
                &shop.manager_key,
                "/v1/payouts",
                &json!({"to_account_id": owner, "amount": amount, "currency": "CNY", "payout_reference": reference}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    let first = json_ok(
        app.merchant_get(&shop.manager_key, "/v1/payouts?limit=2")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first["items"][0]["payout_reference"], "p3");
    assert_eq!(first["items"][1]["payout_reference"], "p2");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_ok(
        app.merchant_get(
            &shop.manager_key,
            &format!("/v1/payouts?limit=2&cursor={cursor}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["items"][0]["payout_reference"], "p1");
    assert_eq!(second["next_cursor"], serde_json::Value::Null);
    // A cashier key (scope orders) may not read them.
    assert_error(
        app.merchant_get(&shop.cashier_key, "/v1/payouts").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let removed = json_ok(
        app.admin_delete(&format!("{accounts_path}/{owner}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(removed["removed"], true);
    assert_error(
        app.merchant_post(
            &shop.manager_key,
            "/v1/payouts",
            &json!({"to_account_id": owner, "amount": "1.00", "currency": "CNY", "payout_reference": "p4"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.admin_delete(&format!("{accounts_path}/{owner}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn exchange_rates_and_funding_limits_read_back() {
    let app = spawn_app().await;
    let first = app.set_fx_rate("CNY", "HKD", "1.08", 50).await;
    let second = app.set_fx_rate("CNY", "HKD", "1.09", 40).await;
    app.set_fx_rate("HKD", "CNY", "0.92", 0).await;
    let current = json_ok(app.admin_get("/v1/admin/fx-rates").await, StatusCode::OK).await;
    let items = current["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let cny_hkd = items.iter().find(|r| r["base"] == "CNY").unwrap();
    assert_eq!(cny_hkd, &second);
    let history = json_ok(
        app.admin_get("/v1/admin/fx-rates/CNY/HKD").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history["items"][0], second);
    assert_eq!(history["items"][1], first);
    assert_error(
        app.admin_get("/v1/admin/fx-rates/CNY/XXX").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    let wallet = app.create_wallet().await;
    app.set_funding_limit(&wallet.wallet_id, "HKD", "5000.00")
        .await;
    let limits = json_ok(
        app.admin_get(&format!(
            "/v1/admin/wallets/{}/funding-limits",
            wallet.wallet_id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    let hkd = limits["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["currency"] == "HKD")
        .unwrap();
    assert_eq!(hkd["limit"], "5000.00");
    assert_error(
        app.admin_get("/v1/admin/wallets/wal_nosuchwallet/funding-limits")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
