//! Who is calling (docs/contract.md §2): the operator's admin token, a merchant's API key
//! with scopes, or a wallet's Standard Webhooks signature.

use crate::{
    error::{ApiError, ApiResult, ErrorCode},
    http::header_str,
    request_rates::RateSubject,
    state::AppState,
};
use crate::{
    roles::{self, Role},
    sealed::SecretKind,
};
use actix_web::{dev::Payload, web, FromRequest, HttpMessage, HttpRequest};
use qrgate_domain::signing::{self, SignatureError, SignedHeaders, SigningSecret};
use std::{future::Future, pin::Pin};

pub fn sha256_32(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}

/// Equality of two digests in time independent of where they differ.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credential of `Authorization: Bearer <credential>`; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = header_str(req, "authorization")?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim_start())
}

/// `429 rate_limited` while the caller's address has used up its failed
/// authentications (checked before the credentials, so a guesser learns nothing).
fn check_auth_failures(state: &AppState, req: &HttpRequest) -> ApiResult<()> {
    let Some(ip) = crate::http::client_ip(req, &state.settings.trusted_proxies) else {
        return Ok(());
    };
    match state.auth_failures.retry_after(ip) {
        Some(wait) => Err(ApiError::rate_limited(
            "too many failed authentications from this address",
            wait.as_secs_f64().ceil() as u64,
        )),
        None => Ok(()),
    }
}

/// A `<id>.<secret>` credential split in two, when the id is a well-formed gateway id
/// with the expected prefix (`key`, `adm`).
fn split_credential<'a>(presented: &'a str, id_prefix: &str) -> Option<(&'a str, &'a str)> {
    let (id, secret) = presented.split_once('.')?;
    let well_formed = id
        .strip_prefix(id_prefix)
        .is_some_and(|rest| rest.starts_with('_'))
        && qrgate_domain::ids::is_gateway_id(id);
    well_formed.then_some((id, secret))
}

/// The presented secret against the SHA-256 stored for it, in constant time.
fn secret_matches(secret: &str, stored_sha256: &[u8]) -> bool {
    <[u8; 32]>::try_from(stored_sha256)
        .is_ok_and(|stored| digests_equal(&sha256_32(secret.as_bytes()), &stored))
}

fn unauthenticated(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Unauthenticated,
        format!("a valid {what} is required: Authorization: Bearer <token>"),
    )
}

fn state(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
}

/// The operator, proven by the environment's bootstrap token or a named admin token
/// (`adm_….<secret>`, stored as SHA-256, revocable). Who it was goes into the request's
/// extensions for the audit log.
pub struct Admin {
    /// `bootstrap`, or the admin token's id.
    pub actor: String,
    /// What it may do (`roles`): checked against the route before any handler runs.
    pub role: Role,
    /// The request, for its audit entry.
    request: HttpRequest,
}

impl Admin {
    /// Commits an operator's change together with its audit entry (who, what, the
    /// outcome `status`, the body's digest): the change and its record stand or fall
    /// together. Changes refused before this (4xx) are recorded after the answer, as
    /// they changed nothing.
    pub async fn commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        status: actix_web::http::StatusCode,
    ) -> ApiResult<()> {
        crate::http::record_admin_action(&tx, &self.actor, &self.request, status.as_u16()).await?;
        tx.commit().await?;
        self.request
            .extensions_mut()
            .insert(crate::http::AuditedInTransaction);
        Ok(())
    }
}

/// The admin behind a request, for the audit log.
#[derive(Clone)]
pub struct AdminActor(pub String);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req).clone();
        let presented = bearer(req).map(str::to_owned);
        let limited = check_auth_failures(&state, req);
        let req = req.clone();
        Box::pin(async move {
            limited?;
            let presented = presented.ok_or_else(|| unauthenticated("admin token"))?;
            let (actor, role) =
                if digests_equal(&sha256_32(presented.as_bytes()), state.admin_token_sha256()) {
                    ("bootstrap".to_owned(), Role::Admin)
                } else {
                    named_admin(&state, &presented).await?
                };
            // Recorded before the role check: a refused change is in the audit log too.
            req.extensions_mut().insert(AdminActor(actor.clone()));
            let pattern = req.match_pattern().unwrap_or_default();
            if !roles::allows(role, req.method(), &pattern) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "an operator with the {} role may not {} {pattern} (roles that may: {})",
                        role.as_str(),
                        req.method(),
                        roles::allowed_for(req.method(), &pattern).join(", ")
                    ),
                ));
            }
            // The bootstrap token has no second factor: it is the break-glass credential,
            // kept offline (docs/operations.md).
            if actor != "bootstrap" && roles::needs_second_factor(req.method().as_str(), &pattern) {
                let holder = crate::second_factor::Holder::AdminToken(&actor);
                crate::second_factor::require(
                    &state,
                    holder,
                    crate::second_factor::presented(&req),
                )
                .await?;
            }
            Ok(Admin {
                actor,
                role,
                request: req,
            })
        })
    }
}

