//! The operators themselves (`/v1/admin/tokens`, `/v1/admin/audit`): named admin
//! tokens, so each operator acts under their own revocable identity, and the audit log
//! of every admin action (who, what, when, with which outcome); blocking customer
//! accounts and merchants.

use crate::{
    auth::{sha256_32, Admin},
    error::{ApiError, ApiResult},
    http::{empty_body, json_body, page_json, page_limit, timestamp},
    roles::Role,
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use qrgate_domain::{ids, text::PlainText};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/tokens", web::post().to(create_token))
        .route("/v1/admin/tokens/{id}", web::delete().to(revoke_token))
        .route("/v1/admin/audit", crate::http::get().to(audit_log))
        .route(
            "/v1/admin/accounts/{id}/block",
            blocking(Blockable::CustomerAccount, true),
        )
        .route(
            "/v1/admin/accounts/{id}/unblock",
            blocking(Blockable::CustomerAccount, false),
        )
        .route(
            "/v1/admin/merchants/{id}/block",
            blocking(Blockable::Merchant, true),
        )
        .route(
            "/v1/admin/merchants/{id}/unblock",
            blocking(Blockable::Merchant, false),
        );
}

const TOKEN_NAME_CHARS_MAX: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    name: String,
    /// `admin` (the default), `support`, `risk` or `finance`: see `roles`.
    #[serde(default)]
    role: Option<String>,
}

/// Issues a named admin token. The secret is shown once; only its SHA-256 is stored.
async fn create_token(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: NewTokenRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let name = PlainText::<TOKEN_NAME_CHARS_MAX>::parse(body.name.trim())
        .map_err(|e| ApiError::invalid("name", e))?;
    let name = name.as_str();
    let role = match body.role.as_deref() {
        None => Role::Admin,
        Some(text) => Role::parse(text)
            .ok_or_else(|| ApiError::invalid("role", "must be admin, support, risk or finance"))?,
    };
    let token_id = ids::mint("adm");
    // 160 bits from the CSPRNG, as for merchant API keys.
    let secret = ids::random_base32(32);
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "INSERT INTO admin_tokens (id, name, secret_sha256, created_by, role)
             VALUES ($1, $2, $3, $4, $5) RETURNING created_at",
            &[
                &token_id,
                &name,
                &sha256_32(secret.as_bytes()).as_slice(),
                &admin.actor,
                &role.as_str(),
            ],
        )
        .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(%token_id, role = role.as_str(), created_by = %admin.actor, "admin token issued");
    Ok(HttpResponse::Created().json(json!({
        "id": token_id,
        "name": name,
        "role": role.as_str(),
        "token": format!("{token_id}.{secret}"),
        "created_by": admin.actor,
        "created_at": timestamp(row.get(0)),
    })))
}

/// Revokes a named admin token at once (idempotent: revoking again keeps the first time).
async fn revoke_token(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let token_id = path.into_inner();
    if !ids::is_gateway_id(&token_id) {
        return Err(ApiError::not_found("admin token"));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 RETURNING revoked_at",
            &[&token_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("admin token"))?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%token_id, revoked_by = %admin.actor, "admin token revoked");
    Ok(HttpResponse::Ok().json(json!({
        "id": token_id,
        "revoked_at": timestamp(row.get(0)),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// The admin actions, newest first. The cursor is the last entry's id.
async fn audit_log(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let limits = &state.settings.limits;
    let limit = page_limit(query.limit, limits.page_size_default, limits.page_size_max)?;
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, actor, method, route, path, http_status, request_id, created_at, body_sha256
             FROM admin_audit WHERE ($1::bigint IS NULL OR id < $1)
             ORDER BY id DESC LIMIT $2",
            &[&before, &(limit + 1)],
        )
        .await?;
    let item = |r: &tokio_postgres::Row| {
        json!({
            "actor": r.get::<_, &str>(1),
            "method": r.get::<_, &str>(2),
            "route": r.get::<_, &str>(3),
            "path": r.get::<_, &str>(4),
            "http_status": r.get::<_, i16>(5),
            "request_id": r.get::<_, &str>(6),
            "created_at": timestamp(r.get(7)),
            "body_sha256": r.get::<_, Option<&str>>(8),
        })
    };
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, item, |last| {
            last.get::<_, i64>(0).to_string()
        })),
    )
}

/// The handler that blocks (or unblocks) one kind of thing; idempotent: the first
/// block's time is kept.
fn blocking(what: Blockable, blocked: bool) -> actix_web::Route {
    web::post().to(
        move |admin: Admin,
              state: web::Data<AppState>,
              path: web::Path<String>,
              req: HttpRequest,
              payload: web::Payload| async move {
            empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
            set_blocked(&state, &admin, what, &path, blocked).await
        },
    )
}

/// What an operator can block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blockable {
    /// Every wallet call from it is declined with `account_blocked`.
    CustomerAccount,
    /// No new orders, and paying one of its orders is declined with `account_blocked`
    /// (on the order's timeline). Refunds and reports still work.
    Merchant,
}

impl Blockable {
    fn name(self) -> &'static str {
        match self {
            Self::CustomerAccount => "customer account",
            Self::Merchant => "merchant",
        }
    }

    fn update_sql(self) -> &'static str {
        match self {
            Self::CustomerAccount => {
                "UPDATE accounts SET blocked_at = CASE WHEN $2 THEN coalesce(blocked_at, now()) END
                 WHERE id = $1 AND kind = 'customer' RETURNING blocked_at"
            }
            Self::Merchant => {
                "UPDATE merchants SET blocked_at = CASE WHEN $2 THEN coalesce(blocked_at, now()) END
                 WHERE id = $1 RETURNING blocked_at"
            }
        }
    }
}

async fn set_blocked(
    state: &AppState,
    admin: &Admin,
    what: Blockable,
    id: &str,
    blocked: bool,
) -> ApiResult<HttpResponse> {
    if !ids::is_gateway_id(id) {
        return Err(ApiError::not_found(what.name()));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(what.update_sql(), &[&id, &blocked])
        .await?
        .ok_or_else(|| ApiError::not_found(what.name()))?;
    let blocked_at: Option<chrono::DateTime<chrono::Utc>> = row.get(0);
    admin.commit(tx, StatusCode::OK).await?;
    if what == Blockable::Merchant {
        state.credentials.forget_merchant(id);
    }
    tracing::warn!(what = what.name(), %id, blocked, by = %admin.actor, "block changed");
    Ok(HttpResponse::Ok().json(json!({
        "id": id,
        "blocked": blocked_at.is_some(),
        "blocked_at": blocked_at.map(timestamp),
    })))
}
