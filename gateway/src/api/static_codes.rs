//! Static merchant codes (EMV point of initiation 11): a shop prints one per counter or
//! till and sticks it up; the customer's wallet asks for the amount and pays through
//! `POST /v1/wallets/{id}/payments`, which makes the order and settles it in one call
//! (`pay_order` in migrations/functions/payments.sql). Scope `orders`.

use crate::{
    api::orders::merchant_local_name,
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult, ErrorCode},
    http::{
        currency_field, decode_cursor, empty_body, encode_cursor, json_body, page_json, page_limit,
        timestamp,
    },
    idempotency::{self, Idempotency},
    qr_image,
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use qrgate_domain::{emv::StaticQr, ids, text::AsciiText};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/static-codes", web::post().to(create_static_code))
        .route("/v1/static-codes", crate::http::get().to(list_static_codes))
        .route(
            "/v1/static-codes/{id}",
            crate::http::get().to(get_static_code),
        )
        .route(
            "/v1/static-codes/{id}/qr.svg",
            crate::http::get().to(qr_svg),
        )
        .route(
            "/v1/static-codes/{id}/qr.png",
            crate::http::get().to(qr_png),
        )
        .route(
            "/v1/static-codes/{id}/revoke",
            web::post().to(revoke_static_code),
        );
}

/// A shop's live codes, at most: each is printed and stuck somewhere; more than this
/// is a script gone wrong, not a shop.
pub const STATIC_CODES_PER_MERCHANT_MAX: i64 = 100;

const COLUMNS: &str = "id, name, currency, qr_payload, created_by_key_id, created_at, revoked_at";

fn static_code_json(row: &Row) -> Value {
    json!({
        "id": row.get::<_, &str>(0),
        "name": row.get::<_, &str>(1),
        "currency": row.get::<_, &str>(2),
        "qr_payload": row.get::<_, &str>(3),
        "created_by_key_id": row.get::<_, Option<&str>>(4),
        "created_at": timestamp(row.get(5)),
        "revoked_at": row.get::<_, Option<DateTime<Utc>>>(6).map(timestamp),
    })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewStaticCodeRequest {
    name: String,
    currency: Option<String>,
}

async fn create_static_code(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let body: NewStaticCodeRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let name = AsciiText::<25>::parse(&body.name).map_err(|e| ApiError::invalid("name", e))?;
    let currency = body
        .currency
        .as_deref()
        .map(|c| currency_field("currency", c))
        .transpose()?;
    let request = serde_json::to_value(&body).expect("a request serializes");
    let idem = Idempotency::from_request(
        &req,
        &merchant.merchant_id,
        "POST /v1/static-codes",
        &request,
    )?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = idempotency::earlier_answer(&idem, &tx).await? {
        return Ok(stored);
    }
    let outcome = insert_static_code(&tx, &state, &merchant, name.as_str(), currency)
        .await
        .map(|row| (StatusCode::CREATED, static_code_json(&row)));
    idempotency::finish(idem, tx, outcome).await
}

async fn insert_static_code(
    tx: &deadpool_postgres::Transaction<'_>,
    state: &AppState,
    caller: &Merchant,
    name: &str,
    currency: Option<qrgate_domain::Currency>,
) -> ApiResult<Row> {
    let merchant_id = caller.merchant_id.as_str();
    let merchant = &caller.profile;
    if merchant.blocked {
        return Err(ApiError::new(
            ErrorCode::AccountBlocked,
            format!("merchant {merchant_id} is blocked: it can issue no codes"),
        ));
    }
    // Money settles in the merchant's currency, so a code states that one (tag 53).
    let currency = match currency {
        Some(c) if c.code() != merchant.currency => {
            return Err(ApiError::new(
                ErrorCode::CurrencyMismatch,
                format!(
                    "this merchant settles in {}; its codes must be in it",
                    merchant.currency
                ),
            ))
        }
        Some(c) => c,
        None => qrgate_domain::Currency::parse(&merchant.currency)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("merchant currency: {e}")))?,
    };
    // (The caller's own shop: it exists.)
    let live = super::shop_live_count(
        tx,
        merchant_id,
        "SELECT count(*) FROM static_codes WHERE merchant_id = $1 AND revoked_at IS NULL",
    )
    .await?
    .unwrap_or_default();
    if live >= STATIC_CODES_PER_MERCHANT_MAX {
        return Err(super::live_cap_reached(
            "a shop",
            STATIC_CODES_PER_MERCHANT_MAX,
            "static codes",
            "revoke one first",
        ));
    }
    let code_id = ids::mint("sqr");
    let qr = StaticQr {
        gateway_guid: state.settings.gateway_guid.clone(),
        merchant_id: merchant_id.to_owned(),
        code_token: ids::mint_order_token(),
        mcc: merchant.mcc.clone(),
        currency,
        country: merchant.country.clone(),
        merchant_name: merchant.name.clone(),
        merchant_city: merchant.city.clone(),
        code_id: code_id.clone(),
        terminal_id: Some(name.to_owned()),
        local: merchant_local_name(merchant),
    };
    let payload = qr
        .encode()
        .map_err(|e| ApiError::invalid("name", format!("does not fit the EMV QR: {e}")))?;
    let sql = format!(
        "INSERT INTO static_codes (id, merchant_id, name, currency, qr_payload, created_by_key_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    );
    Ok(tx
        .query_one(
            &sql,
            &[
                &code_id,
                &merchant_id,
                &name,
                &currency.code(),
                &payload,
                &caller.key_id,
            ],
        )
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Revoked codes too (default: only live ones).
    include_revoked: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_static_codes(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    let q = query.into_inner();
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = page_limit(q.limit, limits.page_size_default, limits.page_size_max)?;
    let (after_at, after_id) = after.unzip();
    let sql = format!(
        "SELECT {COLUMNS} FROM static_codes
         WHERE merchant_id = $1 AND ($2 OR revoked_at IS NULL)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &sql,
            &[
                &merchant.merchant_id,
                &q.include_revoked.unwrap_or(false),
                &after_at,
                &after_id,
                &(limit + 1),
            ],
        )
        .await?;
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, static_code_json, |last| {
            encode_cursor(last.get(5), last.get(0))
        })),
    )
}

