//! The `cashier` binary end to end: a real process against the real gateway.

use crate::helpers::{json_ok, spawn_app, workspace_binary, TestApp, TestMerchant};
use reqwest::StatusCode;
use serde_json::Value;
use std::{process::Stdio, time::Duration};
use tokio::process::{Child, Command};

fn cashier(app: &TestApp, key: &str, args: &[&str]) -> Child {
    Command::new(workspace_binary("cashier"))
        .args(args)
        .env("QRGATE_URL", &app.address)
        .env("QRGATE_API_KEY", key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits (bounded) for the process and returns its exit code, stdout and stderr.
async fn finish(child: Child) -> (i32, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("cashier finished")
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The pending order the CLI created under `reference` (polled, bounded).
async fn order_by_reference(app: &TestApp, merchant: &TestMerchant, reference: &str) -> Value {
    for _ in 0..100 {
        let page = json_ok(
            app.merchant_get(&merchant.cashier_key, "/v1/orders?status=pending")
                .await,
            StatusCode::OK,
        )
        .await;
        if let Some(order) = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["merchant_reference"] == reference)
        {
            return order.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the CLI never created order {reference}");
}

#[tokio::test]
async fn charge_draws_the_qr_waits_and_prints_paid() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let png = std::env::temp_dir().join(format!(
        "qrgate-cli-{}.png",
        qrgate_domain::ids::random_base32(8)
    ));

    let child = cashier(
        &app,
        &merchant.cashier_key,
        &[
            "charge",
            "12.34",
            "--reference",
            "CLI-PAID",
            "--terminal",
            "T9",
            "--png",
            png.to_str().unwrap(),
        ],
    );
    let order = order_by_reference(&app, &merchant, "CLI-PAID").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let (code, stdout, stderr) = finish(child).await;

    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("Order {}", order["id"].as_str().unwrap())),
        "{stdout}"
    );
    assert!(
        stdout.contains('▀') || stdout.contains('▄'),
        "the QR is drawn with half blocks: {stdout}"
    );
    assert!(stdout.contains("PAID 12.34 CNY"), "{stdout}");
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    std::fs::remove_file(png).ok();
}

#[tokio::test]
async fn charge_exits_with_the_expired_code_when_nobody_pays() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let child = cashier(
        &app,
        &merchant.cashier_key,
        &[
            "charge",
            "5.00",
            "--reference",
            "CLI-EXP",
            "--expires-in-seconds",
            "30",
        ],
    );
    let order = order_by_reference(&app, &merchant, "CLI-EXP").await;
    // Let the order run out in a second rather than thirty.
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = now() - interval '1 minute', expires_at = now() + interval '1 second' WHERE id = $1",
            &[&order["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 3, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("EXPIRED"), "{stdout}");
}

#[tokio::test]
async fn ctrl_c_during_a_charge_closes_the_order() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let child = cashier(
        &app,
        &merchant.cashier_key,
        &["charge", "5.00", "--reference", "CLI-INT"],
    );
    let order = order_by_reference(&app, &merchant, "CLI-INT").await;
    let pid = child.id().unwrap().to_string();
    // Give the CLI a moment to be waiting (its signal handler is installed by then).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 130, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        app.order(&merchant.cashier_key, order["id"].as_str().unwrap())
            .await["status"],
        "closed"
    );
}

/// Issue 11: a payment that lands just before Ctrl-C made closing answer `already_paid`,
/// which the CLI reported as an error (exit 1). The cashier is paused while the customer
/// pays, then interrupted: it must print PAID and exit 0.
#[tokio::test]
async fn ctrl_c_just_after_the_payment_landed_reports_paid() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let child = cashier(
        &app,
        &merchant.cashier_key,
        &["charge", "5.00", "--reference", "CLI-RACE"],
    );
    let order = order_by_reference(&app, &merchant, "CLI-RACE").await;
    let pid = child.id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let signal = |name: &'static str| {
        let pid = pid.clone();
        async move {
            let sent = Command::new("kill")
                .args([name, &pid])
                .status()
                .await
                .unwrap();
            assert!(sent.success());
        }
    };
    signal("-STOP").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    signal("-INT").await;
    signal("-CONT").await;
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("PAID 5.00 CNY"), "{stdout}");
}

