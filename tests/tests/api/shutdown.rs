//! Graceful shutdown: SIGTERM to a real gateway process in the middle of a burst of
//! payments. Every payment it acknowledged is settled, nothing is half done, and the
//! ledger is whole (checked when the test app drops).

use crate::helpers::{json_ok, spawn_app, workspace_binary, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use std::{process::Stdio, time::Duration};
use tokio::process::Command;

#[tokio::test]
async fn sigterm_during_payments_leaves_every_acknowledged_payment_settled() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let mut pairs = Vec::new();
    for _ in 0..40 {
        let customer = app.funded_customer(&wallet, "10.00").await;
        pairs.push((
            app.create_order(&merchant.cashier_key, "10.00").await,
            customer,
        ));
    }

    // A second gateway, as its own process, on the same database.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = Command::new(workspace_binary("gateway"))
        .arg("serve")
        .env("DATABASE_URL", &app.db_url)
        .env("QRGATE_ADMIN_TOKEN", &app.admin_token)
        .env("QRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("QRGATE_SHUTDOWN_GRACE_SECONDS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if app
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let replica = simulator::wallet::WalletClient::new(
        &base,
        &wallet.wallet_id,
        app.wallet_secret(&wallet.wallet_id).await,
        app.http.clone(),
    );

    let pid = child.id().unwrap().to_string();
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
    };
    let paying = join_all(pairs.iter().enumerate().map(|(i, (order, customer))| {
        let replica = &replica;
        async move {
            tokio::time::sleep(Duration::from_millis(2 * i as u64)).await;
            let body = TestApp::pay_body(order, customer);
            match replica.post("payments", &body).await {
                Ok(r) if r.status() == StatusCode::OK => Some(
                    r.json::<serde_json::Value>().await.unwrap()["payment_id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                _ => None,
            }
        }
    }));
    let (acknowledged, ()) = tokio::join!(paying, terminate);
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("the gateway stops within its grace")
        .unwrap();
    assert!(exit.success(), "a graceful stop exits 0: {exit:?}");

    // Every acknowledged payment is settled exactly once.
    let acknowledged: Vec<String> = acknowledged.into_iter().flatten().collect();
    eprintln!(
        "{} of {} payments acknowledged before the stop",
        acknowledged.len(),
        pairs.len()
    );
    let check = json!({"payment_ids": acknowledged});
    let reconciled = json_ok(
        app.admin_post("/v1/admin/reconciliation/payments", &check)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        reconciled["settled_once"], reconciled["checked"],
        "{reconciled}"
    );
    // And nothing settled that was not a whole payment: payments and paid orders agree.
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await,
        app.count("SELECT count(*) FROM orders WHERE status = 'paid'")
            .await
    );
}
