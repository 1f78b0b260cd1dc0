//! The merchant's view of its webhooks (scope `reports`): recent deliveries and their
//! state, retrying one, and rotating the signing secret.

use crate::{
    auth::{Admin, Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{empty_body, encode_cursor, page_ask, page_json, timestamp},
    sealed::SecretKind,
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{ids, signing::SigningSecret};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/webhooks/deliveries", crate::http::get().to(deliveries))
        .route("/v1/webhooks/deliveries/{id}/retry", web::post().to(retry))
        .route("/v1/webhooks/secret", web::post().to(rotate_own_secret))
        .route(
            "/v1/admin/merchants/{id}/webhook-secret",
            web::post().to(rotate_secret_as_admin),
        );
}

/// How long the previous secret keeps signing after a rotation.
const ROTATION_OVERLAP_HOURS: i32 = 24;

async fn deliveries(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<DeliveriesQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    let client = state.pool.get().await?;
    let page = deliveries_page(
        &state,
        &client,
        EventsOf::Merchant(&merchant.merchant_id),
        &query,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Whose events: a merchant's (its orders and refunds) or a wallet's (its customers').
#[derive(Clone, Copy)]
pub(crate) enum EventsOf<'a> {
    Merchant(&'a str),
    Wallet(&'a str),
}

impl EventsOf<'_> {
    fn column_and_id(&self) -> (&'static str, &str) {
        match self {
            EventsOf::Merchant(id) => ("merchant_id", id),
            EventsOf::Wallet(id) => ("wallet_id", id),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// One page of a recipient's events and their delivery state, newest first.
pub(crate) async fn deliveries_page(
    state: &AppState,
    client: &impl deadpool_postgres::GenericClient,
    of: EventsOf<'_>,
    query: &DeliveriesQuery,
) -> ApiResult<serde_json::Value> {
    let page = page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, at, id) = (page.limit, page.after_at, page.after_id);
    let (column, owner) = of.column_and_id();
    let rows = client
        .query(
            &format!(
                "SELECT id, type, object_id, status, attempts, last_http_status, last_error, next_attempt_at,
                        last_attempt_at, delivered_at, created_at
                 FROM webhook_events WHERE {column} = $1
                   AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            &[&owner, &at, &id, &(limit + 1)],
        )
        .await?;
    let item = |r: &tokio_postgres::Row| {
        let pending = r.get::<_, &str>(3) == "pending";
        json!({
            "id": r.get::<_, &str>(0),
            "type": r.get::<_, &str>(1),
            "object_id": r.get::<_, &str>(2),
            "status": r.get::<_, &str>(3),
            "attempts": r.get::<_, i32>(4),
            "last_http_status": r.get::<_, Option<i16>>(5),
            "last_error": r.get::<_, Option<&str>>(6),
            "next_attempt_at": pending.then(|| timestamp(r.get(7))),
            "last_attempt_at": r.get::<_, Option<DateTime<Utc>>>(8).map(timestamp),
            "delivered_at": r.get::<_, Option<DateTime<Utc>>>(9).map(timestamp),
            "created_at": timestamp(r.get(10)),
        })
    };
    Ok(page_json(&rows, limit, item, |last| {
        encode_cursor(last.get(10), last.get(0))
    }))
}

/// Puts an event back in the queue now (delivered ones too: the merchant asked).
async fn retry(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let client = state.pool.get().await?;
    let requeued = requeue(&client, EventsOf::Merchant(&merchant.merchant_id), &path).await?;
    Ok(HttpResponse::Ok().json(requeued))
}

/// Queues one of the recipient's events for delivery again now (delivered ones too:
/// the recipient asked); another's event is 404 like a missing one.
pub(crate) async fn requeue(
    client: &impl deadpool_postgres::GenericClient,
    of: EventsOf<'_>,
    event_id: &str,
) -> ApiResult<serde_json::Value> {
    if !ids::is_gateway_id(event_id) {
        return Err(ApiError::not_found("webhook event"));
    }
    let (column, owner) = of.column_and_id();
    let row = client
        .query_opt(
            &format!(
                "UPDATE webhook_events SET status = 'pending', next_attempt_at = now(), attempts = 0
                 WHERE id = $1 AND {column} = $2 RETURNING id, status"
            ),
            &[&event_id, &owner],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("webhook event"))?;
    Ok(json!({"id": row.get::<_, &str>(0), "status": row.get::<_, &str>(1)}))
}

async fn rotate_own_secret(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let rotated = rotate(&state, &tx, &merchant.merchant_id).await?;
    tx.commit().await?;
    state.credentials.forget_merchant(&merchant.merchant_id);
    Ok(rotated)
}

async fn rotate_secret_as_admin(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let rotated = rotate(&state, &tx, &path).await?;
    admin
        .commit(tx, actix_web::http::StatusCode::CREATED)
        .await?;
    state.credentials.forget_merchant(path.as_str());
    Ok(rotated)
}

/// A new secret signs from now on; the old one also signs for the overlap (once `tx`
/// commits; the caller then drops the cached merchant).
async fn rotate(
    state: &AppState,
    tx: &deadpool_postgres::Transaction<'_>,
    merchant_id: &str,
) -> ApiResult<HttpResponse> {
    let secret = SigningSecret::generate();
    let row = tx
        .query_opt(
            "UPDATE merchants SET webhook_secret_previous = webhook_secret, webhook_secret = $2,
                    webhook_secret_previous_until = now() + make_interval(hours => $3)
             WHERE id = $1 RETURNING webhook_secret_previous_until",
            &[
                &merchant_id,
                &state.settings.secrets.seal_signing_secret(
                    SecretKind::MerchantWebhook,
                    merchant_id,
                    &secret,
                ),
                &ROTATION_OVERLAP_HOURS,
            ],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("merchant"))?;
    tracing::info!(%merchant_id, "webhook secret rotated");
    Ok(HttpResponse::Created().json(json!({
        "webhook_secret": secret.expose(),
        "previous_secret_signs_until": timestamp(row.get(0)),
    })))
}
