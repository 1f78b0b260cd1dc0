//! The narrated walk-through a new user runs to see the product work.

use crate::setup::{self, Admin};
use merchant_sdk::{NewOrder, OrderStatus};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;
use std::time::Duration;

/// Runs the demo, narrating each step to stdout.
pub async fn run(gateway: &str, admin_token: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let admin = Admin::new(gateway, admin_token, http.clone());
    say("1. The operator signs up a shop and a wallet provider.");
    let world = setup::build(&admin, &http, 1, 2).await?;
    let shop = &world.merchants[0];
    let wallet = &world.wallets[0];
    let alice = &world.customers[0];
    println!(
        "   shop {} (settlement account {})",
        shop.id, shop.account_id
    );
    println!(
        "   wallet {}; customer account {}",
        wallet.wallet_id, alice.account_id
    );
    let balance = |account: String| async move {
        let body = setup::expect_status(
            wallet.get(&format!("accounts/{account}")).await?,
            StatusCode::OK,
        )
        .await?;
        setup::text(&body, "balance")
    };
    say(&format!(
        "2. The wallet topped the customer up: balance {} CNY.",
        balance(alice.account_id.clone()).await?
    ));

    say("3. The cashier charges 12.34 CNY and shows this QR code:");
    let order = shop
        .cashier
        .create_order(&NewOrder::new(
            Decimal::new(1234, 2),
            "CNY".parse()?,
            "DEMO-1",
        ))
        .await?;
    if let Some(code) = merchant_sdk::terminal::encode(&order.qr_payload) {
        print!("{}", merchant_sdk::terminal::render(&code));
    }
    println!(
        "   order {}; EMV payload {}…",
        order.id,
        &order.qr_payload[..40.min(order.qr_payload.len())]
    );

    say(
        "4. The customer scans it; the wallet signs and posts the payment while the cashier waits.",
    );
    let body = json!({
        "wallet_txn_id": qrgate_domain::ids::mint("demo"),
        "qr_payload": order.qr_payload,
        "customer_account_id": alice.account_id,
        "amount": "12.34",
        "currency": "CNY",
    });
    let (seen, paid) = tokio::join!(
        shop.cashier
            .wait_for_payment(&order.id, Duration::from_secs(30)),
        wallet.post("payments", &body)
    );
    let paid = setup::expect_status(paid?, StatusCode::OK).await?;
    println!(
        "   wallet got: payment {} — charged {} CNY, fee {} CNY",
        paid["payment_id"], paid["charged"], paid["fee"]
    );
    let seen = seen?;
    println!("   cashier saw: order {} is {}", seen.id, seen.status);
    anyhow::ensure!(
        seen.status == OrderStatus::Paid,
        "the cashier should see the order paid"
    );

    say(&format!(
        "5. Balances after: customer {} CNY.",
        balance(alice.account_id.clone()).await?
    ));
    let ledger = admin
        .request(reqwest::Method::GET, "/v1/admin/ledger/invariants", None)
        .await?;
    say(&format!(
        "6. The ledger's invariants hold: {}.",
        ledger["ok"]
    ));
    anyhow::ensure!(ledger["ok"] == true, "ledger invariants broken: {ledger}");
    Ok(())
}

fn say(line: &str) {
    println!("\n{line}");
}
