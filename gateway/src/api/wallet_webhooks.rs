//! Events for wallet providers: where an operator points a wallet's events
//! (`PUT`/`DELETE /v1/admin/wallets/{id}/webhook`), and the wallet's own view of them,
//! signed like every wallet call (`GET /v1/wallets/{wallet_id}/webhooks/deliveries`,
//! `POST …/deliveries/{id}/retry`). What the events say: `crate::wallet_events`.

use crate::{
    api::{
        wallet::{claim_message, signed_get, signed_post},
        webhooks::{deliveries_page, requeue, DeliveriesQuery, EventsOf},
    },
    auth::Admin,
    error::{ApiError, ApiResult},
    http::json_body,
    sealed::SecretKind,
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use qrgate_domain::signing::SigningSecret;
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/wallets/{wallet_id}/webhooks/deliveries",
        crate::http::get().to(deliveries),
    )
    .route(
        "/v1/wallets/{wallet_id}/webhooks/deliveries/{id}/retry",
        web::post().to(retry),
    )
    .route("/v1/admin/wallets/{id}/webhook", web::put().to(set_webhook))
    .route(
        "/v1/admin/wallets/{id}/webhook",
        web::delete().to(remove_webhook),
    )
    .route(
        "/v1/admin/wallets/{id}/webhook/secret",
        web::post().to(rotate_secret),
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookRequest {
    url: String,
}

/// Points a wallet's events at `url`. The first time, a signing secret is made and shown
/// in this answer only; later calls move the URL and keep the secret (`rotate_secret`
/// changes it).
async fn set_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: WebhookRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    crate::api::admin::check_webhook_url("url", &body.url, state.settings.allow_private_webhooks)?;
    let wallet_id = path.into_inner();
    let secret = SigningSecret::generate();
    let sealed =
        state
            .settings
            .secrets
            .seal_signing_secret(SecretKind::WalletWebhook, &wallet_id, &secret);
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // The secret is kept when there is one: `created` says whether this call made it.
    let row = tx
        .query_opt(
            "UPDATE wallets w SET webhook_url = $2, webhook_secret = coalesce(w.webhook_secret, $3)
             FROM (SELECT id, webhook_secret IS NULL AS created FROM wallets WHERE id = $1 FOR NO KEY UPDATE) before
             WHERE w.id = before.id RETURNING before.created",
            &[&wallet_id, &body.url, &sealed],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    let created: bool = row.get(0);
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, secret_created = created, "wallet webhook set");
    Ok(HttpResponse::Ok().json(json!({
        "wallet_id": wallet_id,
        "webhook_url": body.url,
        "webhook_secret": created.then(|| secret.expose().to_owned()),
    })))
}

/// Stops a wallet's events (those queued fail at their next attempt) and forgets its
/// secret: setting a URL again makes a new one.
async fn remove_webhook(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let wallet_id = path.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    tx.query_opt(
        "UPDATE wallets SET webhook_url = NULL, webhook_secret = NULL, webhook_secret_previous = NULL,
                            webhook_secret_previous_until = NULL
         WHERE id = $1 RETURNING id",
        &[&wallet_id],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("wallet"))?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%wallet_id, "wallet webhook removed");
    Ok(HttpResponse::Ok()
        .json(json!({"wallet_id": wallet_id, "webhook_url": null, "webhook_secret": null})))
}

/// How long the previous secret keeps signing after a rotation (as for merchants).
const ROTATION_OVERLAP_HOURS: i32 = 24;

/// A new secret signs the wallet's events from now on, shown in this answer only; the
/// old one signs beside it for a day. A wallet without a webhook has no secret: 404.
async fn rotate_secret(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    crate::http::empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let wallet_id = path.into_inner();
    let secret = SigningSecret::generate();
    let sealed =
        state
            .settings
            .secrets
            .seal_signing_secret(SecretKind::WalletWebhook, &wallet_id, &secret);
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE wallets SET webhook_secret_previous = webhook_secret, webhook_secret = $2,
                    webhook_secret_previous_until = now() + make_interval(hours => $3)
             WHERE id = $1 AND webhook_secret IS NOT NULL RETURNING webhook_secret_previous_until",
            &[&wallet_id, &sealed, &ROTATION_OVERLAP_HOURS],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("wallet webhook"))?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(%wallet_id, "wallet webhook secret rotated");
    Ok(HttpResponse::Created().json(json!({
        "webhook_secret": secret.expose(),
        "previous_secret_signs_until": crate::http::timestamp(row.get(0)),
    })))
}

async fn deliveries(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    query: web::Query<DeliveriesQuery>,
) -> ApiResult<HttpResponse> {
    let (call, client) = signed_get(&state, &req, &path).await?;
    let page = deliveries_page(&state, &client, EventsOf::Wallet(&call.wallet_id), &query).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Queues one of the wallet's events again now. The very same signed message sent
/// again gets the same answer; the body is `{}`.
async fn retry(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (wallet_id, event_id) = path.into_inner();
    let post = signed_post(&state, &req, payload, &wallet_id).await?;
    let empty = crate::http::no_fields(&post.body);
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = claim_message(&tx, &post.call, &post.message_sha256, false).await? {
        return Ok(stored);
    }
    if let Err(e) = empty {
        tx.commit().await?; // the webhook-id is spent
        return Err(e);
    }
    let body = requeue(&tx, EventsOf::Wallet(&post.call.wallet_id), &event_id).await?;
    tx.execute(
        "UPDATE wallet_messages SET http_status = 200, response = $3 WHERE wallet_id = $1 AND message_id = $2",
        &[&post.call.wallet_id, &post.call.message_id, &body],
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}
