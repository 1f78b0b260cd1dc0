//! Enrolling and removing second factors (`second_factor`), for operators' named tokens
//! and merchants' keys, and the shop's refund threshold above which a refund needs one.

use crate::{
    auth::{Admin, Merchant, Scope},
    error::{ApiError, ApiResult, ErrorCode},
    http::{empty_body, json_body},
    second_factor::{self, Holder},
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use qrgate_domain::{ids, money::format_minor, Currency};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/second-factor", web::post().to(admin_enroll))
        .route(
            "/v1/admin/second-factor/confirm",
            web::post().to(admin_confirm),
        )
        .route(
            "/v1/admin/tokens/{id}/second-factor",
            web::delete().to(admin_remove),
        )
        .route("/v1/me/second-factor", web::post().to(key_enroll))
        .route("/v1/me/second-factor/confirm", web::post().to(key_confirm))
        .route(
            "/v1/keys/{key_id}/second-factor",
            web::delete().to(key_remove),
        )
        .route(
            "/v1/me/refund-second-factor",
            web::put().to(set_refund_threshold),
        );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundThreshold {
    /// A refund of more than this needs the refunding key's second factor; null: none does.
    /// Required (outer None: left out), so that a body that forgot it clears nothing.
    #[serde(default, deserialize_with = "crate::http::present")]
    above: Option<Option<String>>,
}

fn enrollment_json(enrollment: second_factor::Enrollment) -> HttpResponse {
    HttpResponse::Created().json(json!({
        "secret": enrollment.secret_base32,
        "otpauth_uri": enrollment.otpauth_uri,
        "algorithm": "SHA1",
        "digits": 6,
        "period_seconds": 30,
        "confirmed": false,
    }))
}

fn confirmed_json() -> HttpResponse {
    HttpResponse::Ok().json(json!({"confirmed": true}))
}

/// The named token that calls this enrolls its own factor (shown once: put it in an
/// authenticator app, then confirm with a code).
async fn admin_enroll(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let token_id = named_token(&admin)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let holder = Holder::AdminToken(token_id);
    let enrollment = second_factor::enroll(&tx, &state.settings.secrets, holder, token_id).await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(admin_token_id = %token_id, "second factor enrollment started");
    Ok(enrollment_json(enrollment))
}

async fn admin_confirm(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: Confirmation = json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let token_id = named_token(&admin)?;
    second_factor::confirm(&state, Holder::AdminToken(token_id), &body.code).await?;
    tracing::info!(admin_token_id = %token_id, "second factor confirmed");
    Ok(confirmed_json())
}

/// An operator (role `admin`, with its own second factor) removes another token's
/// factor — a lost phone — so that it can enroll again.
async fn admin_remove(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let token_id = path.into_inner();
    if !ids::is_gateway_id(&token_id) {
        return Err(ApiError::not_found("second factor"));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if !second_factor::remove(&tx, Holder::AdminToken(&token_id)).await? {
        return Err(ApiError::not_found("second factor"));
    }
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(admin_token_id = %token_id, "second factor removed");
    Ok(HttpResponse::Ok().json(json!({"id": token_id, "second_factor": false})))
}

fn named_token(admin: &Admin) -> ApiResult<&str> {
    if admin.actor == "bootstrap" {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the bootstrap token cannot have a second factor: use a named admin token",
        ));
    }
    Ok(&admin.actor)
}

/// The key that calls this enrolls its own factor.
async fn key_enroll(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let label = format!("{}/{}", merchant.profile.name, merchant.key_id);
    let client = state.pool.get().await?;
    let holder = Holder::ApiKey(&merchant.key_id);
    let enrollment =
        second_factor::enroll(&client, &state.settings.secrets, holder, &label).await?;
    tracing::info!(merchant_id = %merchant.merchant_id, key_id = %merchant.key_id, "second factor enrollment started");
    Ok(enrollment_json(enrollment))
}

async fn key_confirm(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: Confirmation = json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    second_factor::confirm(&state, Holder::ApiKey(&merchant.key_id), &body.code).await?;
    tracing::info!(merchant_id = %merchant.merchant_id, key_id = %merchant.key_id, "second factor confirmed");
    Ok(confirmed_json())
}

/// A manager key removes one of its merchant's keys' factors (its own code needed
/// when it has one).
async fn key_remove(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let key_id = path.into_inner();
    let client = state.pool.get().await?;
    let own = client
        .query_opt(
            "SELECT 1 FROM api_keys WHERE id = $1 AND merchant_id = $2",
            &[&key_id, &merchant.merchant_id],
        )
        .await?
        .is_some();
    drop(client);
    if !own {
        return Err(ApiError::not_found("key"));
    }
    own_code_if_enrolled(&state, &merchant, &req).await?;
    let client = state.pool.get().await?;
    if !second_factor::remove(&client, Holder::ApiKey(&key_id)).await? {
        return Err(ApiError::not_found("second factor"));
    }
    tracing::info!(merchant_id = %merchant.merchant_id, %key_id, by = %merchant.key_id, "second factor removed");
    Ok(HttpResponse::Ok().json(json!({"id": key_id, "second_factor": false})))
}

/// The shop's refund threshold, set by a manager key (its own code needed when it has a
/// second factor: a stolen manager key cannot lift the protection by itself).
async fn set_refund_threshold(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let body: RefundThreshold =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let currency = Currency::parse(&merchant.profile.currency).map_err(ApiError::internal_from)?;
    let above = body
        .above
        .ok_or_else(|| ApiError::invalid("above", "is required: an amount, or null for none"))?;
    let above = above
        .as_deref()
        .map(|a| {
            qrgate_domain::money::parse_minor(a, currency)
                .map_err(|e| ApiError::invalid("above", e))
        })
        .transpose()?;
    own_code_if_enrolled(&state, &merchant, &req).await?;
    let client = state.pool.get().await?;
    client
        .execute(
            "UPDATE merchants SET refund_second_factor_above_minor = $2 WHERE id = $1",
            &[&merchant.merchant_id, &above],
        )
        .await?;
    tracing::info!(merchant_id = %merchant.merchant_id, key_id = %merchant.key_id, above_minor = ?above, "refund second-factor threshold set");
    Ok(HttpResponse::Ok().json(json!({
        "refund_second_factor_above": above.map(|a| format_minor(a, currency)),
        "currency": currency,
    })))
}

async fn own_code_if_enrolled(
    state: &AppState,
    merchant: &Merchant,
    req: &HttpRequest,
) -> ApiResult<()> {
    let holder = Holder::ApiKey(&merchant.key_id);
    if second_factor::enrolled(state, holder).await? {
        second_factor::require(state, holder, second_factor::presented(req)).await?;
    }
    Ok(())
}
