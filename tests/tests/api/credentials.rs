//! API keys and wallet secrets are used from memory (issue 12), and a change reaches
//! every replica at once: a revoked key, a blocked merchant or a retired secret stops
//! working on a replica that held it, by notification, long before the cache's time
//! bound (set here to a minute, so only the notification can explain the change).

use crate::helpers::{json_ok, spawn_app_with, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const SETTINGS: [(&str, &str); 2] = [
    ("QRGATE_CREDENTIAL_CACHE_MS", "60000"),
    ("QRGATE_METRICS_TOKEN", "metrics-token-0123456789"),
];
/// How long a change may take to reach another replica before the test says it did not:
/// a bound far above a notification's milliseconds, far below the cache's minute.
const PROPAGATION_POLLS_MAX: usize = 250;
const POLL_MS: u64 = 20;

async fn metric(app: &TestApp, base: &str, name: &str) -> u64 {
    let text = app.metrics_text(base, "metrics-token-0123456789").await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls `status_of` until it answers `want`; false if it never does within the bound.
async fn becomes<F, Fut>(want: StatusCode, status_of: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    for _ in 0..PROPAGATION_POLLS_MAX {
        if status_of().await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    false
}

#[tokio::test]
async fn a_revoked_key_and_a_blocked_merchant_stop_working_on_another_replica_at_once() {
    let app = spawn_app_with(&SETTINGS).await;
    let replica = app.spawn_replica(&SETTINGS).await;
    let merchant = app.create_merchant().await;
    assert!(
        becomes(StatusCode::OK, || async {
            let listening = metric(&app, &replica, "qrgate_credential_cache_listening").await;
            if listening == 1 {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        })
        .await
    );
    let orders = |key: &str| {
        let request = app
            .http
            .get(format!("{replica}/v1/orders"))
            .bearer_auth(key);
        async move { request.send().await.unwrap().status() }
    };
    // The replica answers from memory.
    for _ in 0..3 {
        assert_eq!(orders(&merchant.cashier_key).await, StatusCode::OK);
    }
    assert!(metric(&app, &replica, "qrgate_credential_cache_hits_total").await >= 2);

    // Blocking the merchant on the first replica: the other refuses new orders.
    json_ok(
        app.admin_post(
            &format!("/v1/admin/merchants/{}/block", merchant.id),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let create = || {
        let request = app
            .http
            .post(format!("{replica}/v1/orders"))
            .bearer_auth(&merchant.cashier_key)
            .json(&json!({"amount": "1.00", "currency": "CNY", "merchant_reference": format!("B-{}", qrgate_domain::ids::random_base32(6))}));
        async move { request.send().await.unwrap().status() }
    };
    assert!(
        becomes(StatusCode::UNPROCESSABLE_ENTITY, create).await,
        "the block never reached the replica"
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);

    // Revoking the key on the first replica: the other refuses it.
    let (key_id, _) = merchant.cashier_key.split_once('.').unwrap();
    json_ok(
        app.admin_delete(&format!(
            "/v1/admin/merchants/{}/api-keys/{key_id}",
            merchant.id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        becomes(StatusCode::UNAUTHORIZED, || orders(&merchant.cashier_key)).await,
        "the revocation never reached the replica"
    );
}

#[tokio::test]
async fn a_retired_wallet_secret_stops_verifying_on_another_replica_at_once() {
    let app = spawn_app_with(&SETTINGS).await;
    let replica = app.spawn_replica(&SETTINGS).await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1.00").await;
    let there = simulator::wallet::WalletClient::new(
        &replica,
        &wallet.wallet_id,
        app.wallet_secret(&wallet.wallet_id).await,
        app.http.clone(),
    );
    let balance = || {
        let there = &there;
        let path = format!("accounts/{customer}");
        async move { there.get(&path).await.unwrap().status() }
    };
    assert!(
        becomes(StatusCode::OK, || async {
            if metric(&app, &replica, "qrgate_credential_cache_listening").await == 1 {
                balance().await
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        })
        .await
    );
    assert_eq!(balance().await, StatusCode::OK);
    assert!(metric(&app, &replica, "qrgate_credential_cache_hits_total").await >= 1);

    // A second secret, then the first retired, both on the first replica.
    let added = json_ok(
        app.admin_post(
            &format!("/v1/admin/wallets/{}/secrets", wallet.wallet_id),
            &json!({}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let first: String = app
        .db()
        .await
        .query_one(
            "SELECT id FROM wallet_secrets WHERE wallet_id = $1 AND id <> $2",
            &[&wallet.wallet_id, &added["secret_id"].as_str().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    json_ok(
        app.admin_delete(&format!(
            "/v1/admin/wallets/{}/secrets/{first}",
            wallet.wallet_id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    assert!(
        becomes(StatusCode::UNAUTHORIZED, balance).await,
        "the retired secret still verifies on the replica"
    );
    // The new secret works there at once too.
    let renewed = simulator::wallet::WalletClient::new(
        &replica,
        &wallet.wallet_id,
        qrgate_domain::signing::SigningSecret::parse(added["secret"].as_str().unwrap()).unwrap(),
        app.http.clone(),
    );
    let response = renewed.get(&format!("accounts/{customer}")).await.unwrap();
    json_ok(response, StatusCode::OK).await;
}
