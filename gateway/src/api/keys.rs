//! API keys as a shop uses them: who am I (`/v1/me`), and named staff keys ("Till 2",
//! "Ana") that a manager key (scope `keys`) issues, lists and revokes for its own
//! merchant. The operator's `/v1/admin/merchants/{id}/api-keys` uses the same functions.
//! Every order and refund records the key that made it.

use crate::{
    auth::{sha256_32, Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{encode_cursor, json_body, page_ask, page_json, timestamp},
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{ids, tips::TipPolicy};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/me", crate::http::get().to(me))
        .route("/v1/keys", web::post().to(create_key))
        .route("/v1/keys", crate::http::get().to(list_keys))
        .route("/v1/keys/{key_id}", web::delete().to(revoke_key));
}

/// A key's name for people: "Till 2", "Ana".
pub type KeyName = qrgate_domain::text::PlainText<50>;

/// The caller: its merchant (name, currency, time zone) and its own key's name and scopes.
async fn me(merchant: Merchant, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT m.name, m.currency, m.time_zone, k.name, k.scopes,
                    m.refund_second_factor_above_minor,
                    EXISTS (SELECT 1 FROM second_factors f WHERE f.holder_kind = 'api_key'
                            AND f.holder_id = k.id AND f.confirmed_at IS NOT NULL),
                    m.tip_policy, m.convenience_fee_minor, m.convenience_fee_percent_hundredths, m.tip_max_percent
             FROM api_keys k JOIN merchants m ON m.id = k.merchant_id WHERE k.id = $1",
            &[&merchant.key_id],
        )
        .await?;
    let currency = qrgate_domain::Currency::parse(row.get(1))
        .map_err(crate::error::ApiError::internal_from)?;
    let tip_policy = TipPolicy::from_stored(row.get(7), row.get(8), row.get(9), currency)
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("merchant's stored tip policy is malformed"))
        })?;
    Ok(HttpResponse::Ok().json(json!({
        // The shop's default tip policy and its tip cap (`PUT /v1/me/tip-policy`).
        "tipping": crate::api::tips::tip_settings_json(tip_policy, row.get(10), currency),
        "merchant_id": merchant.merchant_id,
        "merchant_name": row.get::<_, &str>(0),
        "currency": row.get::<_, &str>(1),
        "currency_minor_units": currency.minor_units(),
        "refund_second_factor_above": row
            .get::<_, Option<i64>>(5)
            .map(|a| qrgate_domain::money::format_minor(a, currency)),
        "second_factor": row.get::<_, bool>(6),
        "time_zone": row.get::<_, &str>(2),
        "key_id": merchant.key_id,
        "key_name": row.get::<_, Option<&str>>(3),
        "scopes": row.get::<_, Vec<String>>(4),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: Option<String>,
    pub scopes: Vec<String>,
}

/// A key request, every field checked: a name people can read, and known scopes, each
/// once, at least one.
pub struct NewKey {
    name: Option<KeyName>,
    scopes: Vec<&'static str>,
}

impl NewKey {
    pub fn parse(r: &NewKeyRequest) -> ApiResult<Self> {
        let name = r
            .name
            .as_deref()
            .map(KeyName::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("name", e))?;
        let mut scopes = Vec::new();
        for s in &r.scopes {
            let scope = Scope::parse(s).ok_or_else(|| {
                ApiError::invalid(
                    "scopes",
                    format!("unknown scope `{s}`: use orders, refunds, reports, keys"),
                )
            })?;
            if scopes.contains(&scope.as_str()) {
                return Err(ApiError::invalid(
                    "scopes",
                    format!("`{s}` is listed twice: name each scope once"),
                ));
            }
            scopes.push(scope.as_str());
        }
        if scopes.is_empty() {
            return Err(ApiError::invalid(
                "scopes",
                "at least one scope is required",
            ));
        }
        Ok(NewKey { name, scopes })
    }
}

/// A shop holds at most this many live keys (one per till and person, with room): a
/// leaked manager key cannot mint keys without end.
pub const LIVE_KEYS_PER_MERCHANT_MAX: i64 = 200;

/// Issues a key for a merchant; the secret is in the answer only. None: no such merchant.
pub async fn issue(
    tx: &deadpool_postgres::Transaction<'_>,
    merchant_id: &str,
    key: &NewKey,
) -> ApiResult<Option<Value>> {
    let live = super::shop_live_count(
        tx,
        merchant_id,
        "SELECT count(*) FROM api_keys WHERE merchant_id = $1 AND revoked_at IS NULL",
    )
    .await?;
    let Some(live) = live else {
        return Ok(None);
    };
    if live >= LIVE_KEYS_PER_MERCHANT_MAX {
        return Err(super::live_cap_reached(
            "a shop",
            LIVE_KEYS_PER_MERCHANT_MAX,
            "keys",
            "revoke one first",
        ));
    }
    let key_id = ids::mint("key");
    // 32 base32 characters: 160 bits from the CSPRNG. Only its hash is stored.
    let secret = ids::random_base32(32);
    let inserted = tx
        .query_opt(
            "INSERT INTO api_keys (id, merchant_id, secret_sha256, scopes, name)
             SELECT $1, id, $3, $4, $5 FROM merchants WHERE id = $2 RETURNING created_at",
            &[
                &key_id,
                &merchant_id,
                &sha256_32(secret.as_bytes()).as_slice(),
                &key.scopes,
                &key.name.as_ref().map(KeyName::as_str),
            ],
        )
        .await?;
    let Some(inserted) = inserted else {
        return Ok(None);
    };
    tracing::info!(%merchant_id, %key_id, "API key issued");
    Ok(Some(json!({
        "id": key_id,
        "key": format!("{key_id}.{secret}"),
        "merchant_id": merchant_id,
        "name": key.name.as_ref().map(KeyName::as_str),
        "scopes": key.scopes,
        "created_at": timestamp(inserted.get(0)),
    })))
}

/// A merchant's keys, newest first, revoked ones included; never a secret.
pub async fn page(
    state: &AppState,
    merchant_id: &str,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> ApiResult<Value> {
    let page = page_ask(&state.settings.limits, cursor, limit)?;
    let (limit, at, id) = (page.limit, page.after_at, page.after_id);
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT id, scopes, created_at, revoked_at, name FROM api_keys
             WHERE merchant_id = $1
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC LIMIT $4",
            &[&merchant_id, &at, &id, &(limit + 1)],
        )
        .await?;
    let item = |r: &tokio_postgres::Row| {
        json!({
            "id": r.get::<_, &str>(0),
            "name": r.get::<_, Option<&str>>(4),
            "scopes": r.get::<_, Vec<String>>(1),
            "created_at": timestamp(r.get(2)),
            "revoked_at": r.get::<_, Option<DateTime<Utc>>>(3).map(timestamp),
        })
    };
    Ok(page_json(&rows, limit, item, |last| {
        encode_cursor(last.get(2), last.get(0))
    }))
}

/// Revokes a merchant's key (again: no change); dropped from every replica's cache.
pub async fn revoke(
    state: &AppState,
    client: &impl deadpool_postgres::GenericClient,
    merchant_id: &str,
    key_id: &str,
) -> ApiResult<Value> {
    let row = client
        .query_opt(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
             WHERE id = $1 AND merchant_id = $2 RETURNING revoked_at",
            &[&key_id, &merchant_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    // At once on this replica; the others hear it from the trigger's notification.
    state.credentials.forget_key(key_id);
    tracing::info!(%merchant_id, %key_id, "API key revoked");
    Ok(json!({"id": key_id, "revoked_at": timestamp(row.get(0))}))
}

async fn create_key(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let body: NewKeyRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let key = NewKey::parse(&body)?;
    // A manager hands on only what it holds itself.
    for scope in &key.scopes {
        let scope = Scope::parse(scope).expect("parsed above");
        merchant.require(scope).map_err(|_| {
            ApiError::invalid(
                "scopes",
                format!("this key lacks `{}`, so it cannot grant it", scope.as_str()),
            )
        })?;
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let issued = issue(&tx, &merchant.merchant_id, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("merchant"))?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(issued))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_keys(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<KeysQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let page = page(
        &state,
        &merchant.merchant_id,
        query.cursor.as_deref(),
        query.limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn revoke_key(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let client = state.pool.get().await?;
    let revoked = revoke(&state, &client, &merchant.merchant_id, &path).await?;
    Ok(HttpResponse::Ok().json(revoked))
}
