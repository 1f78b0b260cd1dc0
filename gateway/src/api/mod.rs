//! The HTTP API, one module per caller (docs/contract.md §2, §6).

pub mod admin;
pub mod health;
pub mod operators;
pub mod orders;
pub mod payouts;
pub mod reconciliation;
pub mod refunds;
pub mod reports;
pub mod risk;
pub mod statements;
pub mod wallet;
pub mod webhooks;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .configure(admin::routes)
        .configure(operators::routes)
        .configure(risk::routes)
        .configure(crate::openapi::routes)
        .configure(orders::routes)
        .configure(wallet::routes)
        .configure(reconciliation::routes)
        .configure(refunds::routes)
        .configure(payouts::routes)
        .configure(reports::routes)
        .configure(webhooks::routes);
}
