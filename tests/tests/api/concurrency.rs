//! Races: many wallets paying one order, one customer paying many orders at once.

use crate::helpers::{json_ok, spawn_app, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use serde_json::Value;

#[tokio::test]
async fn fifty_concurrent_payments_of_one_order_settle_exactly_once() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let mut customers = Vec::new();
    for _ in 0..50 {
        customers.push(app.funded_customer(&wallet, "100.00").await);
    }
    let order = app.create_order(&merchant.cashier_key, "10.00").await;

    let responses = join_all(customers.iter().map(|c| app.pay(&wallet, &order, c))).await;
    let mut succeeded = 0;
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::OK => succeeded += 1,
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "already_paid", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(succeeded, 1);
    assert_eq!(app.merchant_balance(&merchant).await, "9.96");
    // One payment's postings (customer, merchant, fee, and the points it earned); the rest are top-ups.
    let count = |kind: &str| {
        format!("SELECT count(*) FROM postings p JOIN ledger_transactions t ON t.id = p.ledger_transaction_id WHERE t.kind = '{kind}'")
    };
    assert_eq!(app.count(&count("payment")).await, 5);
    assert_eq!(app.count(&count("points")).await, 0);
    assert_eq!(app.count(&count("top_up")).await, 50 * 2);
}

#[tokio::test]
async fn fifty_concurrent_payments_never_take_a_customer_below_zero() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let mut orders = Vec::new();
    for _ in 0..50 {
        orders.push(app.create_order(&merchant.cashier_key, "7.00").await);
    }

    let responses = join_all(orders.iter().map(|o| app.pay(&wallet, o, &customer))).await;
    let mut succeeded = 0;
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status {
            StatusCode::OK => succeeded += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "insufficient_funds", "{body}")
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // 100.00 / 7.00 → 14 payments, 2.00 left.
    assert_eq!(succeeded, 14);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "2.00");
}