async fn named_admin(state: &AppState, presented: &str) -> ApiResult<(String, Role)> {
    let (id, secret) =
        split_credential(presented, "adm").ok_or_else(|| unauthenticated("admin token"))?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT secret_sha256, role FROM admin_tokens WHERE id = $1 AND revoked_at IS NULL",
        )
        .await?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await?
        .ok_or_else(|| unauthenticated("admin token"))?;
    if secret_matches(secret, row.get(0)) {
        let role = Role::parse(row.get(1)).ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("admin token {id} has an unknown role"))
        })?;
        Ok((id.to_owned(), role))
    } else {
        Err(unauthenticated("admin token"))
    }
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Orders,
    Refunds,
    Reports,
    /// Issue, list and revoke the merchant's own (staff) keys.
    Keys,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Orders => "orders",
            Scope::Refunds => "refunds",
            Scope::Reports => "reports",
            Scope::Keys => "keys",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Scope::Orders, Scope::Refunds, Scope::Reports, Scope::Keys]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A merchant, proven by one of its unrevoked API keys (`<key id>.<secret>`).
#[derive(Debug)]
pub struct Merchant {
    pub merchant_id: String,
    pub key_id: String,
    scopes: Vec<String>,
    /// Read with the key in the same statement: creating an order needs it, and it
    /// saves that call a round trip.
    pub profile: MerchantProfile,
}

/// What a merchant's QR codes and orders state about it.
#[derive(Clone, Debug)]
pub struct MerchantProfile {
    pub name: String,
    pub city: String,
    pub country: String,
    pub mcc: String,
    pub currency: String,
    pub fee_rate_bps: i32,
    pub local_name: Option<String>,
    pub local_city: Option<String>,
    pub local_language: Option<String>,
    /// Blocked by an operator: no new orders, no payments.
    pub blocked: bool,
    /// What an order that names no tip policy lets the customer add.
    pub tip_policy: qrgate_domain::tips::TipPolicy,
}

impl Merchant {
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.scopes.iter().any(|s| s == scope.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this API key lacks the `{}` scope", scope.as_str()),
            ))
        }
    }
}

impl FromRequest for Merchant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req).clone();
        let key = bearer(req).map(str::to_owned);
        let limited = check_auth_failures(&state, req);
        Box::pin(async move {
            limited?;
            let key = key.ok_or_else(|| unauthenticated("merchant API key"))?;
            let (key_id, secret) =
                split_credential(&key, "key").ok_or_else(|| unauthenticated("merchant API key"))?;
            let record = match state.credentials.key(key_id) {
                Some(record) => record,
                None => key_record(&state, key_id).await?,
            };
            if !secret_matches(secret, &record.secret_sha256) {
                return Err(unauthenticated("merchant API key"));
            }
            let limit = state.settings.limits.api_key_requests_per_second_max;
            (state.request_rates)
                .admit(&state.pool, RateSubject::ApiKey(key_id), limit)
                .await?;
            Ok(Merchant {
                merchant_id: record.merchant_id.clone(),
                key_id: key_id.to_owned(),
                scopes: record.scopes.clone(),
                profile: record.profile.clone(),
            })
        })
    }
}