#[tokio::test]
async fn status_close_orders_and_balance_commands() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "3.21").await;
    let id = order["id"].as_str().unwrap();

    let (code, stdout, _) = finish(cashier(&app, &merchant.cashier_key, &["status", id])).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains(id) && stdout.contains("pending") && stdout.contains("3.21 CNY"),
        "{stdout}"
    );

    let (code, stdout, _) = finish(cashier(&app, &merchant.cashier_key, &["close", id])).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("closed"), "{stdout}");

    let (code, stdout, _) = finish(cashier(
        &app,
        &merchant.cashier_key,
        &["orders", "--status", "closed"],
    ))
    .await;
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with("ORDER") && stdout.contains(id),
        "{stdout}"
    );

    let (code, stdout, _) = finish(cashier(&app, &merchant.manager_key, &["balance"])).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains(&merchant.account_id) && stdout.contains("0.00 CNY"),
        "{stdout}"
    );

    let (code, _, stderr) = finish(cashier(&app, &merchant.cashier_key, &["balance"])).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("reports") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[tokio::test]
async fn errors_are_one_clear_line() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    for (args, needle) in [
        (vec!["charge", "1.001"], "decimal places"),
        (vec!["charge", "abc"], "not a number"),
        (vec!["status", "ord_missing"], "not_found"),
        (vec!["charge", "1.00", "--currency", "HKD"], "currency"),
    ] {
        let (code, stdout, stderr) = finish(cashier(&app, &merchant.cashier_key, &args)).await;
        assert_eq!(code, 1, "{args:?}: {stdout} {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = finish(cashier(&app, "key_bad.bad", &["status", "ord_x"])).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("API key"), "{stderr}");
    let (code, _, _) = finish(cashier(&app, &merchant.cashier_key, &["frobnicate"])).await;
    assert_eq!(code, 2);
}

#[tokio::test]
async fn refund_statement_and_report_commands() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let id = order["id"].as_str().unwrap();

    let (code, stdout, stderr) = finish(cashier(
        &app,
        &merchant.manager_key,
        &["refund", id, "4.00", "--reason", "cold"],
    ))
    .await;
    assert_eq!(code, 0, "{stdout} {stderr}");
    assert!(
        stdout.contains("REFUNDED 4.00 CNY") && stdout.contains("partially_refunded"),
        "{stdout}"
    );
    let (code, _, stderr) = finish(cashier(
        &app,
        &merchant.cashier_key,
        &["refund", id, "1.00"],
    ))
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("scope"), "{stderr}");

    let (code, stdout, _) = finish(cashier(&app, &merchant.manager_key, &["statement"])).await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("payment") && stdout.contains("refund") && stdout.contains("5.98"),
        "{stdout}"
    );

    let today: String = app
        .db()
        .await
        .query_one(
            "SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (code, stdout, _) = finish(cashier(
        &app,
        &merchant.manager_key,
        &["report", "--date", &today],
    ))
    .await;
    assert_eq!(code, 0);
    assert!(
        stdout.contains("closing balance") && stdout.contains("5.98"),
        "{stdout}"
    );
}

#[tokio::test]
async fn checkout_create_prints_the_payment_link_of_a_new_session() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let child = cashier(
        &app,
        &merchant.cashier_key,
        &[
            "checkout",
            "create",
            "25.50",
            "--return-url",
            "https://shop.example/thanks",
            "--cancel-url",
            "https://shop.example/cart",
            "--reference",
            "WEB-77",
            "--item",
            "Beef: noodles:2:10.00",
            "--item",
            "Tea:1:5.50",
        ],
    );
    let (code, stdout, stderr) = finish(child).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("cs_"))
        .expect("a session id");
    let url = stdout
        .lines()
        .find(|l| l.contains("/pay/"))
        .expect("the payment link");
    assert!(url.starts_with(&app.address), "{url}");
    // Not a terminal: the link only, no QR drawing.
    assert!(!stdout.contains('█'), "{stdout}");
    let session = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/checkout-sessions/{id}"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(session["order"]["merchant_reference"], "WEB-77");
    assert_eq!(session["line_items"][0]["name"], "Beef: noodles");
    let page = app.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    let child = cashier(
        &app,
        &merchant.cashier_key,
        &[
            "checkout",
            "create",
            "5.00",
            "--return-url",
            "https://a.example/",
            "--cancel-url",
            "https://a.example/",
            "--item",
            "Tea",
        ],
    );
    let (code, _, stderr) = finish(child).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("NAME:QUANTITY:PRICE"), "{stderr}");
}
