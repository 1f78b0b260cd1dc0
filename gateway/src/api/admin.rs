//! The operator's API (`/v1/admin/*`): merchants and their API keys, wallets and
//! their signing secrets and funding limits.

use crate::{
    api::keys,
    auth::Admin,
    error::{ApiError, ApiResult, ErrorCode},
    http::{account_id_field, currency_field, empty_body, json_body, timestamp},
    sealed::SecretKind,
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use qrgate_domain::{
    emv::{MERCHANT_CITY_CHARS_MAX, MERCHANT_NAME_CHARS_MAX},
    ids,
    money::{format_minor, parse_minor},
    signing::SigningSecret,
    text::{AsciiText, PlainText},
    Currency,
};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/merchants", web::post().to(create_merchant))
        .route(
            "/v1/admin/merchants/{id}/api-keys",
            web::post().to(create_api_key),
        )
        .route(
            "/v1/admin/merchants/{id}/api-keys",
            crate::http::get().to(list_api_keys),
        )
        .route(
            "/v1/admin/merchants/{id}/api-keys/{key_id}",
            web::delete().to(revoke_api_key),
        )
        .route(
            "/v1/admin/merchants/{id}/payout-accounts",
            web::post().to(allow_payout_account),
        )
        .route(
            "/v1/admin/merchants/{id}/payout-accounts",
            crate::http::get().to(list_payout_accounts),
        )
        .route(
            "/v1/admin/merchants/{id}/payout-accounts/{account_id}",
            web::delete().to(remove_payout_account),
        )
        .route("/v1/admin/fx-rates", web::post().to(set_fx_rate))
        .route(
            "/v1/admin/fx-rates",
            crate::http::get().to(current_fx_rates),
        )
        .route(
            "/v1/admin/fx-rates/{base}/{quote}",
            crate::http::get().to(fx_rate_history),
        )
        .route("/v1/admin/wallets", web::post().to(create_wallet))
        .route(
            "/v1/admin/wallets/{id}/secrets",
            web::post().to(add_wallet_secret),
        )
        .route(
            "/v1/admin/wallets/{id}/secrets/{secret_id}",
            web::delete().to(retire_wallet_secret),
        )
        .route(
            "/v1/admin/wallets/{id}/funding-limits",
            web::post().to(set_funding_limit),
        )
        .route(
            "/v1/admin/wallets/{id}/funding-limits",
            crate::http::get().to(funding_limits),
        );
}

const DEFAULT_FEE_RATE_BPS: i32 = 38;
const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";
const WEBHOOK_URL_CHARS_MAX: usize = 2048;
/// EMV tag 64: a local name of at most 25 characters, a local city of at most 15.
const LOCAL_NAME_CHARS_MAX: usize = 25;
const LOCAL_CITY_CHARS_MAX: usize = 15;
/// A wallet signs with at most this many secrets at once (rotation without downtime).
const WALLET_ACTIVE_SECRETS_MAX: i64 = 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMerchantRequest {
    name: String,
    city: String,
    country: String,
    mcc: String,
    currency: String,
    fee_rate_bps: Option<i32>,
    local_name: Option<String>,
    local_city: Option<String>,
    local_language: Option<String>,
    webhook_url: Option<String>,
    time_zone: Option<String>,
    points_per_unit: Option<String>,
}

/// A merchant as the operator asked for it, every field checked.
struct NewMerchant {
    name: AsciiText<MERCHANT_NAME_CHARS_MAX>,
    city: AsciiText<MERCHANT_CITY_CHARS_MAX>,
    country: String,
    mcc: String,
    currency: Currency,
    fee_rate_bps: i32,
    local_name: Option<String>,
    local_city: Option<String>,
    local_language: Option<String>,
    webhook_url: Option<String>,
    time_zone: String,
    /// Loyalty points a customer earns per whole unit charged (default 1).
    points_per_unit: String,
}

