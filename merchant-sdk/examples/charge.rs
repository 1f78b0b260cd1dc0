//! Charge a customer and wait for the payment:
//!
//! ```sh
//! QRGATE_URL=http://127.0.0.1:8080 QRGATE_API_KEY=key_….secret cargo run -p merchant-sdk --example charge -- 12.34
//! ```

use merchant_sdk::{terminal, Client, NewOrder};
use rust_decimal::Decimal;
use std::{str::FromStr, time::Duration};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("QRGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("QRGATE_API_KEY")?;
    let amount = Decimal::from_str(&std::env::args().nth(1).unwrap_or_else(|| "12.34".into()))?;

    let client = Client::builder(url, key).build()?;
    let order = client
        .create_order(&NewOrder::new(amount, "CNY".parse()?, "EXAMPLE-1"))
        .await?;
    if let Some(code) = terminal::encode(&order.qr_payload) {
        print!("{}", terminal::render(&code));
    }
    let outcome = client
        .wait_for_payment(&order.id, Duration::from_secs(300))
        .await?;
    println!("order {} is {}", outcome.id, outcome.status);
    Ok(())
}
