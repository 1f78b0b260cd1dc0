//! Rewards for points: a listed voucher or gift, redeemed through the wallet (points
//! debited in the ledger, stock held exactly under a herd), a voucher taken at payment
//! like a discount once within its validity, and expiry that returns nothing.

use crate::helpers::{assert_error, json_ok, TestApp, TestMerchant};
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::wallet::WalletClient;

/// A customer of `wallet` with money, and points earned by paying `spend` at `merchant`
/// (one point per unit, the default).
async fn customer_with_points(
    app: &TestApp,
    wallet: &WalletClient,
    merchant: &TestMerchant,
    spend: &str,
) -> Value {
    let reference = format!("c-{}", qrgate_domain::ids::random_base32(8));
    let customer = json_ok(
        wallet
            .post(
                "customers",
                &json!({"customer_reference": reference, "currency": "CNY"}),
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let account = customer["account_id"].as_str().unwrap();
    let top_up = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": account, "amount": "1000.00", "currency": "CNY"});
    json_ok(
        wallet.post("top-ups", &top_up).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let order = app.create_order(&merchant.cashier_key, spend).await;
    json_ok(app.pay(wallet, &order, account).await, StatusCode::OK).await;
    customer
}

async fn points(wallet: &WalletClient, customer: &Value) -> String {
    let account = json_ok(
        wallet
            .get(&format!(
                "accounts/{}",
                customer["points_account_id"].as_str().unwrap()
            ))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    account["balance"].as_str().unwrap().to_owned()
}

async fn list_reward(app: &TestApp, merchant: &TestMerchant, body: Value) -> Value {
    json_ok(
        app.merchant_post(&merchant.manager_key, "/v1/rewards", &body)
            .await,
        StatusCode::CREATED,
    )
    .await
}

fn redemption(customer: &Value, reward: &Value) -> Value {
    json!({
        "wallet_txn_id": qrgate_domain::ids::mint("rtx"),
        "customer_account_id": customer["account_id"],
        "reward_id": reward["id"],
    })
}

async fn redeem(wallet: &WalletClient, body: &Value) -> reqwest::Response {
    wallet.post("rewards/redemptions", body).await.unwrap()
}

/// A customer's redemptions, as their wallet lists them.
async fn redemptions_of(wallet: &WalletClient, customer: &Value) -> Value {
    let path = format!(
        "rewards/redemptions?customer_account_id={}",
        customer["account_id"].as_str().unwrap()
    );
    json_ok(wallet.get(&path).await.unwrap(), StatusCode::OK).await
}

/// A reward as its shop reads it.
async fn reward_read(app: &TestApp, merchant: &TestMerchant, reward: &Value) -> Value {
    let path = format!("/v1/rewards/{}", reward["id"].as_str().unwrap());
    json_ok(
        app.merchant_get(&merchant.cashier_key, &path).await,
        StatusCode::OK,
    )
    .await
}

fn with_voucher(order: &Value, customer: &Value, code: &Value) -> Value {
    let mut body = TestApp::pay_body(order, customer["account_id"].as_str().unwrap());
    body["voucher_code"] = code.clone();
    body
}

#[tokio::test]
async fn points_buy_a_voucher_that_takes_money_off_once_at_its_shop() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let bob = customer_with_points(&app, &wallet, &merchant, "300.00").await;
    assert_eq!(points(&wallet, &bob).await, "300");
    let reward = list_reward(
        &app,
        &merchant,
        json!({"kind": "voucher", "name": "¥10 off", "points_cost": 200, "value": "10.00", "valid_days": 30, "stock": 5}),
    )
    .await;
    assert_eq!(reward["listed_by"], "merchant");
    assert_eq!(
        reward["voucher"],
        json!({"merchant_id": merchant.id, "value": "10.00", "currency": "CNY", "valid_days": 30})
    );
    assert_eq!(
        (reward["stock"].as_i64(), reward["stock_left"].as_i64()),
        (Some(5), Some(5))
    );

    let catalogue = json_ok(wallet.get("rewards").await.unwrap(), StatusCode::OK).await;
    assert_eq!(catalogue["items"][0]["id"], reward["id"]);
    assert_eq!(
        catalogue["items"][0]["voucher"]["merchant_name"],
        "Lucky Noodle Bar"
    );

    // Redeemed once per wallet_txn_id: the same request again is the same redemption.
    let body = redemption(&bob, &reward);
    let voucher = json_ok(redeem(&wallet, &body).await, StatusCode::CREATED).await;
    let again = json_ok(redeem(&wallet, &body).await, StatusCode::CREATED).await;
    assert_eq!(again, voucher);
    assert_eq!(
        (voucher["points"].as_str(), voucher["status"].as_str()),
        (Some("200"), Some("issued"))
    );
    assert_eq!(voucher["value"], "10.00");
    let code = voucher["voucher_code"].clone();
    assert_eq!(code.as_str().unwrap().len(), 19);
    assert_eq!(points(&wallet, &bob).await, "100");
    // Too few points left: refused, stored, nothing moves.
    let short = redemption(&bob, &reward);
    assert_error(
        redeem(&wallet, &short).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;
    assert_error(
        redeem(&wallet, &short).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "insufficient_funds",
    )
    .await;
    assert_eq!(points(&wallet, &bob).await, "100");

    // The voucher takes 10.00 off a payment at its shop; the shop funds it.
    let alice = customer_with_points(&app, &wallet, &merchant, "1.00").await;
    let before = app.merchant_balance(&merchant).await;
    let order = app.create_order(&merchant.cashier_key, "50.00").await;
    let paid = json_ok(
        wallet
            .post("payments", &with_voucher(&order, &bob, &code))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["voucher"].as_str(), paid["discount"].as_str()),
        (Some("10.00"), Some("0.00"))
    );
    assert_eq!(paid["charged"], "40.00");
    assert_eq!(
        paid["fee"], "0.15",
        "the fee is on what the shop is credited"
    );
    let credited: rust_decimal::Decimal = app
        .merchant_balance(&merchant)
        .await
        .parse::<rust_decimal::Decimal>()
        .unwrap()
        - before.parse::<rust_decimal::Decimal>().unwrap();
    assert_eq!(credited.to_string(), "39.85");
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["discount"],
        "10.00"
    );

    // Once: a second payment with it is refused and moves nothing; another customer's
    // wallet cannot use it at all.
    let second = app.create_order(&merchant.cashier_key, "20.00").await;
    assert_error(
        wallet
            .post("payments", &with_voucher(&second, &bob, &code))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_used",
    )
    .await;
    assert_error(
        wallet
            .post("payments", &with_voucher(&second, &alice, &code))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_invalid",
    )
    .await;
    assert_eq!(
        app.order(&merchant.cashier_key, second["id"].as_str().unwrap())
            .await["status"],
        "pending"
    );

    let listed = redemptions_of(&wallet, &bob).await;
    assert_eq!(listed["items"][0]["status"], "used");
    assert_eq!(listed["items"][0]["used_payment_id"], paid["payment_id"]);
    let read = reward_read(&app, &merchant, &reward).await;
    assert_eq!(
        (read["redeemed_count"].as_i64(), read["used_count"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(read["stock_left"], 4);

    // A refund returns what the customer paid; the voucher stays used. The day's report
    // counts the voucher among the shop's discounts and still reconciles.
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap()),
            &json!({"amount": "50.00", "refund_reference": "all"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.merchant_balance(&merchant).await, before);
    let report = app
        .settlement_report_today(&merchant.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(report["discounts_amount"], "10.00");
    assert_eq!(report["refunded_discounts_amount"], "10.00");
}

#[tokio::test]
async fn a_herd_redeeming_more_than_the_stock_gets_exactly_the_stock() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let mut customers = Vec::new();
    for _ in 0..10 {
        customers.push(customer_with_points(&app, &wallet, &merchant, "20.00").await);
    }
    let gift = list_reward(
        &app,
        &merchant,
        json!({"kind": "gift", "name": "Tote bag", "points_cost": 15, "stock": 3}),
    )
    .await;
    let sends = customers.iter().map(|c| {
        let body = redemption(c, &gift);
        let wallet = &wallet;
        async move { redeem(wallet, &body).await.status() }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        7
    );
    let mut spent = 0;
    for c in &customers {
        spent += 20 - points(&wallet, c).await.parse::<i64>().unwrap();
    }
    assert_eq!(spent, 3 * 15, "points taken only for the three redeemed");
    let read = reward_read(&app, &merchant, &gift).await;
    assert_eq!(
        (read["stock_left"].as_i64(), read["redeemed_count"].as_i64()),
        (Some(0), Some(3))
    );
    let catalogue = json_ok(wallet.get("rewards").await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        catalogue["items"],
        json!([]),
        "an exhausted reward leaves the catalogue"
    );
    let mut still_rich = Vec::new();
    for c in &customers {
        if points(&wallet, c).await == "20" {
            still_rich.push(c);
        }
    }
    assert_error(
        redeem(&wallet, &redemption(still_rich[0], &gift)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reward_out_of_stock",
    )
    .await;
}

#[tokio::test]
async fn an_expired_voucher_is_refused_returns_nothing_and_is_reported() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let bob = customer_with_points(&app, &wallet, &merchant, "100.00").await;
    let reward = list_reward(
        &app,
        &merchant,
        json!({"kind": "voucher", "name": "5 off", "points_cost": 50, "value": "5.00", "valid_days": 1}),
    )
    .await;
    let voucher = json_ok(
        redeem(&wallet, &redemption(&bob, &reward)).await,
        StatusCode::CREATED,
    )
    .await;
    // A day later (the clock moved by hand): refused at payment, expired by the sweeper.
    app.db()
        .await
        .execute(
            "UPDATE reward_redemptions SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let order = app.create_order(&merchant.cashier_key, "30.00").await;
    assert_error(
        wallet
            .post(
                "payments",
                &with_voucher(&order, &bob, &voucher["voucher_code"]),
            )
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "voucher_expired",
    )
    .await;
    let swept: i32 = app
        .db()
        .await
        .query_one("SELECT expire_due_vouchers(100)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(swept, 1);
    let read = reward_read(&app, &merchant, &reward).await;
    assert_eq!(
        (read["expired_count"].as_i64(), read["used_count"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        points(&wallet, &bob).await,
        "50",
        "expiry returns no points"
    );
    let listed = redemptions_of(&wallet, &bob).await;
    assert_eq!(listed["items"][0]["status"], "expired");
}

#[tokio::test]
async fn a_platform_voucher_is_the_platforms_to_fund_and_bad_rewards_change_nothing() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let bob = customer_with_points(&app, &wallet, &merchant, "100.00").await;
    let reward = json_ok(
        app.admin_post(
            "/v1/admin/rewards",
            &json!({"kind": "voucher", "name": "Welcome", "points_cost": 10, "value": "5.00", "merchant_id": merchant.id}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (reward["listed_by"].as_str(), reward["merchant_id"].as_str()),
        (Some("platform"), None)
    );
    let voucher = json_ok(
        redeem(&wallet, &redemption(&bob, &reward)).await,
        StatusCode::CREATED,
    )
    .await;
    let before: rust_decimal::Decimal = app.merchant_balance(&merchant).await.parse().unwrap();
    let order = app.create_order(&merchant.cashier_key, "20.00").await;
    let paid = json_ok(
        wallet
            .post(
                "payments",
                &with_voucher(&order, &bob, &voucher["voucher_code"]),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (paid["charged"].as_str(), paid["fee"].as_str()),
        (Some("15.00"), Some("0.08"))
    );
    let after: rust_decimal::Decimal = app.merchant_balance(&merchant).await.parse().unwrap();
    assert_eq!(
        (after - before).to_string(),
        "19.92",
        "the shop is credited the whole amount less its fee"
    );

    // Ended: no more redemptions.
    json_ok(
        app.admin_post(
            &format!("/v1/admin/rewards/{}/end", reward["id"].as_str().unwrap()),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_error(
        redeem(&wallet, &redemption(&bob, &reward)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reward_unavailable",
    )
    .await;
    let unknown = json!({"wallet_txn_id": "rtx-unknown", "customer_account_id": bob["account_id"], "reward_id": "rwd_nosuchreward"});
    assert_error(
        redeem(&wallet, &unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let count = app.count("SELECT count(*) FROM rewards").await;
    for bad in [
        json!({"kind": "voucher", "name": "x", "points_cost": 10}),
        json!({"kind": "gift", "name": "x", "points_cost": 10, "value": "1.00"}),
        json!({"kind": "gift", "name": "x", "points_cost": 0}),
        json!({"kind": "gift", "name": "x", "points_cost": 10, "stock": 0}),
        json!({"kind": "gift", "name": "", "points_cost": 10}),
        json!({"kind": "gift", "name": "a\u{202e}b", "points_cost": 10}),
        json!({"kind": "voucher", "name": "x", "points_cost": 10, "value": "1.001"}),
        json!({"kind": "voucher", "name": "x", "points_cost": 10, "value": "1.00", "valid_days": 0}),
        json!({"kind": "coupon", "name": "x", "points_cost": 10}),
    ] {
        assert_error(
            app.merchant_post(&merchant.manager_key, "/v1/rewards", &bad)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_error(
        app.merchant_post(
            &merchant.cashier_key,
            "/v1/rewards",
            &json!({"kind": "gift", "name": "x", "points_cost": 1}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.admin_post(
            "/v1/admin/rewards",
            &json!({"kind": "voucher", "name": "x", "points_cost": 1, "value": "1.00"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, count);
    // Another shop's reward is not there for this one.
    let other = app.create_merchant().await;
    let theirs = list_reward(
        &app,
        &other,
        json!({"kind": "gift", "name": "Pen", "points_cost": 5}),
    )
    .await;
    assert_error(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/rewards/{}", theirs["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_shop_lists_and_ends_its_rewards_through_the_sdk() {
    use merchant_sdk::{Client, NewReward};
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let manager = Client::builder(&app.address, &merchant.manager_key)
        .build()
        .unwrap();
    let voucher = manager
        .create_reward(&NewReward::Voucher {
            name: "¥5 off".into(),
            points_cost: 100,
            value: rust_decimal::Decimal::new(500, 2),
            valid_days: Some(7),
            stock: Some(10),
        })
        .await
        .unwrap();
    assert_eq!(
        (
            voucher.kind.as_str(),
            voucher.status.as_str(),
            voucher.stock_left
        ),
        ("voucher", "active", Some(10))
    );
    manager
        .create_reward(&NewReward::Gift {
            name: "Sticker".into(),
            points_cost: 5,
            stock: None,
        })
        .await
        .unwrap();
    let listed = manager.rewards().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].name, "Sticker");
    let ended = manager.end_reward(&voucher.id).await.unwrap();
    assert_eq!(ended.status, "ended");
    let cashier = Client::builder(&app.address, &merchant.cashier_key)
        .build()
        .unwrap();
    let refused = cashier
        .create_reward(&NewReward::Gift {
            name: "x".into(),
            points_cost: 1,
            stock: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), Some(&merchant_sdk::ErrorKind::Forbidden));
}

#[tokio::test]
async fn one_voucher_sent_with_a_herd_of_payments_comes_off_once() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let bob = customer_with_points(&app, &wallet, &merchant, "100.00").await;
    let reward = list_reward(
        &app,
        &merchant,
        json!({"kind": "voucher", "name": "3 off", "points_cost": 10, "value": "3.00"}),
    )
    .await;
    let voucher = json_ok(
        redeem(&wallet, &redemption(&bob, &reward)).await,
        StatusCode::CREATED,
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(app.create_order(&merchant.cashier_key, "10.00").await);
    }
    let sends = orders.iter().map(|order| {
        let body = with_voucher(order, &bob, &voucher["voucher_code"]);
        let wallet = &wallet;
        async move {
            let response = wallet.post("payments", &body).await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    let taken: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(taken.len(), 1, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::OK)
        .all(
            |(s, b)| *s == StatusCode::UNPROCESSABLE_ENTITY && b["error"]["code"] == "voucher_used"
        ));
    assert_eq!(taken[0].1["voucher"], "3.00");
    assert_eq!(
        app.count("SELECT count(*) FROM payments WHERE voucher_minor > 0")
            .await,
        1
    );
}

#[tokio::test]
async fn redemptions_and_payments_spending_one_customers_points_at_once_never_deadlock_nor_overspend(
) {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let bob = customer_with_points(&app, &wallet, &merchant, "100.00").await; // 100 points
    let gift = list_reward(
        &app,
        &merchant,
        json!({"kind": "gift", "name": "Pin", "points_cost": 15, "stock": 4}),
    )
    .await;
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(app.create_order(&merchant.cashier_key, "10.00").await);
    }
    // Five redemptions of 15 and five payments redeeming 20 each: 175 asked of 100 (less
    // what the payments earn meanwhile), a stock of 4.
    let redeems = (0..5).map(|_| {
        let body = redemption(&bob, &gift);
        let wallet = &wallet;
        async move { redeem(wallet, &body).await.status() }
    });
    let pays = orders.iter().map(|order| {
        let mut body = TestApp::pay_body(order, bob["account_id"].as_str().unwrap());
        body["use_points"] = json!(20);
        let wallet = &wallet;
        async move { wallet.post("payments", &body).await.unwrap().status() }
    });
    let (redeemed, paid) = tokio::join!(
        futures_util::future::join_all(redeems),
        futures_util::future::join_all(pays)
    );
    for status in redeemed.iter().chain(&paid) {
        assert!(
            [
                StatusCode::OK,
                StatusCode::CREATED,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(status),
            "no deadlock or failure reaches a caller: {redeemed:?} {paid:?}"
        );
    }
    let balance: i64 = points(&wallet, &bob).await.parse().unwrap();
    assert!(balance >= 0);
    let spent_on_rewards = 15
        * redeemed
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count() as i64;
    assert!(spent_on_rewards <= 60, "at most the stock of 4");
    let ledger: i64 = app
        .db()
        .await
        .query_one(
            "SELECT coalesce(sum(amount_minor), 0)::bigint FROM postings WHERE account_id = $1",
            &[&bob["points_account_id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ledger, balance, "the balance is its postings");
}

#[tokio::test]
async fn a_herd_listing_rewards_stops_at_the_shops_cap() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let sends = (0..110).map(|i| {
        let body = json!({"kind": "gift", "name": format!("Gift {i}"), "points_cost": 1});
        let (app, key) = (&app, &merchant.manager_key);
        async move { app.merchant_post(key, "/v1/rewards", &body).await.status() }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        100
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
            .count(),
        10
    );
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, 100);
    // Ending one makes room for one.
    let first = json_ok(
        app.merchant_get(&merchant.cashier_key, "/v1/rewards?limit=1")
            .await,
        StatusCode::OK,
    )
    .await;
    let id = first["items"][0]["id"].as_str().unwrap().to_owned();
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/rewards/{id}/end"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    list_reward(
        &app,
        &merchant,
        json!({"kind": "gift", "name": "One more", "points_cost": 1}),
    )
    .await;
    assert_error(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/rewards",
            &json!({"kind": "gift", "name": "Too many", "points_cost": 1}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "limit_exceeded",
    )
    .await;
}

/// `POST /v1/rewards` with a manager key and an Idempotency-Key.
fn keyed_reward(
    app: &TestApp,
    manager_key: &str,
    key: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    app.http
        .post(app.url("/v1/rewards"))
        .bearer_auth(manager_key)
        .header("Idempotency-Key", key)
        .json(body)
}

/// The SDK sends every POST with one Idempotency-Key across its retries: a shop's reward
/// sent again under the key (a retry after a lost answer) is listed once and answered
/// alike; the key with another reward is a conflict, and nothing more is listed.
#[tokio::test]
async fn a_reward_sent_again_under_its_idempotency_key_is_listed_once() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let send = |body: Value| keyed_reward(&app, &merchant.manager_key, "reward-1", &body).send();
    let body = json!({"kind": "gift", "name": "Tote bag", "points_cost": 300, "stock": 5});
    let first = json_ok(send(body.clone()).await.unwrap(), StatusCode::CREATED).await;
    let again = json_ok(send(body).await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(again, first);
    let other = json!({"kind": "gift", "name": "Mug", "points_cost": 300});
    assert_error(
        send(other).await.unwrap(),
        StatusCode::CONFLICT,
        "idempotency_conflict",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM rewards").await,
        1,
        "one reward listed"
    );
}

/// Outsider checks of the key on `POST /v1/rewards`: eight retries racing under one key
/// list one reward and all answer it; a herd under distinct keys still stops at the
/// shop's cap (the key's lock and the cap's lock taken in one order: nothing deadlocks);
/// a malformed key is refused before anything is listed.
#[tokio::test]
async fn reward_keys_under_herds_and_malformed_keys() {
    let app = crate::helpers::spawn_app().await;
    let merchant = app.create_merchant().await;
    let post =
        |key: String, body: Value| keyed_reward(&app, &merchant.manager_key, &key, &body).send();
    for key in [" ", "k ey", "é", &"k".repeat(256)] {
        let body = json!({"kind": "gift", "name": "Bad key", "points_cost": 1});
        assert_error(
            post(key.to_owned(), body).await.unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, 0);

    let body = json!({"kind": "gift", "name": "Once", "points_cost": 5});
    let racing = (0..8).map(|_| post("once".into(), body.clone()));
    let mut ids = std::collections::HashSet::new();
    for response in futures_util::future::join_all(racing).await {
        let reward = json_ok(response.unwrap(), StatusCode::CREATED).await;
        ids.insert(reward["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, 1);

    let herd = (0..110).map(|i| {
        post(
            format!("herd-{i}"),
            json!({"kind": "gift", "name": format!("Gift {i}"), "points_cost": 1}),
        )
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(herd)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(
        created, 99,
        "the cap of 100 counts the first reward: {statuses:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, 100);
    // A refused one was a definitive answer: stored, and given again even once there
    // is room (its retry lists nothing).
    let first = ids.iter().next().unwrap();
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/rewards/{first}/end"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let refused = statuses
        .iter()
        .position(|s| *s == StatusCode::UNPROCESSABLE_ENTITY)
        .expect("some were refused");
    let again = post(
        format!("herd-{refused}"),
        json!({"kind": "gift", "name": format!("Gift {refused}"), "points_cost": 1}),
    )
    .await
    .unwrap();
    assert_error(again, StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded").await;
    assert_eq!(app.count("SELECT count(*) FROM rewards").await, 100);
}
