//! The operator's risk settings (`/v1/admin/risk-limits`, `/v1/admin/wallets/{id}/sca`):
//! the limits on money leaving customer accounts, per currency, and each wallet's
//! strong-customer-authentication threshold and allowance. The rules themselves run
//! inside the ledger functions (`migrations/functions/risk.sql`), under the account's
//! counters row, so they hold exactly across replicas.

use crate::{
    auth::Admin,
    error::{ApiError, ApiResult},
    http::{currency_field, empty_body, json_body, timestamp},
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use qrgate_domain::{
    money::{format_minor, parse_minor},
    Currency, Money,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/admin/risk-limits",
        crate::http::get().to(list_risk_limits),
    )
    .route(
        "/v1/admin/risk-limits/{currency}",
        web::put().to(set_risk_limits),
    )
    .route(
        "/v1/admin/wallets/{id}/sca",
        crate::http::get().to(list_sca),
    )
    .route(
        "/v1/admin/wallets/{id}/sca/{currency}",
        web::put().to(set_sca),
    )
    .route(
        "/v1/admin/wallets/{id}/sca/{currency}",
        web::delete().to(remove_sca),
    )
    .route(
        "/v1/admin/wallets/{id}/cross-provider-transfers",
        crate::http::get().to(list_cross_provider),
    )
    .route(
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        web::put().to(set_cross_provider),
    )
    .route(
        "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        web::delete().to(remove_cross_provider),
    );
}

/// `per_minute_count_max` is bounded: each account keeps that many recent times.
const PER_MINUTE_COUNT_MAX: i32 = 100;

/// Every limit of one currency; an absent or null field is no limit.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RiskLimitsRequest {
    transaction_max: Option<String>,
    daily_amount_max: Option<String>,
    daily_count_max: Option<i32>,
    per_minute_count_max: Option<i32>,
    mfa_daily_amount_above: Option<String>,
}

/// The limits as stored: minor units of their currency.
struct RiskLimits {
    transaction_max_minor: Option<i64>,
    daily_amount_max_minor: Option<i64>,
    daily_count_max: Option<i32>,
    per_minute_count_max: Option<i32>,
    mfa_daily_amount_above_minor: Option<i64>,
}

impl RiskLimits {
    fn parse(r: &RiskLimitsRequest, currency: Currency) -> ApiResult<Self> {
        let amount = |field: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| Money::parse(t, currency).map(Money::minor))
                .transpose()
                .map_err(|e| ApiError::invalid(field, e))
        };
        let count = |field: &str, n: Option<i32>, max: i32| match n {
            Some(n) if !(1..=max).contains(&n) => Err(ApiError::invalid(
                field,
                format!("must be a whole number from 1 to {max}"),
            )),
            n => Ok(n),
        };
        Ok(RiskLimits {
            transaction_max_minor: amount("transaction_max", &r.transaction_max)?,
            daily_amount_max_minor: amount("daily_amount_max", &r.daily_amount_max)?,
            daily_count_max: count("daily_count_max", r.daily_count_max, i32::MAX)?,
            per_minute_count_max: count(
                "per_minute_count_max",
                r.per_minute_count_max,
                PER_MINUTE_COUNT_MAX,
            )?,
            mfa_daily_amount_above_minor: amount(
                "mfa_daily_amount_above",
                &r.mfa_daily_amount_above,
            )?,
        })
    }
}

fn risk_limits_json(row: &Row) -> ApiResult<Value> {
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    let amount = |column: &str| {
        row.get::<_, Option<i64>>(column)
            .map(|m| format_minor(m, currency))
    };
    Ok(json!({
        "currency": currency,
        "transaction_max": amount("transaction_max_minor"),
        "daily_amount_max": amount("daily_amount_max_minor"),
        "daily_count_max": row.get::<_, Option<i32>>("daily_count_max"),
        "per_minute_count_max": row.get::<_, Option<i32>>("per_minute_count_max"),
        "mfa_daily_amount_above": amount("mfa_daily_amount_above_minor"),
        "updated_at": timestamp(row.get("updated_at")),
    }))
}

/// Replaces every limit of a currency (a field left out is no limit). Applies to the
/// next movement; today's earlier movements count towards the daily limits.
async fn set_risk_limits(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let currency = currency_field("currency", &path)?;
    let body: RiskLimitsRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let limits = RiskLimits::parse(&body, currency)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "INSERT INTO risk_limits AS l (currency, transaction_max_minor, daily_amount_max_minor, daily_count_max,
                                           per_minute_count_max, mfa_daily_amount_above_minor)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (currency) DO UPDATE SET
                 transaction_max_minor = EXCLUDED.transaction_max_minor,
                 daily_amount_max_minor = EXCLUDED.daily_amount_max_minor,
                 daily_count_max = EXCLUDED.daily_count_max,
                 per_minute_count_max = EXCLUDED.per_minute_count_max,
                 mfa_daily_amount_above_minor = EXCLUDED.mfa_daily_amount_above_minor,
                 updated_at = now()
             RETURNING *",
            &[
                &currency.code(),
                &limits.transaction_max_minor,
                &limits.daily_amount_max_minor,
                &limits.daily_count_max,
                &limits.per_minute_count_max,
                &limits.mfa_daily_amount_above_minor,
            ],
        )
        .await?;
    let body = risk_limits_json(&row)?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(currency = %currency, limits = %body, "risk limits set");
    Ok(HttpResponse::Ok().json(body))
}

