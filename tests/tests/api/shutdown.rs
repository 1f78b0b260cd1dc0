//! Graceful shutdown: SIGTERM to a real gateway process in the middle of a burst of
//! payments. Every payment it acknowledged is settled, nothing is half done, and the
//! ledger is whole (checked when the test app drops).

use crate::helpers::{spawn_app, workspace_binary, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
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
    let (mut child, base) = gateway_process(
        &app,
        &[("QRGATE_SHUTDOWN_GRACE_SECONDS", "5"), ("RUST_LOG", "warn")],
        Stdio::null(),
    )
    .await;
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
    app.assert_settled_once(&acknowledged).await;
    // And nothing settled that was not a whole payment: payments and paid orders agree.
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await,
        app.count("SELECT count(*) FROM orders WHERE status = 'paid'")
            .await
    );
}

/// What an operator reads after a restart, a malformed request and a clean shutdown
/// (issue 11): no NOTICE, no ERROR or WARN line anyone outside can cause, no colour
/// codes in a log written to a file; the malformed request is counted in /metrics.
#[tokio::test]
async fn the_log_of_a_restart_a_malformed_request_and_a_clean_stop_is_quiet() {
    let app = spawn_app().await; // migrates: the process below is a restart
    let log = std::env::temp_dir().join(format!("qrgate-log-{}.txt", std::process::id()));
    let (mut child, base) = gateway_process(
        &app,
        &[("QRGATE_METRICS_TOKEN", "metrics-token-0123456789")],
        std::fs::File::create(&log).unwrap().into(),
    )
    .await;
    let port = base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream.write_all(garbage).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 400"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    let metrics = app.metrics_text(&base, "metrics-token-0123456789").await;
    assert!(
        metrics.contains("qrgate_http_malformed_connections_total 2"),
        "{metrics}"
    );
    let pid = child.id().unwrap().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(stopped.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    for noise in ["ERROR", "WARN", "NOTICE", "already exists"] {
        assert!(!text.contains(noise), "{noise} in the log:\n{text}");
    }
    assert!(text.contains("INFO"), "{text}");
}

/// A `gateway serve` process on the test's database and a free port, with `env` (and no
/// RUST_LOG unless given), its stderr to `stderr`; ready when this returns.
pub async fn gateway_process(
    app: &TestApp,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> (tokio::process::Child, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let child = Command::new(workspace_binary("gateway"))
        .arg("serve")
        .env("DATABASE_URL", &app.db_url)
        .env("QRGATE_ADMIN_TOKEN", &app.admin_token)
        .env("QRGATE_SECRETS_KEY", &app.secrets_key)
        .env("QRGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        let ready = app.http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base)
}