/// An active API key and its merchant, from the database (kept in the credential cache
/// unless a change was notified meanwhile). An unknown or revoked key is 401.
async fn key_record(
    state: &AppState,
    key_id: &str,
) -> ApiResult<std::sync::Arc<crate::credentials::KeyRecord>> {
    let generation = state.credentials.generation();
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT k.merchant_id, k.secret_sha256, k.scopes, m.name, m.city, m.country, m.mcc, m.currency,
                    m.fee_rate_bps, m.local_name, m.local_city, m.local_language, m.blocked_at IS NOT NULL,
                    m.tip_policy, m.convenience_fee_minor, m.convenience_fee_percent_hundredths
             FROM api_keys k JOIN merchants m ON m.id = k.merchant_id
             WHERE k.id = $1 AND k.revoked_at IS NULL",
        )
        .await?;
    let row = client.query_opt(&stmt, &[&key_id]).await?;
    let row = row.ok_or_else(|| unauthenticated("merchant API key"))?;
    let currency = qrgate_domain::Currency::parse(row.get(7)).map_err(ApiError::internal_from)?;
    let tip_policy = qrgate_domain::tips::TipPolicy::from_stored(
        row.get(13),
        row.get(14),
        row.get(15),
        currency,
    )
    .ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("merchant's stored tip policy is malformed"))
    })?;
    let record = std::sync::Arc::new(crate::credentials::KeyRecord {
        merchant_id: row.get(0),
        secret_sha256: row.get(1),
        scopes: row.get(2),
        profile: MerchantProfile {
            name: row.get(3),
            city: row.get(4),
            country: row.get(5),
            mcc: row.get(6),
            currency: row.get(7),
            fee_rate_bps: row.get(8),
            local_name: row.get(9),
            local_city: row.get(10),
            local_language: row.get(11),
            blocked: row.get(12),
            tip_policy,
        },
    });
    state
        .credentials
        .put_key(key_id, record.clone(), generation);
    Ok(record)
}

/// A verified wallet request: whose it is and its webhook-id.
#[derive(Debug)]
pub struct WalletCall {
    pub wallet_id: String,
    pub message_id: String,
}

/// Verifies a wallet's Standard Webhooks signature over `content` (the raw body of a
/// POST, the request target of a GET) with the wallet's active secrets.
pub async fn verify_wallet(
    state: &AppState,
    req: &HttpRequest,
    wallet_id: &str,
    content: &[u8],
) -> ApiResult<WalletCall> {
    check_auth_failures(state, req)?;
    // Every webhook-signature line counts: a list split over several lines is one list.
    let signatures = req
        .headers()
        .get_all("webhook-signature")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(" ");
    let headers = SignedHeaders {
        id: header_str(req, "webhook-id").unwrap_or(""),
        timestamp: header_str(req, "webhook-timestamp").unwrap_or(""),
        signature: &signatures,
    };
    if headers.id.is_empty() || headers.timestamp.is_empty() || headers.signature.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidSignature,
            SignatureError::MissingHeaders.to_string(),
        ));
    }
    let message_id = qrgate_domain::ids::ClientId::parse(headers.id)
        .map_err(|e| ApiError::new(ErrorCode::InvalidSignature, format!("webhook-id {e}")))?;
    let known = qrgate_domain::ids::is_gateway_id(wallet_id);
    let secrets = match (known, state.credentials.wallet(wallet_id)) {
        (false, _) => std::sync::Arc::new(Vec::new()),
        (true, Some(secrets)) => secrets,
        (true, None) => active_wallet_secrets(state, wallet_id).await?,
    };
    let now = chrono::Utc::now().timestamp();
    signing::verify(&secrets, headers, content, now).map_err(|e| match e {
        SignatureError::Stale => ApiError::new(ErrorCode::StaleTimestamp, e.to_string()),
        _ => ApiError::new(ErrorCode::InvalidSignature, e.to_string()),
    })?;
    if known {
        let limit = state.settings.limits.wallet_requests_per_second_max;
        (state.request_rates)
            .admit(&state.pool, RateSubject::Wallet(wallet_id), limit)
            .await?;
    }
    Ok(WalletCall {
        wallet_id: wallet_id.to_owned(),
        message_id: message_id.as_str().to_owned(),
    })
}

/// A wallet's active secrets, from the database (kept in the credential cache unless a
/// change was notified meanwhile; a wallet with none is not kept).
async fn active_wallet_secrets(
    state: &AppState,
    wallet_id: &str,
) -> ApiResult<std::sync::Arc<Vec<SigningSecret>>> {
    let generation = state.credentials.generation();
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT id, secret FROM wallet_secrets WHERE wallet_id = $1 AND retired_at IS NULL",
        )
        .await?;
    let rows = client.query(&stmt, &[&wallet_id]).await?;
    let secrets: Vec<SigningSecret> = rows
        .iter()
        .filter_map(|r| {
            let secret_id: &str = r.get(0);
            // One that does not open verifies nothing; the log names it, never its value.
            (state.settings.secrets)
                .open_signing_secret(SecretKind::WalletSigning, secret_id, r.get(1))
                .inspect_err(|e| tracing::error!(%wallet_id, %secret_id, error = %e, "a wallet secret does not open"))
                .ok()
        })
        .collect();
    let secrets = std::sync::Arc::new(secrets);
    if !secrets.is_empty() {
        state
            .credentials
            .put_wallet(wallet_id, secrets.clone(), generation);
    }
    Ok(secrets)
}
