//! The HTTP API, one module per caller (docs/contract.md §2, §6).

pub mod admin;
pub mod campaigns;
pub mod checkout;
pub mod desk;
pub mod health;
pub mod keys;
pub mod operators;
pub mod orders;
pub mod pages;
pub mod payouts;
pub mod reconciliation;
pub mod refunds;
pub mod reports;
pub mod rewards;
pub mod risk;
pub mod second_factors;
pub mod statements;
pub mod static_codes;
pub mod tips;
pub mod wallet;
pub mod wallet_webhooks;
pub mod webhooks;

use actix_web::web;

/// A shop's live things of one kind (`count_sql`, its `$1` the merchant), counted under a
/// lock on the shop's row that holds until `tx` ends: a herd of creations gets exactly
/// the room left under a cap. NO KEY UPDATE: the shop's sales (their foreign keys hold
/// the row FOR KEY SHARE) go on meanwhile. None: no such merchant.
pub async fn shop_live_count(
    tx: &deadpool_postgres::Transaction<'_>,
    merchant_id: &str,
    count_sql: &str,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let shop = tx
        .query_opt(
            "SELECT 1 FROM merchants WHERE id = $1 FOR NO KEY UPDATE",
            &[&merchant_id],
        )
        .await?;
    if shop.is_none() {
        return Ok(None);
    }
    Ok(Some(tx.query_one(count_sql, &[&merchant_id]).await?.get(0)))
}

/// A cap on live things refused (`422 limit_exceeded`): who holds them, the cap, and how
/// to make room. One wording for the shop's keys, static codes and rewards.
pub fn live_cap_reached(
    holder: &str,
    max: i64,
    things: &str,
    remedy: &str,
) -> crate::error::ApiError {
    crate::error::ApiError::new(
        crate::error::ErrorCode::LimitExceeded,
        format!("{holder} has at most {max} live {things}; {remedy}"),
    )
}

/// Every route. actix tries them in this order, each dynamic path by a regular
/// expression: the sale's own routes (orders, wallet) come first, so a sale's four
/// requests are not matched against every admin route first (that was ~8% of the
/// gateway's CPU under load). No two routes here overlap, so the order changes nothing else.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(orders::routes)
        .configure(wallet::routes)
        .configure(wallet_webhooks::routes)
        .configure(checkout::routes)
        .configure(static_codes::routes)
        .configure(pages::routes)
        .configure(keys::routes)
        .configure(tips::routes)
        .configure(health::routes)
        .configure(admin::routes)
        .configure(campaigns::routes)
        .configure(operators::routes)
        .configure(second_factors::routes)
        .configure(desk::routes)
        .configure(risk::routes)
        .configure(crate::openapi::routes)
        .configure(reconciliation::routes)
        .configure(refunds::routes)
        .configure(payouts::routes)
        .configure(reports::routes)
        .configure(rewards::routes)
        .configure(webhooks::routes);
}
