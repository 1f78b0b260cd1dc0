//! Faults: an answer lost after its commit, a gateway started before its database, a
//! replica killed with SIGKILL and every database connection terminated in the middle
//! of payments. Nothing acknowledged is lost, nothing is settled twice, and the gateway
//! comes back by itself.

use crate::helpers::*;
use crate::shutdown::gateway_process;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use simulator::wallet::WalletClient;
use std::time::Duration;

#[tokio::test]
async fn a_payment_whose_answer_was_lost_after_its_commit_gets_that_answer_on_retry() {
    let app = spawn_app_with(&[("QRGATE_FAULT_PAYMENT_ANSWERS_DROPPED", "1")]).await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let order = app.create_order(&merchant.cashier_key, "12.00").await;
    let body = TestApp::pay_body(&order, &customer);

    let lost = wallet.post("payments", &body).await.unwrap();
    assert_eq!(lost.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(lost.headers().contains_key("retry-after"));
    // The wallet retries as wallets do: the same wallet_txn_id, a new webhook-id.
    let retried = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let again = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["payment_id"], again["payment_id"]);
    let paid = app
        .order(&merchant.cashier_key, order["id"].as_str().unwrap())
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["payment_id"], retried["payment_id"]);
    assert_eq!(app.customer_balance(&wallet, &customer).await, "38.00");
    assert_eq!(app.count("SELECT count(*) FROM payments").await, 1);
}

#[tokio::test]
async fn a_gateway_started_before_its_database_comes_up_by_itself() {
    let base = base_database_url();
    let name = format!("qrgate_test_{}", qrgate_domain::ids::random_base32(16));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let _child = tokio::process::Command::new(workspace_binary("gateway"))
        .arg("serve")
        .env("DATABASE_URL", with_database(&base, &name))
        .env("QRGATE_ADMIN_TOKEN", qrgate_domain::ids::random_base32(32))
        .env(
            "QRGATE_SECRETS_KEY",
            gateway::sealed::SecretsKey::generate_base64(),
        )
        .env("QRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let ready = || http.get(format!("http://127.0.0.1:{port}/readyz")).send();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ready().await.is_err(),
        "not serving before its database exists"
    );
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut answered = None;
    for _ in 0..200 {
        if let Ok(response) = ready().await {
            answered = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Some(StatusCode::OK), "ready once the database is");
}

/// Pays `order` through `first`, then (on an error or a 5xx) again through `others`
/// in turn, as a wallet does: the same wallet_txn_id, a new webhook-id, a short pause.
/// The payment id when some attempt was acknowledged.
async fn pay_with_retries(replicas: &[&WalletClient], body: &Value) -> Option<String> {
    for attempt in 0..40 {
        let replica = replicas[attempt % replicas.len()];
        if let Ok(response) = replica.post("payments", body).await {
            if response.status() == StatusCode::OK {
                let answer: Value = response.json().await.unwrap();
                return Some(answer["payment_id"].as_str().unwrap().to_owned());
            }
            assert!(
                response.status().is_server_error(),
                "{}",
                response.text().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(50 + 25 * attempt as u64)).await;
    }
    None
}

#[tokio::test]
async fn payments_survive_a_replica_killed_and_every_database_connection_terminated() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let mut sales = Vec::new();
    for _ in 0..60 {
        let customer = app.funded_customer(&wallet, "10.00").await;
        let order = app.create_order(&merchant.cashier_key, "10.00").await;
        sales.push(TestApp::pay_body(&order, &customer));
    }
    let (mut replica, replica_url) =
        gateway_process(&app, &[("RUST_LOG", "error")], std::process::Stdio::null()).await;
    let secret = app.wallet_secret(&wallet.wallet_id).await;
    let on_replica = WalletClient::new(&replica_url, &wallet.wallet_id, secret, app.http.clone());

    // The faults, while payments go first to the replica and then to either.
    let db = app.db().await;
    let faults = async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        replica.start_kill().unwrap();
        replica.wait().await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let killed = db
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        assert!(
            killed > 0,
            "the gateway's connections were there to terminate"
        );
    };
    let paying = join_all(sales.iter().enumerate().map(|(i, body)| {
        let replicas = [&on_replica, &wallet];
        async move {
            tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
            pay_with_retries(&replicas, body).await
        }
    }));
    let (acknowledged, ()) = tokio::join!(paying, faults);
    let acknowledged: Vec<String> = acknowledged.into_iter().flatten().collect();
    assert_eq!(
        acknowledged.len(),
        sales.len(),
        "every sale was paid in the end"
    );

    // Every acknowledged payment settled exactly once; every customer charged once.
    app.assert_settled_once(&acknowledged).await;
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await,
        sales.len() as i64
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM account_balances b JOIN accounts a ON a.id = b.account_id
                   WHERE a.kind = 'customer' AND a.currency = 'CNY' AND b.balance_minor <> 0"
        )
        .await,
        0
    );
    // The in-process gateway came back by itself: it still answers with its pool.
    json_ok(
        app.merchant_get(&merchant.cashier_key, "/v1/orders?limit=1")
            .await,
        StatusCode::OK,
    )
    .await;
}