async fn list_risk_limits(_: Admin, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    // One row per currency at most: a bounded list.
    let rows = client
        .query("SELECT * FROM risk_limits ORDER BY currency", &[])
        .await?;
    let items = rows
        .iter()
        .map(risk_limits_json)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaRequest {
    threshold: String,
    allowance: String,
}

fn sca_json(row: &Row) -> ApiResult<Value> {
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    Ok(json!({
        "wallet_id": row.get::<_, &str>("wallet_id"),
        "currency": currency,
        "threshold": format_minor(row.get("threshold_minor"), currency),
        "allowance": format_minor(row.get("allowance_minor"), currency),
        "updated_at": timestamp(row.get("updated_at")),
    }))
}

/// Sets a wallet's SCA rule for a currency: a payment or transfer above `threshold`,
/// or one that would take what moved without MFA since the last MFA above `allowance`,
/// needs `customer_authentication: "mfa"`. Zero for both: every movement needs MFA.
async fn set_sca(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (wallet_id, currency) = path.into_inner();
    let currency = currency_field("currency", &currency)?;
    let body: ScaRequest = json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let threshold_minor =
        parse_minor(&body.threshold, currency).map_err(|e| ApiError::invalid("threshold", e))?;
    let allowance_minor =
        parse_minor(&body.allowance, currency).map_err(|e| ApiError::invalid("allowance", e))?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "INSERT INTO wallet_sca_settings (wallet_id, currency, threshold_minor, allowance_minor)
             SELECT id, $2, $3, $4 FROM wallets WHERE id = $1
             ON CONFLICT (wallet_id, currency) DO UPDATE SET
                 threshold_minor = EXCLUDED.threshold_minor, allowance_minor = EXCLUDED.allowance_minor, updated_at = now()
             RETURNING *",
            &[&wallet_id, &currency.code(), &threshold_minor, &allowance_minor],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    let body = sca_json(&row)?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, currency = %currency, threshold_minor, allowance_minor, "SCA rule set");
    Ok(HttpResponse::Ok().json(body))
}

async fn list_sca(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    client
        .query_opt("SELECT 1 FROM wallets WHERE id = $1", &[&path.as_str()])
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    // One row per currency at most: a bounded list.
    let rows = client
        .query(
            "SELECT * FROM wallet_sca_settings WHERE wallet_id = $1 ORDER BY currency",
            &[&path.as_str()],
        )
        .await?;
    let items = rows.iter().map(sca_json).collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// Removes a wallet's SCA rule for a currency: its movements need no MFA from us.
async fn remove_sca(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let (wallet_id, currency) = path.into_inner();
    let currency = currency_field("currency", &currency)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let removed = tx
        .execute(
            "DELETE FROM wallet_sca_settings WHERE wallet_id = $1 AND currency = $2",
            &[&wallet_id, &currency.code()],
        )
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("SCA rule for this wallet and currency"));
    }
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, currency = %currency, "SCA rule removed");
    Ok(HttpResponse::Ok()
        .json(json!({"wallet_id": wallet_id, "currency": currency, "removed": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossProviderRequest {
    transfer_max: String,
}

fn cross_provider_json(row: &Row) -> ApiResult<Value> {
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    Ok(json!({
        "wallet_id": row.get::<_, &str>("wallet_id"),
        "currency": currency,
        "transfer_max": format_minor(row.get("transfer_max_minor"), currency),
        "updated_at": timestamp(row.get("updated_at")),
    }))
}

/// A wallet takes part in transfers to and from other wallets' customers in a currency,
/// each at most `transfer_max` (a transfer across two wallets is held to the smaller of
/// their two maximums, and needs both to take part).
async fn set_cross_provider(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (wallet_id, currency) = path.into_inner();
    let currency = currency_field("currency", &currency)?;
    let body: CrossProviderRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let max = Money::parse(&body.transfer_max, currency)
        .map_err(|e| ApiError::invalid("transfer_max", e))?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "INSERT INTO cross_provider_transfer_limits (wallet_id, currency, transfer_max_minor)
             SELECT id, $2, $3 FROM wallets WHERE id = $1
             ON CONFLICT (wallet_id, currency) DO UPDATE SET
                 transfer_max_minor = EXCLUDED.transfer_max_minor, updated_at = now()
             RETURNING *",
            &[&wallet_id, &currency.code(), &max.minor()],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    let body = cross_provider_json(&row)?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, currency = %currency, transfer_max_minor = max.minor(), "cross-provider transfers allowed");
    Ok(HttpResponse::Ok().json(body))
}

async fn list_cross_provider(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    client
        .query_opt("SELECT 1 FROM wallets WHERE id = $1", &[&path.as_str()])
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    // One row per currency at most: a bounded list.
    let rows = client
        .query(
            "SELECT * FROM cross_provider_transfer_limits WHERE wallet_id = $1 ORDER BY currency",
            &[&path.as_str()],
        )
        .await?;
    let items = rows
        .iter()
        .map(cross_provider_json)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// The wallet stops taking part in a currency: transfers to and from other wallets'
/// customers in it are refused from now on (`transfer_not_allowed`).
async fn remove_cross_provider(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let (wallet_id, currency) = path.into_inner();
    let currency = currency_field("currency", &currency)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let removed = tx
        .execute(
            "DELETE FROM cross_provider_transfer_limits WHERE wallet_id = $1 AND currency = $2",
            &[&wallet_id, &currency.code()],
        )
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found(
            "cross-provider transfer setting for this wallet and currency",
        ));
    }
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, currency = %currency, "cross-provider transfers stopped");
    Ok(HttpResponse::Ok()
        .json(json!({"wallet_id": wallet_id, "currency": currency, "removed": true})))
}
