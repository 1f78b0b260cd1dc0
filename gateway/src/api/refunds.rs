//! Refunds (`POST /v1/orders/{id}/refunds`, scope `refunds`): all or part of a paid
//! order, each leg returned cumulatively by `refund_order` in one database call.

use crate::{
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{json_body, money_field, sha256, timestamp},
    idempotency::{self, Idempotency},
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{ids, money::format_minor, Currency};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/orders/{id}/refunds", web::post().to(refund))
        .route(
            "/v1/orders/{id}/refunds",
            crate::http::get().to(list_refunds),
        );
}

/// Refunds one order takes at most (so its list is one page).
const REFUNDS_PER_ORDER_MAX: i32 = 50;
const REFUND_REFERENCE_CHARS_MAX: usize = 64;
const REASON_CHARS_MAX: usize = 500;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    amount: String,
    refund_reference: String,
    reason: Option<String>,
}

async fn refund(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Refunds)?;
    let order_id = path.into_inner();
    let body: RefundRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    // Orders are in the merchant's currency, so refunds are too.
    let currency = Currency::parse(&merchant.profile.currency).map_err(ApiError::internal_from)?;
    let amount = money_field("amount", &body.amount, currency)?;
    let reference = &body.refund_reference;
    if reference.is_empty()
        || reference.len() > REFUND_REFERENCE_CHARS_MAX
        || !reference.bytes().all(|b| (0x20..=0x7e).contains(&b))
    {
        return Err(ApiError::invalid(
            "refund_reference",
            "must be 1 to 64 printable ASCII characters",
        ));
    }
    if body
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > REASON_CHARS_MAX)
    {
        return Err(ApiError::invalid(
            "reason",
            format!("must be at most {REASON_CHARS_MAX} characters"),
        ));
    }
    if !ids::is_gateway_id(&order_id) {
        return Err(ApiError::not_found("order"));
    }
    approved_if_large(
        &state,
        &merchant,
        &req,
        &order_id,
        reference,
        amount.minor(),
    )
    .await?;
    let request = json!({"order_id": order_id, "amount": amount.minor(), "refund_reference": reference, "reason": body.reason});
    let request_sha256 = sha256(&[serde_json::to_vec(&request)
        .expect("JSON serializes")
        .as_slice()]);
    let idem = Idempotency::from_request(
        &req,
        &merchant.merchant_id,
        "POST /v1/orders/{id}/refunds",
        &request,
    )?;

    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
        &merchant.merchant_id,
        &order_id,
        &ids::mint("rfd"),
        reference,
        &request_sha256,
        &amount.minor(),
        &body.reason,
        &REFUNDS_PER_ORDER_MAX,
        &i32::from(rand::random::<u16>()),
        &merchant.key_id,
    ];
    let sql = "SELECT * FROM refund_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    idempotency::ledger_call(&state, idem, sql, &params, refund_json).await
}

/// A refund above the shop's threshold needs the refunding key's second factor — unless
/// it is a retry of a refund already made (its stored answer is given again).
async fn approved_if_large(
    state: &AppState,
    merchant: &Merchant,
    req: &HttpRequest,
    order_id: &str,
    reference: &str,
    amount_minor: i64,
) -> ApiResult<()> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT m.refund_second_factor_above_minor,
                    EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = $2 AND r.refund_reference = $3)
             FROM merchants m WHERE m.id = $1",
            &[&merchant.merchant_id, &order_id, &reference],
        )
        .await?;
    drop(client);
    let above: Option<i64> = row.get(0);
    let retry: bool = row.get(1);
    match above {
        Some(above) if amount_minor > above && !retry => {
            let holder = crate::second_factor::Holder::ApiKey(&merchant.key_id);
            crate::second_factor::require(state, holder, crate::second_factor::presented(req)).await
        }
        _ => Ok(()),
    }
}

fn refund_json(row: &tokio_postgres::Row) -> ApiResult<Value> {
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    Ok(json!({
        "id": row.get::<_, &str>("refund_id"),
        "status": "succeeded",
        "amount": format_minor(row.get("amount_minor"), currency),
        "currency": currency,
        "order_status": row.get::<_, &str>("order_status"),
        "reason": row.get::<_, Option<&str>>("reason"),
        // What this refund gave back of the tip and the convenience fee (in proportion
        // to the amount refunded), on top of the amount.
        "tip_refunded": format_minor(row.get::<_, Option<i64>>("tip_minor").unwrap_or(0), currency),
        "convenience_fee_refunded": format_minor(
            row.get::<_, Option<i64>>("convenience_fee_minor").unwrap_or(0),
            currency
        ),
        "created_at": timestamp(row.get::<_, DateTime<Utc>>("created_at")),
    }))
}

/// An order's refunds, oldest first: each one made (refused attempts are the answers to
/// their own requests, not refunds). Scope `orders`: the till shows them with the order.
async fn list_refunds(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    // The order first: another merchant's order is 404 like a missing one.
    crate::api::orders::fetch_order(&client, &merchant.merchant_id, &path).await?;
    let rows = client
        .query(
            "SELECT r.id AS refund_id, o.currency, r.amount_minor, r.order_status_after AS order_status, r.reason,
                    r.created_at, r.refund_reference, r.created_by_key_id, r.tip_returned_minor AS tip_minor,
                    r.convenience_fee_returned_minor AS convenience_fee_minor
             FROM refunds r JOIN orders o ON o.id = r.order_id
             WHERE r.order_id = $1 AND r.outcome = 'succeeded' ORDER BY r.created_at, r.id LIMIT $2",
            &[&&*path, &i64::from(REFUNDS_PER_ORDER_MAX)],
        )
        .await?;
    let items = rows
        .iter()
        .map(|row| {
            let mut refund = refund_json(row)?;
            refund["refund_reference"] = json!(row.get::<_, &str>("refund_reference"));
            refund["created_by_key_id"] = json!(row.get::<_, Option<&str>>("created_by_key_id"));
            Ok(refund)
        })
        .collect::<ApiResult<Vec<Value>>>()?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}
