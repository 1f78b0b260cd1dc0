//! Payouts (`POST /v1/payouts`, scope `refunds`): from the merchant's settlement account
//! to a customer account the operator allowed for it; idempotent on `payout_reference`.

use crate::{
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{account_id_field, currency_field, json_body, money_field, sha256, timestamp},
    idempotency::{self, Idempotency},
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{ids, money::format_minor, Currency};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/payouts", web::post().to(payout))
        .route("/v1/payouts", crate::http::get().to(list_payouts));
}

const PAYOUT_REFERENCE_CHARS_MAX: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayoutRequest {
    to_account_id: String,
    amount: String,
    currency: String,
    payout_reference: String,
}

async fn payout(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Refunds)?;
    let body: PayoutRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let currency = currency_field("currency", &body.currency)?;
    let amount = money_field("amount", &body.amount, currency)?;
    let reference = &body.payout_reference;
    if reference.is_empty()
        || reference.len() > PAYOUT_REFERENCE_CHARS_MAX
        || !reference.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(ApiError::invalid(
            "payout_reference",
            "must be 1 to 64 printable ASCII characters",
        ));
    }
    account_id_field("to_account_id", &body.to_account_id)?;
    let request = json!({"to_account_id": body.to_account_id, "amount": amount.minor(), "currency": currency, "payout_reference": reference});
    let request_sha256 = sha256(&[serde_json::to_vec(&request)
        .expect("JSON serializes")
        .as_slice()]);
    let idem =
        Idempotency::from_request(&req, &merchant.merchant_id, "POST /v1/payouts", &request)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &merchant.merchant_id,
        &ids::mint("po"),
        reference,
        &request_sha256,
        &body.to_account_id,
        &amount.minor(),
        &currency.code(),
    ];
    let sql = "SELECT * FROM payout($1, $2, $3, $4, $5, $6, $7)";
    idempotency::ledger_call(&state, idem, sql, &params, payout_json).await
}

fn payout_json(row: &tokio_postgres::Row) -> ApiResult<Value> {
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    Ok(json!({
        "id": row.get::<_, &str>("payout_id"),
        "status": "succeeded",
        "to_account_id": row.get::<_, &str>("to_account_id"),
        "amount": format_minor(row.get("amount_minor"), currency),
        "currency": currency,
        "payout_reference": row.get::<_, &str>("payout_reference"),
        "created_at": timestamp(row.get::<_, DateTime<Utc>>("created_at")),
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The merchant's payouts, newest first (each made; refused ones are the answers to
/// their own requests). Scope `refunds`, the scope that makes them.
async fn list_payouts(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Refunds)?;
    let page = crate::http::page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, after_at, after_id) = (page.limit, page.after_at, page.after_id);
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id AS payout_id, to_account_id, amount_minor, currency, payout_reference, created_at FROM payouts
             WHERE merchant_id = $1 AND outcome = 'succeeded'
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4",
            &[&merchant.merchant_id, &after_at, &after_id, &(limit + 1)],
        )
        .await?;
    let page = crate::http::page_json(
        &rows,
        limit,
        |row| payout_json(row).expect("stored currencies are known"),
        |last| crate::http::encode_cursor(last.get("created_at"), last.get("payout_id")),
    );
    Ok(HttpResponse::Ok().json(page))
}