#[tokio::test]
async fn concurrent_retries_of_one_payment_apply_it_once() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let body = TestApp::pay_body(&order, &customer);

    let responses = join_all((0..20).map(|_| wallet.post("payments", &body))).await;
    let mut payment_ids = std::collections::HashSet::new();
    for response in responses {
        let paid = json_ok(response.unwrap(), StatusCode::OK).await;
        payment_ids.insert(paid["payment_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(payment_ids.len(), 1);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "90.00");
}

#[tokio::test]
async fn many_payments_to_one_hot_merchant_all_settle() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(serde_json::json!({"fee_rate_bps": 0}))
        .await;
    let wallet = app.create_wallet().await;
    let mut pairs = Vec::new();
    for _ in 0..40 {
        let customer = app.funded_customer(&wallet, "5.00").await;
        pairs.push((
            app.create_order(&merchant.cashier_key, "5.00").await,
            customer,
        ));
    }
    let responses = join_all(pairs.iter().map(|(o, c)| app.pay(&wallet, o, c))).await;
    for response in responses {
        json_ok(response, StatusCode::OK).await;
    }
    assert_eq!(app.merchant_balance(&merchant).await, "200.00");
    // Credits spread over the merchant's balance shards instead of one hot row.
    let shards_used = app
        .count(&format!(
            "SELECT count(*) FROM account_balances WHERE account_id = '{}' AND balance_minor > 0",
            merchant.account_id
        ))
        .await;
    assert!(shards_used > 1, "{shards_used}");
}

/// Issue 11: the referral bonus locked the referrer's points after the fee and merchant
/// shards, and campaigns were locked in an order that depended on the amount. A herd of
/// referred customers, their referrer, two overlapping campaigns and refunds, across two
/// replicas with no retries, must all succeed: a deadlock would answer 503.
#[tokio::test]
async fn referrals_campaigns_and_refunds_together_on_two_replicas_never_deadlock() {
    let settings = [
        ("QRGATE_DB_RETRY_MAX", "0"),
        ("QRGATE_REFERRAL_REWARDS_PER_REFERRER_MAX", "100"),
        ("QRGATE_REFERRAL_MIN_PAYMENT_UNITS", "1"),
    ];
    let app = crate::helpers::spawn_app_with(&settings).await;
    let replica = app.spawn_replica(&settings).await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let secret = app.wallet_secret(&wallet.wallet_id).await;
    let wallet_there =
        simulator::wallet::WalletClient::new(&replica, &wallet.wallet_id, secret, app.http.clone());
    app.set_funding_limit(&wallet.wallet_id, "CNY", "100000")
        .await;
    for campaign in [
        json!({"currency": "CNY", "budget": "1000.00", "funded_by": "platform", "kind": "percent_off", "percent_off": "10", "max_discount": "5.00"}),
        json!({"currency": "CNY", "budget": "1000.00", "funded_by": "merchant", "merchant_id": merchant.id, "kind": "amount_off_over", "amount_off": "3.00", "min_amount": "20.00"}),
    ] {
        app.create_campaign(&campaign).await;
    }
    let open = |reference: String, code: Option<String>| {
        let body =
            json!({"customer_reference": reference, "currency": "CNY", "referral_code": code});
        let wallet = &wallet;
        async move {
            let opened = json_ok(
                wallet.post("customers", &body).await.unwrap(),
                StatusCode::CREATED,
            )
            .await;
            let account = opened["account_id"].as_str().unwrap().to_owned();
            let top_up = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": account, "amount": "500.00", "currency": "CNY"});
            json_ok(
                wallet.post("top-ups", &top_up).await.unwrap(),
                StatusCode::OK,
            )
            .await;
            (
                account,
                opened["referral_code"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (referrer, code) = open("referrer".into(), None).await;
    let mut referees = Vec::new();
    for i in 0..12 {
        referees.push(open(format!("referee-{i}"), Some(code.clone())).await.0);
    }
    // Earlier payments of the referrer, refunded in the herd.
    let mut paid = Vec::new();
    for _ in 0..8 {
        let order = app.create_order(&merchant.cashier_key, "25.00").await;
        json_ok(app.pay(&wallet, &order, &referrer).await, StatusCode::OK).await;
        paid.push(order);
    }

    let mut payers: Vec<&str> = referees.iter().map(String::as_str).collect();
    payers.extend([referrer.as_str(); 6]);
    let mut orders = Vec::new();
    for i in 0..payers.len() {
        let amount = format!("{}.{:02}", 15 + i * 3, i);
        orders.push(app.create_order(&merchant.cashier_key, &amount).await);
    }
    let payments = payers
        .iter()
        .zip(&orders)
        .enumerate()
        .map(|(i, (payer, order))| {
            let body = TestApp::pay_body(order, payer);
            let wallet = if i % 2 == 0 { &wallet } else { &wallet_there };
            async move { wallet.post("payments", &body).await.unwrap() }
        });
    let refunds = paid.iter().enumerate().map(|(i, order)| {
        let path = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            replica.clone()
        };
        app.http
            .post(format!("{base}{path}"))
            .bearer_auth(&merchant.manager_key)
            .json(&json!({"amount": "10.00", "refund_reference": format!("r{i}")}))
            .send()
    });
    let (payments, refunds) = tokio::join!(join_all(payments), join_all(refunds));
    for response in payments {
        json_ok(response, StatusCode::OK).await;
    }
    for response in refunds {
        json_ok(response.unwrap(), StatusCode::CREATED).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM referral_rewards").await, 12);
}

/// A payment in flight holds its wallet's row and its order's row FOR KEY SHARE (its
/// foreign keys), and so do a quote and an order event being written. Locking a wallet
/// to rotate its secrets or set its webhook, or an order to pay or refund it, takes FOR
/// NO KEY UPDATE, which those share locks let through: neither waits for the other.
#[tokio::test]
async fn rotating_secrets_and_paying_do_not_wait_for_rows_that_reference_them() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let mut in_flight = app.db().await;
    let tx = in_flight.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM wallets WHERE id = $1 FOR KEY SHARE",
        &[&wallet.wallet_id],
    )
    .await
    .unwrap();
    tx.execute(
        "SELECT 1 FROM orders WHERE id = $1 FOR KEY SHARE",
        &[&order["id"].as_str().unwrap()],
    )
    .await
    .unwrap();
    // Blocked, these would wait until the transaction above ends: never, within the bound.
    let unblocked = std::time::Duration::from_secs(20);
    let secrets = format!("/v1/admin/wallets/{}/secrets", wallet.wallet_id);
    let added = tokio::time::timeout(unblocked, app.admin_post(&secrets, &json!({})))
        .await
        .expect("adding a wallet secret waited for a share lock on the wallet");
    let added = json_ok(added, StatusCode::CREATED).await;
    let retired = tokio::time::timeout(
        unblocked,
        app.admin_delete(&format!(
            "{secrets}/{}",
            added["secret_id"].as_str().unwrap()
        )),
    )
    .await
    .expect("retiring a wallet secret waited for a share lock on the wallet");
    json_ok(retired, StatusCode::OK).await;
    let paid = tokio::time::timeout(unblocked, app.pay(&wallet, &order, &customer))
        .await
        .expect("paying waited for a share lock on the order");
    json_ok(paid, StatusCode::OK).await;
    tx.rollback().await.unwrap();
}

/// A wallet signs with at most two secrets at once. The lock that serializes additions
/// lets payments through (NO KEY UPDATE) but not another addition: a herd of ten adds
/// exactly one beside the first, and the rest are `422 limit_exceeded`.
#[tokio::test]
async fn a_herd_adding_wallet_secrets_stops_at_two() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let secrets = format!("/v1/admin/wallets/{}/secrets", wallet.wallet_id);
    let empty = json!({});
    let answers = join_all((0..10).map(|_| app.admin_post(&secrets, &empty))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 422, 422, 422, 422, 422, 422, 422, 422, 422]);
    let active = format!(
        "SELECT count(*) FROM wallet_secrets WHERE wallet_id = '{}' AND retired_at IS NULL",
        wallet.wallet_id
    );
    assert_eq!(app.count(&active).await, 2);
}