/// A merchant's name or city in its own script (EMV template 64): plain text.
fn local_text<const MAX: usize>(field: &str, value: Option<String>) -> ApiResult<Option<String>> {
    value
        .map(|v| PlainText::<MAX>::parse(&v).map(PlainText::into_string))
        .transpose()
        .map_err(|e| ApiError::invalid(field, e))
}

impl NewMerchant {
    fn parse(r: NewMerchantRequest, allow_http_webhooks: bool) -> ApiResult<Self> {
        let name = AsciiText::parse(&r.name).map_err(|e| ApiError::invalid("name", e))?;
        let city = AsciiText::parse(&r.city).map_err(|e| ApiError::invalid("city", e))?;
        if !qrgate_domain::country::is_assigned(&r.country) {
            return Err(ApiError::invalid(
                "country",
                "must be an assigned ISO 3166-1 alpha-2 code such as CN",
            ));
        }
        if r.mcc.len() != 4 || !r.mcc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "mcc",
                "must be a 4-digit merchant category code",
            ));
        }
        let currency = currency_field("currency", &r.currency)?;
        let fee_rate_bps = r.fee_rate_bps.unwrap_or(DEFAULT_FEE_RATE_BPS);
        if !(0..=10_000).contains(&fee_rate_bps) {
            return Err(ApiError::invalid(
                "fee_rate_bps",
                "must be between 0 and 10000",
            ));
        }
        let local_name = local_text::<LOCAL_NAME_CHARS_MAX>("local_name", r.local_name)?;
        let local_city = local_text::<LOCAL_CITY_CHARS_MAX>("local_city", r.local_city)?;
        if local_name.is_none() && (local_city.is_some() || r.local_language.is_some()) {
            return Err(ApiError::invalid(
                "local_name",
                "is required with local_city or local_language",
            ));
        }
        let local_language = match (&local_name, r.local_language) {
            (None, _) => None,
            (Some(_), None) => Some("ZH".to_owned()),
            (Some(_), Some(l)) if l.len() == 2 && l.bytes().all(|b| b.is_ascii_alphabetic()) => {
                Some(l.to_ascii_uppercase())
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "local_language",
                    "must be an ISO 639-1 code such as ZH",
                ))
            }
        };
        let webhook_url = r
            .webhook_url
            .map(|u| check_webhook_url("webhook_url", &u, allow_http_webhooks).map(|_| u))
            .transpose()?;
        Ok(NewMerchant {
            name,
            city,
            country: r.country,
            mcc: r.mcc,
            currency,
            fee_rate_bps,
            local_name,
            local_city,
            local_language,
            webhook_url,
            time_zone: r.time_zone.unwrap_or_else(|| DEFAULT_TIME_ZONE.into()),
            points_per_unit: match r.points_per_unit {
                None => "1".into(),
                Some(p) => qrgate_domain::money::parse_decimal(&p)
                    .ok()
                    .filter(|d| d.scale() <= 4 && *d <= rust_decimal::Decimal::from(1000))
                    .map(|d| d.to_string())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "points_per_unit",
                            "must be a decimal string from 0 to 1000, at most 4 places",
                        )
                    })?,
            },
        })
    }
}

/// A webhook URL as given: https (http too with QRGATE_ALLOW_PRIVATE_WEBHOOKS=1), no
/// credentials, not an IP literal in private space. Where a name resolves is checked
/// again at every delivery.
pub(crate) fn check_webhook_url(field: &str, url: &str, allow_private: bool) -> ApiResult<()> {
    if url.len() > WEBHOOK_URL_CHARS_MAX || url.contains('@') {
        return Err(ApiError::invalid(
            field,
            "must be at most 2048 characters, without credentials",
        ));
    }
    crate::webhooks::check_destination(url, allow_private)
        .map(|_| ())
        .map_err(|why| ApiError::invalid(field, why))
}

