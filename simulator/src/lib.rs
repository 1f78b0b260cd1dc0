//! The simulator plays both sides of the counter against a running gateway: cashiers
//! (through the merchant SDK) and customers' wallets (signing every request). It is the
//! demo and the load test, and it ends every load run by proving the ledger whole.
//!
//! - [`wallet`]: the signing wallet client (the integration tests use it too).
//! - [`scenario`]: the seeded, deterministic plan of visits.
//! - [`setup`]: merchants, wallets and funded customers, through the API.
//! - [`load`]: open-loop load, expected answers checked, reconciliation at the end.
//! - [`report`]: the JSON report and the latency plot.
//! - [`demo`]: the narrated walk-through.
//! - [`chaos`]: replicas killed, connections cut and the database restarted under load.

pub mod chaos;
pub mod demo;
pub mod hook_sink;
pub mod load;
pub mod report;
pub mod retry_budget;
pub mod scenario;
pub mod setup;
pub mod wallet;
