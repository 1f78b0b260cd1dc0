//! Rust client for qrgate's merchant API: what a shop's till or server uses to charge
//! customers by QR code.
//!
//! ```no_run
//! use merchant_sdk::{Client, NewOrder, OrderStatus};
//! use rust_decimal::Decimal;
//! use std::time::Duration;
//!
//! # async fn run() -> Result<(), merchant_sdk::Error> {
//! let client = Client::builder("https://gateway.example", "key_….secret").build()?;
//! let order = client
//!     .create_order(&NewOrder::new(Decimal::new(1234, 2), "CNY".parse()?, "TABLE-7"))
//!     .await?;
//! println!("show this QR: {}", order.qr_payload);
//! let done = client.wait_for_payment(&order.id, Duration::from_secs(120)).await?;
//! assert!(matches!(done.status, OrderStatus::Paid | OrderStatus::Expired | OrderStatus::Pending));
//! # Ok(()) }
//! ```
//!
//! - Money is `rust_decimal::Decimal` with a [`Currency`], never a float.
//! - Every mutating call carries an `Idempotency-Key` made once per call and reused on
//!   its retries, so retrying is always safe ([`RetryPolicy`]).
//! - Errors are one enum ([`Error`]) whose [`ErrorKind`] mirrors the gateway's codes.
//! - [`webhooks`] verifies the gateway's signed deliveries; [`lint`] explains a bad QR.
//!
//! This crate depends on `qrgate-domain` for the shared wire rules, never on the gateway.
#![warn(missing_docs)]

mod client;
mod error;
mod retry;
pub mod terminal;
mod types;
pub mod webhooks;

pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind};
pub use qrgate_domain::emv::{parse_payload, DataObject, MerchantQr, OrderQr, StaticQr};
pub use qrgate_domain::emv_lint::{lint, Problem};
pub use qrgate_domain::tips::{FeePercent, TipPolicy};
pub use qrgate_domain::{Currency, Money};
pub use retry::RetryPolicy;
pub use types::{
    Account, CheckoutSession, CheckoutStatus, LineItem, ListOrders, NewCheckoutSession, NewOrder,
    NewReward, Order, OrderEvent, OrderStatus, Page, Payout, Refund, Reward, SettlementReport,
    StatementLine, StaticCode, TipSettings, WebhookDelivery,
};