/// A known IANA zone name (`domain::time_zone`, which the document lists), that the
/// database can convert to: checked without scanning `pg_timezone_names`, which cost
/// ~0.4 s of database CPU per merchant (issue 11).
async fn check_time_zone(client: &deadpool_postgres::Client, zone: &str) -> ApiResult<()> {
    let invalid = || {
        ApiError::invalid(
            "time_zone",
            "must be an IANA time zone such as Asia/Shanghai",
        )
    };
    if !qrgate_domain::time_zone::is_known(zone) {
        return Err(invalid());
    }
    match client
        .query_one("SELECT now() AT TIME ZONE $1", &[&zone])
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::INVALID_PARAMETER_VALUE) => {
            Err(invalid())
        }
        Err(e) => Err(e.into()),
    }
}

async fn create_merchant(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: NewMerchantRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let m = NewMerchant::parse(body, state.settings.allow_private_webhooks)?;
    let mut client = state.pool.get().await?;
    check_time_zone(&client, &m.time_zone).await?;
    let id = ids::mint("mch");
    let account_id = ids::mint("acc");
    let secret = SigningSecret::generate();
    let limits = &state.settings.limits;
    let tx = client.transaction().await?;
    let created_at: chrono::DateTime<chrono::Utc> = tx
        .query_one(
            "INSERT INTO merchants (id, name, city, country, mcc, currency, fee_rate_bps, local_name, local_city,
                                    local_language, webhook_url, webhook_secret, time_zone, account_id, points_per_unit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::text::numeric) RETURNING created_at",
            &[
                &id, &m.name.as_str(), &m.city.as_str(), &m.country, &m.mcc, &m.currency.code(), &m.fee_rate_bps,
                &m.local_name, &m.local_city, &m.local_language, &m.webhook_url,
                &state.settings.secrets.seal_signing_secret(SecretKind::MerchantWebhook, &id, &secret), &m.time_zone,
                &account_id,
                &m.points_per_unit,
            ],
        )
        .await?
        .get(0);
    tx.execute(
        "SELECT ledger_open_account($1, 'merchant', $2, NULL, $3, NULL, $4)",
        &[
            &account_id,
            &m.currency.code(),
            &id,
            &limits.merchant_balance_shards,
        ],
    )
    .await?;
    tx.execute(
        "SELECT ledger_platform_account('fee', $1, $2)",
        &[&m.currency.code(), &limits.fee_balance_shards],
    )
    .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(merchant_id = %id, "merchant created");
    Ok(HttpResponse::Created().json(json!({
        "id": id,
        "account_id": account_id,
        "webhook_secret": secret.expose(),
        "name": m.name.as_str(),
        "city": m.city.as_str(),
        "country": m.country,
        "mcc": m.mcc,
        "currency": m.currency,
        "fee_rate_bps": m.fee_rate_bps,
        "local_name": m.local_name,
        "local_city": m.local_city,
        "local_language": m.local_language,
        "webhook_url": m.webhook_url,
        "time_zone": m.time_zone,
        "created_at": timestamp(created_at),
    })))
}

