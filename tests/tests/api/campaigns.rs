//! Managing campaigns once they run: list and read, pause and resume, end early, move
//! the window or the budget (never below what was spent), and the merchant's view.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn ten_percent_off(app: &TestApp, budget: &str) -> Value {
    app.create_campaign(&json!({
        "kind": "percent_off", "percent_off": "10", "currency": "CNY",
        "budget": budget, "funded_by": "platform",
    }))
    .await
}

async fn discount_of_a_sale(
    app: &TestApp,
    key: &str,
    wallet: &simulator::wallet::WalletClient,
    customer: &str,
) -> String {
    let order = app.create_order(key, "10.00").await;
    let paid = json_ok(app.pay(wallet, &order, customer).await, StatusCode::OK).await;
    paid["discount"].as_str().unwrap().to_owned()
}

async fn post_empty(app: &TestApp, path: &str) -> reqwest::Response {
    app.admin_post(path, &json!({})).await
}

#[tokio::test]
async fn a_paused_campaign_discounts_nothing_until_resumed_and_an_ended_one_never_again() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let campaign = ten_percent_off(&app, "50.00").await;
    let id = campaign["id"].as_str().unwrap();
    assert_eq!(campaign["status"], "active");
    assert_eq!(campaign["budget"], "50.00");
    assert_eq!(campaign["spent"], "0.00");

    let key = &shop.cashier_key;
    assert_eq!(
        discount_of_a_sale(&app, key, &wallet, &customer).await,
        "1.00"
    );
    let paused = json_ok(
        post_empty(&app, &format!("/v1/admin/campaigns/{id}/pause")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["status"], "paused");
    assert!(paused["paused_at"].is_string());
    assert_eq!(paused["spent"], "1.00");
    assert_eq!(
        discount_of_a_sale(&app, key, &wallet, &customer).await,
        "0.00"
    );
    // Pausing again changes nothing.
    let again = json_ok(
        post_empty(&app, &format!("/v1/admin/campaigns/{id}/pause")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["paused_at"], paused["paused_at"]);
    let resumed = json_ok(
        post_empty(&app, &format!("/v1/admin/campaigns/{id}/resume")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(resumed["status"], "active");
    assert_eq!(
        discount_of_a_sale(&app, key, &wallet, &customer).await,
        "1.00"
    );

    let ended = json_ok(
        post_empty(&app, &format!("/v1/admin/campaigns/{id}/end")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["status"], "ended");
    assert_eq!(
        discount_of_a_sale(&app, key, &wallet, &customer).await,
        "0.00"
    );
    for change in ["resume", "pause"] {
        assert_error(
            post_empty(&app, &format!("/v1/admin/campaigns/{id}/{change}")).await,
            StatusCode::CONFLICT,
            "campaign_ended",
        )
        .await;
    }
    assert_error(
        app.admin_patch(
            &format!("/v1/admin/campaigns/{id}"),
            &json!({"budget": "90.00"}),
        )
        .await,
        StatusCode::CONFLICT,
        "campaign_ended",
    )
    .await;
    let read = json_ok(
        app.admin_get(&format!("/v1/admin/campaigns/{id}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(read["spent"], "2.00");
    assert_eq!(read["ended_at"], ended["ended_at"]);
    // Every change is in the audit log.
    let audit = json_ok(
        app.admin_get("/v1/admin/audit?limit=50").await,
        StatusCode::OK,
    )
    .await;
    let paths: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str())
        .filter(|p| p.starts_with("/v1/admin/campaigns/"))
        .collect();
    assert_eq!(paths.len(), 7, "{paths:?}");
}

#[tokio::test]
async fn a_budget_never_goes_below_what_was_spent_even_while_payments_spend_it() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let campaign = ten_percent_off(&app, "5.00").await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(app.funded_customer(&wallet, "100.00").await);
    }
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(app.create_order(&shop.cashier_key, "10.00").await);
    }
    // Eight payments of 1.00 off each race eight cuts of the budget to 3.00.
    let pays = orders
        .iter()
        .zip(&customers)
        .map(|(o, c)| app.pay(&wallet, o, c));
    let path = format!("/v1/admin/campaigns/{id}");
    let cut = json!({"budget": "3.00"});
    let edits = (0..8).map(|_| app.admin_patch(&path, &cut));
    let (paid, edited) = tokio::join!(join_all(pays), join_all(edits));
    let discounts: i64 = {
        let mut sum = 0;
        for p in paid {
            let p = json_ok(p, StatusCode::OK).await;
            sum += (p["discount"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
        }
        sum
    };
    for e in edited {
        assert!(
            matches!(e.status(), StatusCode::OK | StatusCode::BAD_REQUEST),
            "{}",
            e.status()
        );
    }
    let read = json_ok(app.admin_get(&path).await, StatusCode::OK).await;
    let spent = (read["spent"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
    let budget = (read["budget"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
    assert_eq!(spent, discounts);
    assert!(spent <= budget, "spent {spent} of {budget}");
    // Below what was spent: refused, nothing changed.
    let refused = assert_error(
        app.admin_patch(&path, &json!({"budget": "0.50"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("budget"));
    let after = json_ok(app.admin_get(&path).await, StatusCode::OK).await;
    assert_eq!(after["budget"], read["budget"]);
}

#[tokio::test]
async fn the_window_moves_and_the_lists_filter() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let other = app.create_merchant_with(json!({"currency": "HKD"})).await;
    let campaign = ten_percent_off(&app, "50.00").await;
    let id = campaign["id"].as_str().unwrap();
    let path = format!("/v1/admin/campaigns/{id}");
    let later = json_ok(
        app.admin_patch(
            &path,
            &json!({"starts_at": "2099-01-01T00:00:00Z", "ends_at": "2099-02-01T00:00:00Z"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(later["status"], "scheduled");
    assert_eq!(later["starts_at"], "2099-01-01T00:00:00.000000Z");
    for bad in [
        json!({"ends_at": "2098-12-31T00:00:00Z"}),
        json!({"budget": "-1.00"}),
        json!({"budget": "1.001"}),
        json!({"budget": "0"}),
        json!({"extra": true}),
        json!({"starts_at": "not a time"}),
    ] {
        assert_error(
            app.admin_patch(&path, &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let scheduled = json_ok(
        app.admin_get("/v1/admin/campaigns?status=scheduled").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(scheduled["items"].as_array().unwrap().len(), 1);
    let active = json_ok(
        app.admin_get("/v1/admin/campaigns?status=active").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(active["items"].as_array().unwrap().len(), 0);
    assert_error(
        app.admin_get(&format!(
            "/v1/admin/campaigns?merchant_id={}",
            "m".repeat(30)
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_error(
        app.admin_get("/v1/admin/campaigns?status=running").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    // The merchant in the campaign's currency sees it; one in another does not.
    let mine = json_ok(
        app.merchant_get(&shop.cashier_key, "/v1/campaigns").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["items"][0]["id"], campaign["id"]);
    let theirs = json_ok(
        app.merchant_get(&other.cashier_key, "/v1/campaigns").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    assert_error(
        app.admin_get("/v1/admin/campaigns/cmp_nosuchcampaign")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn pausing_and_resuming_while_payments_land_deadlocks_nothing_and_spends_exactly() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let campaign = ten_percent_off(&app, "100.00").await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let mut customers = Vec::new();
    let mut orders = Vec::new();
    for _ in 0..10 {
        customers.push(app.funded_customer(&wallet, "100.00").await);
        orders.push(app.create_order(&shop.cashier_key, "10.00").await);
    }
    let pays = orders
        .iter()
        .zip(&customers)
        .map(|(o, c)| app.pay(&wallet, o, c));
    let toggles: Vec<String> = (0..10)
        .map(|i| {
            let change = if i % 2 == 0 { "pause" } else { "resume" };
            format!("/v1/admin/campaigns/{id}/{change}")
        })
        .collect();
    let changes = toggles.iter().map(|path| post_empty(&app, path));
    let (paid, changed) = tokio::join!(join_all(pays), join_all(changes));
    let mut discounts = 0;
    for p in paid {
        let p = json_ok(p, StatusCode::OK).await;
        discounts += match p["discount"].as_str().unwrap() {
            "1.00" => 100,
            "0.00" => 0,
            other => panic!("a discount of {other}"),
        };
    }
    for c in changed {
        assert_eq!(c.status(), StatusCode::OK);
    }
    let read = json_ok(
        app.admin_get(&format!("/v1/admin/campaigns/{id}")).await,
        StatusCode::OK,
    )
    .await;
    let spent = (read["spent"].as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
    assert_eq!(spent, discounts);
}
