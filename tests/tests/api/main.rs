//! Black-box integration tests: the real gateway on a real port, a fresh PostgreSQL
//! database per test, real signatures. Every test ends with the ledger invariants
//! checked (`TestApp`'s `Drop`).

mod admin;
mod admission;
mod browser;
mod campaigns;
mod cashier;
mod certificates;
mod checkout;
mod concurrency;
mod conformance;
mod credentials;
mod cross_border;
mod desk;
mod faults;
mod formulas;
mod helpers;
mod https;
mod idempotency;
mod managing;
mod metrics;
mod migrations;
mod movements;
mod openapi;
mod openapi_property;
mod operators;
mod orders;
mod pages;
mod payments;
mod pg_tls;
mod points;
mod promotions;
mod rate_limits;
mod refunds;
mod reports;
mod risk;
mod sdk;
mod second_factor;
mod secrets;
mod shutdown;
mod simulator;
mod slow_clients;
mod static_codes;
mod tills;
mod wallet_security;
mod webhooks;