async fn create_api_key(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: keys::NewKeyRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let key = keys::NewKey::parse(&body)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let issued = keys::issue(&tx, &path, &key)
        .await?
        .ok_or_else(|| ApiError::not_found("merchant"))?;
    admin.commit(tx, StatusCode::CREATED).await?;
    Ok(HttpResponse::Created().json(issued))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeysQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A merchant's API keys, newest first, revoked ones included; never a secret.
async fn list_api_keys(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ApiKeysQuery>,
) -> ApiResult<HttpResponse> {
    let merchant_id = path.into_inner();
    let client = state.pool.get().await?;
    client
        .query_opt("SELECT 1 FROM merchants WHERE id = $1", &[&merchant_id])
        .await?
        .ok_or_else(|| ApiError::not_found("merchant"))?;
    drop(client);
    let page = keys::page(&state, &merchant_id, query.cursor.as_deref(), query.limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn revoke_api_key(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (merchant_id, key_id) = path.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let revoked = keys::revoke(&state, &tx, &merchant_id, &key_id).await?;
    admin.commit(tx, StatusCode::OK).await?;
    Ok(HttpResponse::Ok().json(revoked))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayoutAccountRequest {
    account_id: String,
}

/// Allows a customer account (in the merchant's currency) as a payout destination.
async fn allow_payout_account(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let merchant_id = path.into_inner();
    let body: PayoutAccountRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    account_id_field("account_id", &body.account_id)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT a.kind = 'customer', a.currency = m.currency FROM merchants m, accounts a WHERE m.id = $1 AND a.id = $2",
            &[&merchant_id, &body.account_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("merchant or account"))?;
    if !row.get::<_, bool>(0) || !row.get::<_, bool>(1) {
        return Err(ApiError::invalid(
            "account_id",
            "must be a customer account in the merchant's currency",
        ));
    }
    tx.execute(
        "INSERT INTO payout_accounts (merchant_id, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&merchant_id, &body.account_id],
    )
    .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(%merchant_id, account_id = %body.account_id, "payout account allowed");
    Ok(HttpResponse::Created()
        .json(json!({"merchant_id": merchant_id, "account_id": body.account_id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWalletRequest {
    name: String,
}

async fn create_wallet(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: NewWalletRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    if body.name.trim().is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters"));
    }
    let id = ids::mint("wal");
    let secret_id = ids::mint("sec");
    let secret = SigningSecret::generate();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO wallets (id, name) VALUES ($1, $2)",
        &[&id, &body.name],
    )
    .await?;
    tx.execute(
        "INSERT INTO wallet_secrets (id, wallet_id, secret) VALUES ($1, $2, $3)",
        &[
            &secret_id,
            &id,
            &state.settings.secrets.seal_signing_secret(
                SecretKind::WalletSigning,
                &secret_id,
                &secret,
            ),
        ],
    )
    .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(wallet_id = %id, "wallet registered");
    Ok(HttpResponse::Created().json(json!({
        "id": id,
        "name": body.name,
        "secret_id": secret_id,
        "secret": secret.expose(),
    })))
}

async fn add_wallet_secret(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let wallet_id = path.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // Lock the wallet so two concurrent additions cannot both pass the count. NO KEY
    // UPDATE: payments in flight hold the row FOR KEY SHARE (their foreign keys) and
    // neither wait for this nor stall it.
    tx.query_opt(
        "SELECT 1 FROM wallets WHERE id = $1 FOR NO KEY UPDATE",
        &[&wallet_id],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("wallet"))?;
    let active: i64 = tx
        .query_one(
            "SELECT count(*) FROM wallet_secrets WHERE wallet_id = $1 AND retired_at IS NULL",
            &[&wallet_id],
        )
        .await?
        .get(0);
    if active >= WALLET_ACTIVE_SECRETS_MAX {
        // A well-formed request the wallet's state refuses: 422, not 400.
        return Err(ApiError::new(
            ErrorCode::LimitExceeded,
            "the wallet already has two active secrets; retire one first",
        ));
    }
    let secret_id = ids::mint("sec");
    let secret = SigningSecret::generate();
    tx.execute(
        "INSERT INTO wallet_secrets (id, wallet_id, secret) VALUES ($1, $2, $3)",
        &[
            &secret_id,
            &wallet_id,
            &state.settings.secrets.seal_signing_secret(
                SecretKind::WalletSigning,
                &secret_id,
                &secret,
            ),
        ],
    )
    .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    state.credentials.forget_wallet(&wallet_id);
    tracing::info!(%wallet_id, %secret_id, "wallet secret added");
    Ok(HttpResponse::Created().json(json!({"secret_id": secret_id, "secret": secret.expose()})))
}

async fn retire_wallet_secret(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (wallet_id, secret_id) = path.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    tx.query_opt(
        "SELECT 1 FROM wallets WHERE id = $1 FOR NO KEY UPDATE",
        &[&wallet_id],
    )
    .await?
    .ok_or_else(|| ApiError::not_found("wallet"))?;
    let row = tx
        .query_opt(
            "SELECT retired_at IS NULL FROM wallet_secrets WHERE id = $1 AND wallet_id = $2",
            &[&secret_id, &wallet_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("wallet secret"))?;
    let active: bool = row.get(0);
    if active {
        let others: i64 = tx
            .query_one(
                "SELECT count(*) FROM wallet_secrets WHERE wallet_id = $1 AND retired_at IS NULL AND id <> $2",
                &[&wallet_id, &secret_id],
            )
            .await?
            .get(0);
        if others == 0 {
            return Err(ApiError::invalid(
                "secret_id",
                "is the wallet's only active secret; add another first",
            ));
        }
        tx.execute(
            "UPDATE wallet_secrets SET retired_at = now() WHERE id = $1",
            &[&secret_id],
        )
        .await?;
    }
    admin.commit(tx, StatusCode::OK).await?;
    state.credentials.forget_wallet(&wallet_id);
    tracing::info!(%wallet_id, %secret_id, "wallet secret retired");
    Ok(HttpResponse::Ok().json(json!({"secret_id": secret_id, "retired": true})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FundingLimitRequest {
    currency: String,
    limit: String,
}

async fn set_funding_limit(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let wallet_id = path.into_inner();
    let body: FundingLimitRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let currency = currency_field("currency", &body.currency)?;
    let limit_minor =
        parse_minor(&body.limit, currency).map_err(|e| ApiError::invalid("limit", e))?;
    let funding_account = ids::mint("acc");
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    tx.query_opt("SELECT 1 FROM wallets WHERE id = $1", &[&wallet_id])
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    tx.execute(
        "INSERT INTO funding_limits (wallet_id, currency, limit_minor) VALUES ($1, $2, $3)
         ON CONFLICT (wallet_id, currency) DO UPDATE SET limit_minor = EXCLUDED.limit_minor, updated_at = now()",
        &[&wallet_id, &currency.code(), &limit_minor],
    )
    .await?;
    let has_account: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE kind = 'funding' AND wallet_id = $1 AND currency = $2)",
            &[&wallet_id, &currency.code()],
        )
        .await?
        .get(0);
    if !has_account {
        tx.execute(
            "SELECT ledger_open_account($1, 'funding', $2, $3, NULL, NULL, 1::smallint)",
            &[&funding_account, &currency.code(), &wallet_id],
        )
        .await?;
    }
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(%wallet_id, currency = %currency, limit_minor, "funding limit set");
    Ok(HttpResponse::Created().json(json!({
        "wallet_id": wallet_id,
        "currency": currency,
        "limit": format_minor(limit_minor, currency),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FxRateRequest {
    base: String,
    quote: String,
    rate: String,
    spread_bps: Option<i32>,
}

/// Decimal places an exchange rate may have.
const FX_RATE_DECIMALS_MAX: u32 = 8;
const FX_SPREAD_BPS_DEFAULT: i32 = 0;

/// A new current rate for base → quote; earlier ones stay as history (payments and
/// quotes record the one they used).
async fn set_fx_rate(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: FxRateRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let base = currency_field("base", &body.base)?;
    let quote = currency_field("quote", &body.quote)?;
    if base == quote {
        return Err(ApiError::invalid("quote", "must differ from base"));
    }
    let rate: rust_decimal::Decimal = body
        .rate
        .parse()
        .ok()
        .filter(|r: &rust_decimal::Decimal| {
            r.is_sign_positive()
                && !r.is_zero()
                && r.scale() <= FX_RATE_DECIMALS_MAX
                && *r < rust_decimal::Decimal::from(1_000_000_000_000i64)
        })
        .filter(|_| body.rate.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .ok_or_else(|| {
            ApiError::invalid(
                "rate",
                "must be a positive decimal string with at most 8 decimal places",
            )
        })?;
    let spread_bps = body.spread_bps.unwrap_or(FX_SPREAD_BPS_DEFAULT);
    if !(0..=10_000).contains(&spread_bps) {
        return Err(ApiError::invalid(
            "spread_bps",
            "must be between 0 and 10000",
        ));
    }
    let id = ids::mint("fx");
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO fx_rates (id, base, quote, rate, spread_bps) VALUES ($1, $2, $3, $4::text::numeric, $5)
                 RETURNING {FX_COLUMNS}"
            ),
            &[&id, &base.code(), &quote.code(), &rate.to_string(), &spread_bps],
        )
        .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(fx_rate_id = %id, %base, %quote, "exchange rate set");
    Ok(HttpResponse::Created().json(fx_rate_json(&row)))
}

const FX_COLUMNS: &str = "id, base, quote, trim_scale(rate)::text, spread_bps, created_at";

fn fx_rate_json(row: &tokio_postgres::Row) -> serde_json::Value {
    json!({
        "id": row.get::<_, &str>(0),
        "base": row.get::<_, &str>(1),
        "quote": row.get::<_, &str>(2),
        "rate": row.get::<_, &str>(3),
        "spread_bps": row.get::<_, i32>(4),
        "created_at": timestamp(row.get(5)),
    })
}

/// The rate in force for each pair: the newest set (what a payment uses).
async fn current_fx_rates(_admin: Admin, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT DISTINCT ON (base, quote) {FX_COLUMNS} FROM fx_rates
                 ORDER BY base, quote, created_at DESC, id DESC"
            ),
            &[],
        )
        .await?;
    Ok(
        HttpResponse::Ok()
            .json(json!({"items": rows.iter().map(fx_rate_json).collect::<Vec<_>>()})),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Every rate a pair has had, newest first: payments and quotes name the one they used.
async fn fx_rate_history(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (base, quote) = path.into_inner();
    let base = currency_field("base", &base)?;
    let quote = currency_field("quote", &quote)?;
    let page = crate::http::page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, after_at, after_id) = (page.limit, page.after_at, page.after_id);
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {FX_COLUMNS} FROM fx_rates WHERE base = $1 AND quote = $2
                   AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
                 ORDER BY created_at DESC, id DESC LIMIT $5"
            ),
            &[
                &base.code(),
                &quote.code(),
                &after_at,
                &after_id,
                &(limit + 1),
            ],
        )
        .await?;
    Ok(
        HttpResponse::Ok().json(crate::http::page_json(&rows, limit, fx_rate_json, |last| {
            crate::http::encode_cursor(last.get(5), last.get(0))
        })),
    )
}

/// A wallet's funding limits, one per currency.
async fn funding_limits(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let wallet = client
        .query_opt("SELECT 1 FROM wallets WHERE id = $1", &[&&*path])
        .await?;
    if wallet.is_none() {
        return Err(ApiError::not_found("wallet"));
    }
    let rows = client
        .query(
            "SELECT currency, limit_minor, updated_at FROM funding_limits WHERE wallet_id = $1 ORDER BY currency",
            &[&&*path],
        )
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let currency = Currency::parse(row.get(0)).map_err(ApiError::internal_from)?;
        items.push(json!({
            "wallet_id": &*path,
            "currency": currency,
            "limit": format_minor(row.get(1), currency),
            "updated_at": timestamp(row.get(2)),
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// The accounts a merchant may pay out to.
async fn list_payout_accounts(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let merchant = client
        .query_opt("SELECT 1 FROM merchants WHERE id = $1", &[&&*path])
        .await?;
    if merchant.is_none() {
        return Err(ApiError::not_found("merchant"));
    }
    let rows = client
        .query(
            "SELECT account_id, created_at FROM payout_accounts WHERE merchant_id = $1 ORDER BY created_at, account_id",
            &[&&*path],
        )
        .await?;
    let items: Vec<_> = rows
        .iter()
        .map(|r| json!({"merchant_id": &*path, "account_id": r.get::<_, &str>(0), "created_at": timestamp(r.get(1))}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// Stops a merchant paying out to an account. Payouts already made stay as they are.
async fn remove_payout_account(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (merchant_id, account_id) = path.into_inner();
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let removed = tx
        .execute(
            "DELETE FROM payout_accounts WHERE merchant_id = $1 AND account_id = $2",
            &[&merchant_id, &account_id],
        )
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("payout account"));
    }
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(%merchant_id, %account_id, "payout account removed");
    Ok(HttpResponse::Ok()
        .json(json!({"merchant_id": merchant_id, "account_id": account_id, "removed": true})))
}
