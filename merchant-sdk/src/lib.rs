//! Rust client for qrgate's merchant API (orders, QR codes, accounts). It depends on
//! `qrgate-domain` for the shared wire rules and never on the gateway itself.
//!
//! The typed client and the `cashier` CLI are built in their own issue; the domain
//! types (money, currencies, EMV payloads, webhook signatures) are re-exported here so
//! merchant servers can already verify the gateway's webhooks and parse payloads.

pub use qrgate_domain::{emv, money, signing, Currency, Money};
