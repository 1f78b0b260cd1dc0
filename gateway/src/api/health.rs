//! Liveness and readiness, without authentication.

use crate::{
    auth::{digests_equal, sha256_32},
    error::{ApiError, ErrorCode},
    http::header_str,
    metrics::Gauges,
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", crate::http::get().to(healthz))
        .route("/readyz", crate::http::get().to(readyz))
        .route("/metrics", crate::http::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready when the database answers within the pool's wait timeout.
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}

/// Prometheus metrics, for the bearer of `QRGATE_METRICS_TOKEN` (off when it is unset).
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(token) = &state.settings.metrics_token else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "metrics are off: set QRGATE_METRICS_TOKEN",
        ));
    };
    let presented = header_str(&req, "authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !digests_equal(
        &sha256_32(presented.as_bytes()),
        &sha256_32(token.expose().as_bytes()),
    ) {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the metrics token is required: Authorization: Bearer <token>",
        ));
    }
    let status = state.pool.status();
    let client = state.pool.get().await?;
    let depth: i64 = client
        .query_one(
            "SELECT count(*) FROM webhook_events WHERE status = 'pending'",
            &[],
        )
        .await?
        .get(0);
    let gauges = Gauges {
        pool_size: status.size,
        pool_available: status.available,
        pool_waiting: status.waiting,
        webhook_outbox_depth: depth,
        credential_cache_listening: state.credentials.listening(),
        credential_cache_hits: state.credentials.hits(),
        requests_in_flight: state.admission.in_flight(),
        requests_shed: state.admission.shed_total(),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&gauges)))
}
