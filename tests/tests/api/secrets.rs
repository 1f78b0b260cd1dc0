//! Secrets at rest: wallet and webhook secrets sealed with AES-256-GCM and bound to their
//! row, a change of key while payments go on, and no secret in the log at any level.

use crate::{
    helpers::{assert_error, json_ok, spawn_app, workspace_binary, TestApp},
    shutdown::gateway_process,
};
use gateway::sealed::{Keyring, SecretsKey};
use qrgate_domain::signing::SigningSecret;
use reqwest::StatusCode;
use serde_json::{json, Value};
use simulator::{hook_sink::HookSink, wallet::WalletClient};
use std::{process::Stdio, time::Duration};

fn key_id(key: &str) -> String {
    SecretsKey::from_base64(key).unwrap().id().to_owned()
}

#[tokio::test]
async fn secrets_are_sealed_in_the_database_and_open_only_for_their_own_row() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet_a = app.create_wallet().await;
    let wallet_b = app.create_wallet().await;
    let db = app.db().await;
    let stored: Vec<(String, String)> = db
        .query(
            "SELECT wallet_id, secret FROM wallet_secrets ORDER BY wallet_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let webhook: String = db
        .query_one(
            "SELECT webhook_secret FROM merchants WHERE id = $1",
            &[&merchant.id],
        )
        .await
        .unwrap()
        .get(0);
    let prefix = format!("sealed:v1:{}:", key_id(&app.secrets_key));
    for value in stored.iter().map(|(_, s)| s).chain([&webhook]) {
        assert!(value.starts_with(&prefix), "{value}");
        assert!(!value.contains("whsec_"), "{value}");
    }
    // The plaintext the API gave once is what the sealed value holds.
    assert_eq!(
        app.webhook_secret(&merchant.id).await.len(),
        "whsec_".len() + 44
    );
    let customer_b = app.funded_customer(&wallet_b, "10.00").await;

    // A's sealed secret copied onto B's row: it does not open there, so B cannot sign.
    let a_sealed = &stored
        .iter()
        .find(|(w, _)| *w == wallet_a.wallet_id)
        .unwrap()
        .1;
    db.execute(
        "UPDATE wallet_secrets SET secret = $1 WHERE wallet_id = $2",
        &[a_sealed, &wallet_b.wallet_id],
    )
    .await
    .unwrap();
    // The change reaches the credential cache by notification, a moment later.
    for _ in 0..100 {
        let response = wallet_b
            .get(&format!("accounts/{customer_b}"))
            .await
            .unwrap();
        if response.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for signer in [&wallet_b, &as_wallet(&app, &wallet_b.wallet_id, &wallet_a)] {
        let response = signer.get(&format!("accounts/{customer_b}")).await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
    }
}

/// `wallet` signing for itself on another replica (`base`).
fn at(app: &TestApp, base: &str, wallet: &WalletClient) -> WalletClient {
    WalletClient::new(
        base,
        &wallet.wallet_id,
        wallet.secret().clone(),
        app.http.clone(),
    )
}

/// `wallet`'s secret presented for `wallet_id`.
fn as_wallet(app: &TestApp, wallet_id: &str, wallet: &WalletClient) -> WalletClient {
    WalletClient::new(
        &app.address,
        wallet_id,
        wallet.secret().clone(),
        app.http.clone(),
    )
}

#[tokio::test]
async fn secrets_stored_in_plain_text_are_sealed_when_replicas_start() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let db = app.db().await;
    // As a database from before sealing holds them.
    let plain_webhook = app.webhook_secret(&merchant.id).await;
    let plain_wallet = wallet.secret().expose();
    db.execute("UPDATE wallet_secrets SET secret = $1", &[&plain_wallet])
        .await
        .unwrap();
    db.execute(
        "UPDATE merchants SET webhook_secret = $1",
        &[&plain_webhook],
    )
    .await
    .unwrap();
    // Two replicas starting at once both find them: each row is sealed once, and opens.
    let (replica, _other) = tokio::join!(app.spawn_replica(&[]), app.spawn_replica(&[]));
    let sealed: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM wallet_secrets WHERE secret LIKE 'sealed:v1:%')
                  + (SELECT count(*) FROM merchants WHERE webhook_secret LIKE 'sealed:v1:%')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sealed, 2);
    assert_eq!(app.webhook_secret(&merchant.id).await, plain_webhook);
    let on_replica = at(&app, &replica, &wallet);
    let order = app.create_order(&merchant.cashier_key, "5.00").await;
    json_ok(
        on_replica
            .post(
                "payments",
                &crate::helpers::TestApp::pay_body(&order, &customer),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn a_change_of_secrets_key_keeps_payments_verifying_throughout() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    let (old_key, new_key) = (app.secrets_key.clone(), SecretsKey::generate_base64());
    // Every replica first learns the new key, keeping the old one as previous.
    let changing = [
        ("QRGATE_SECRETS_KEY", new_key.as_str()),
        ("QRGATE_SECRETS_KEY_PREVIOUS", old_key.as_str()),
    ];
    let replica = app.spawn_replica(&changing).await;
    let paying = at(&app, &replica, &wallet);
    let payments = {
        let (app_http, address, key) = (
            app.http.clone(),
            app.address.clone(),
            merchant.cashier_key.clone(),
        );
        let (paying, customer) = (paying.clone(), customer.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..40 {
                let order: Value = app_http
                    .post(format!("{address}/v1/orders"))
                    .bearer_auth(&key)
                    .json(&json!({"amount": "1.00", "currency": "CNY", "merchant_reference": format!("R{i}")}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let paid = paying
                    .post("payments", &TestApp::pay_body(&order, &customer))
                    .await
                    .unwrap();
                answers.push(paid.status());
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            answers
        })
    };
    let rotated = tokio::process::Command::new(workspace_binary("gateway"))
        .arg("rotate-secrets-key")
        .env("DATABASE_URL", &app.db_url)
        .env("QRGATE_ADMIN_TOKEN", &app.admin_token)
        .env("QRGATE_SECRETS_KEY", &new_key)
        .env("QRGATE_SECRETS_KEY_PREVIOUS", &old_key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(rotated.success());
    let answers = payments.await.unwrap();
    assert!(answers.iter().all(|s| *s == StatusCode::OK), "{answers:?}");

    let db = app.db().await;
    let under = |key: &str| format!("sealed:v1:{}:%", key_id(key));
    let count = |pattern: String| {
        let db = &db;
        async move {
            db.query_one(
                "SELECT (SELECT count(*) FROM wallet_secrets WHERE secret LIKE $1)
                      + (SELECT count(*) FROM merchants WHERE webhook_secret LIKE $1)",
                &[&pattern],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
        }
    };
    assert_eq!(
        count(under(&old_key)).await,
        0,
        "nothing left under the old key"
    );
    assert_eq!(count(under(&new_key)).await, 2);
    // The old key can go: a replica with the new key alone verifies the wallet...
    let new_only = app
        .spawn_replica(&[("QRGATE_SECRETS_KEY", new_key.as_str())])
        .await;
    let on_new = at(&app, &new_only, &wallet);
    let order = app.create_order(&merchant.cashier_key, "2.00").await;
    json_ok(
        on_new
            .post("payments", &TestApp::pay_body(&order, &customer))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    // ...and one with the old key alone no longer can.
    let old_only = app
        .spawn_replica(&[("QRGATE_SECRETS_KEY", old_key.as_str())])
        .await;
    let on_old = at(&app, &old_only, &wallet);
    let response = on_old.get(&format!("accounts/{customer}")).await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_signature").await;
    // The rotation with nothing left to do changes nothing and succeeds.
    let keys = Keyring::new(SecretsKey::from_base64(&new_key).unwrap(), None);
    let again = gateway::sealed::reseal(
        &gateway::db::pool(&settings_for(&app, &new_key)).unwrap(),
        &keys,
        gateway::sealed::Reseal::AllButCurrent,
    )
    .await
    .unwrap();
    assert_eq!(again, Default::default());
}

fn settings_for(app: &TestApp, key: &str) -> gateway::Settings {
    gateway::Settings::from_vars(&std::collections::HashMap::from([
        ("DATABASE_URL".to_owned(), app.db_url.clone()),
        ("QRGATE_ADMIN_TOKEN".to_owned(), app.admin_token.clone()),
        ("QRGATE_SECRETS_KEY".to_owned(), key.to_owned()),
    ]))
    .unwrap()
}

/// A whole sale — a merchant, keys, a wallet and a second secret, a rotated webhook
/// secret, a top-up, an order, a payment and its signed webhook — on a gateway logging
/// at `trace`, the most it can say: no secret appears in its log.
#[tokio::test]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    let app = spawn_app().await;
    let log = std::env::temp_dir().join(format!(
        "qrgate-trace-{}.log",
        qrgate_domain::ids::random_base32(8)
    ));
    let (mut gateway, base) = gateway_process(
        &app,
        &[
            ("RUST_LOG", "trace"),
            ("QRGATE_ALLOW_PRIVATE_WEBHOOKS", "1"),
            ("QRGATE_WEBHOOK_POLL_INTERVAL_MS", "50"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    )
    .await;
    let admin = |path: &str, body: Value| {
        let request = app
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&app.admin_token)
            .json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let hooks = HookSink::start().await.unwrap();
    let merchant = admin(
        "/v1/admin/merchants",
        json!({"name": "Trace Shop", "city": "Shanghai", "country": "CN", "mcc": "5812",
               "currency": "CNY", "webhook_url": hooks.url("trace")}),
    )
    .await;
    let merchant_id = merchant["id"].as_str().unwrap();
    let first_webhook_secret = merchant["webhook_secret"].as_str().unwrap().to_owned();
    let key = admin(
        &format!("/v1/admin/merchants/{merchant_id}/api-keys"),
        json!({"scopes": ["orders", "reports"]}),
    )
    .await;
    let api_key = key["key"].as_str().unwrap().to_owned();
    // A second factor enrolled through this gateway: its TOTP secret is a secret too.
    let enrollment: Value = app
        .http
        .post(format!("{base}/v1/me/second-factor"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let totp_secret = enrollment["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .http
        .post(format!("{base}/v1/webhooks/secret"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = rotated["webhook_secret"].as_str().unwrap().to_owned();
    hooks.expect_secret("trace", SigningSecret::parse(&webhook_secret).unwrap());
    let wallet = admin("/v1/admin/wallets", json!({"name": "Trace Pay"})).await;
    let wallet_id = wallet["id"].as_str().unwrap();
    admin(
        &format!("/v1/admin/wallets/{wallet_id}/funding-limits"),
        json!({"currency": "CNY", "limit": "1000"}),
    )
    .await;
    let second = admin(&format!("/v1/admin/wallets/{wallet_id}/secrets"), json!({})).await;
    let wallet_secret = wallet["secret"].as_str().unwrap().to_owned();
    let signer = WalletClient::new(
        &base,
        wallet_id,
        SigningSecret::parse(&wallet_secret).unwrap(),
        app.http.clone(),
    );
    let customer = simulator::setup::open_customer(&signer, "trace-customer")
        .await
        .unwrap();
    simulator::setup::top_up(&signer, &customer, "20.00")
        .await
        .unwrap();
    let order: Value = app
        .http
        .post(format!("{base}/v1/orders"))
        .bearer_auth(&api_key)
        .json(&json!({"amount": "3.00", "currency": "CNY", "merchant_reference": "TRACE-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    json_ok(
        signer
            .post("payments", &TestApp::pay_body(&order, &customer))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    for _ in 0..100 {
        if !hooks.received.lock().unwrap().accepted.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !hooks.received.lock().unwrap().accepted.is_empty(),
        "the webhook was delivered, signed"
    );
    gateway.kill().await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        text.contains(" TRACE "),
        "the log is at trace level:\n{text}"
    );
    let api_key_secret = api_key.split_once('.').unwrap().1.to_owned();
    let mut secrets = vec![
        ("the admin token", app.admin_token.clone()),
        ("the secrets key", app.secrets_key.clone()),
        ("an API key", api_key.clone()),
        ("an API key's secret part", api_key_secret),
        ("a second factor's TOTP secret", totp_secret),
    ];
    for (what, secret) in [
        ("a wallet secret", wallet_secret),
        (
            "a second wallet secret",
            second["secret"].as_str().unwrap().to_owned(),
        ),
        ("a webhook secret", webhook_secret),
        ("a rotated-out webhook secret", first_webhook_secret),
    ] {
        // The whole `whsec_…` and its key material alone.
        secrets.push((what, secret.trim_start_matches("whsec_").to_owned()));
        secrets.push((what, secret));
    }
    for (what, secret) in secrets {
        assert!(!text.contains(&secret), "{what} is in the trace log");
    }
}