async fn fetch_static_code(
    client: &impl GenericClient,
    merchant_id: &str,
    code_id: &str,
) -> ApiResult<Row> {
    if !ids::is_gateway_id(code_id) {
        return Err(ApiError::not_found("static code"));
    }
    let sql = format!("SELECT {COLUMNS} FROM static_codes WHERE id = $1 AND merchant_id = $2");
    client
        .query_opt(&sql, &[&code_id, &merchant_id])
        .await?
        .ok_or_else(|| ApiError::not_found("static code"))
}

async fn get_static_code(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let row = fetch_static_code(&client, &merchant.merchant_id, &path).await?;
    Ok(HttpResponse::Ok().json(static_code_json(&row)))
}

/// Revoked codes are refused from then on (`static_code_revoked`); revoking again
/// answers the code as it is.
async fn revoke_static_code(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let code_id = path.into_inner();
    let client = state.pool.get().await?;
    // Revoked here, or already (then as it is), or not this shop's: one statement for
    // the usual case.
    let sql = format!(
        "UPDATE static_codes SET revoked_at = now()
         WHERE id = $1 AND merchant_id = $2 AND revoked_at IS NULL RETURNING {COLUMNS}"
    );
    let row = match client
        .query_opt(&sql, &[&code_id, &merchant.merchant_id])
        .await?
    {
        Some(row) => {
            tracing::info!(static_code_id = %code_id, merchant_id = %merchant.merchant_id, "static code revoked");
            row
        }
        None => fetch_static_code(&client, &merchant.merchant_id, &code_id).await?,
    };
    Ok(HttpResponse::Ok().json(static_code_json(&row)))
}

async fn code_image(
    merchant: &Merchant,
    state: &AppState,
    code_id: &str,
) -> ApiResult<qrcodegen::QrCode> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let row = fetch_static_code(&client, &merchant.merchant_id, code_id).await?;
    qr_image::encode(row.get(3)).map_err(ApiError::internal)
}

async fn qr_svg(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code_image(&merchant, &state, &path).await?;
    Ok(qr_image::svg_response(&code))
}

async fn qr_png(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = code_image(&merchant, &state, &path).await?;
    qr_image::png_response(&code)
}
