//! A second factor for the people behind credentials: TOTP (RFC 6238 — HMAC-SHA-1, six
//! digits, 30-second steps; any authenticator app), enrolled for one named admin token
//! or one merchant API key, and asked for (the `Qrgate-OTP` header) before a sensitive
//! action: an operator's blocks, limit and SCA changes, wallet secret rotation and new
//! or revoked admin tokens (`roles::needs_second_factor`); a merchant's refund above the
//! threshold it set.
//!
//! The secret is sealed at rest like every other secret (`sealed`, bound to the
//! factor's row). A code is good for the step before, the step of and the step after
//! the server's clock, once: a step used is never accepted again for that factor, so a
//! code seen over a shoulder or in a log is spent. Five wrong codes in a row hold the
//! factor for five minutes (a million codes cannot be tried).

use crate::{
    error::{ApiError, ApiResult, ErrorCode},
    sealed::SecretKind,
    state::AppState,
};
use base64::Engine;
use totp_rs::{Algorithm, TOTP};

/// The request header that carries the code.
pub const HEADER: &str = "qrgate-otp";
const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// Steps either side of the server's clock a code may come from.
const SKEW_STEPS: u8 = 1;
const SECRET_BYTES: usize = 20;
/// Wrong codes in a row before the factor is held, and for how long.
const FAILURES_MAX: i32 = 5;
const HELD_SECONDS: i64 = 300;

/// Whose factor it is.
#[derive(Clone, Copy, Debug)]
pub enum Holder<'a> {
    /// A named admin token, by id (the bootstrap token cannot have one).
    AdminToken(&'a str),
    /// A merchant API key, by id.
    ApiKey(&'a str),
}

impl Holder<'_> {
    fn kind(self) -> &'static str {
        match self {
            Holder::AdminToken(_) => "admin_token",
            Holder::ApiKey(_) => "api_key",
        }
    }

    /// What it is, for messages.
    fn noun(self) -> &'static str {
        match self {
            Holder::AdminToken(_) => "admin token",
            Holder::ApiKey(_) => "API key",
        }
    }

    fn holder_id(&self) -> &str {
        match self {
            Holder::AdminToken(id) | Holder::ApiKey(id) => id,
        }
    }
}

/// A new factor's secret, shown once: for the authenticator app.
pub struct Enrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

fn totp(secret: Vec<u8>) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, DIGITS, SKEW_STEPS, STEP_SECONDS, secret)
}

fn secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::Raw(secret.to_vec())
        .to_encoded()
        .to_string()
}

/// Starts (or restarts, while unconfirmed) the enrollment of `holder`'s factor. A
/// confirmed factor must be removed first (by an operator, or the shop's manager key).
pub async fn enroll(
    client: &impl deadpool_postgres::GenericClient,
    keyring: &crate::sealed::Keyring,
    holder: Holder<'_>,
    label: &str,
) -> ApiResult<Enrollment> {
    let secret: [u8; SECRET_BYTES] = rand::random();
    let id = qrgate_domain::ids::mint("sf");
    let stored = keyring.seal(
        SecretKind::SecondFactor,
        &id,
        &base64::engine::general_purpose::STANDARD.encode(secret),
    );
    let replaced = client
        .execute(
            "INSERT INTO second_factors (id, holder_kind, holder_id, secret) VALUES ($1, $2, $3, $4)
             ON CONFLICT (holder_kind, holder_id) DO UPDATE
                SET id = EXCLUDED.id, secret = EXCLUDED.secret, created_at = now(),
                    last_used_step = 0, failures = 0, held_until = NULL
              WHERE second_factors.confirmed_at IS NULL",
            &[&id, &holder.kind(), &holder.holder_id(), &stored],
        )
        .await?;
    if replaced == 0 {
        return Err(ApiError::new(
            ErrorCode::SecondFactorEnrolled,
            format!(
                "this {} already has a confirmed second factor; it must be removed before another is enrolled",
                holder.noun()
            ),
        ));
    }
    let secret_base32 = secret_base32(&secret);
    let label = url::form_urlencoded::byte_serialize(format!("qrgate:{label}").as_bytes())
        .collect::<String>();
    Ok(Enrollment {
        otpauth_uri: format!(
            "otpauth://totp/{label}?secret={secret_base32}&issuer=qrgate&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
        ),
        secret_base32,
    })
}

/// Confirms an enrollment with a first code from the app: from now on the factor is
/// asked for.
pub async fn confirm(state: &AppState, holder: Holder<'_>, code: &str) -> ApiResult<()> {
    // A body that is not a code at all is refused as such, before any factor is looked
    // up (or counted as a failed try).
    if !well_formed(code) {
        return Err(ApiError::invalid(
            "code",
            "must be the six digits the app shows",
        ));
    }
    check(state, holder, Some(code), Stage::Enrolling).await
}

/// Whether `holder` has a confirmed factor.
pub async fn enrolled(state: &AppState, holder: Holder<'_>) -> ApiResult<bool> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT 1 FROM second_factors
             WHERE holder_kind = $1 AND holder_id = $2 AND confirmed_at IS NOT NULL",
            &[&holder.kind(), &holder.holder_id()],
        )
        .await?;
    Ok(row.is_some())
}

/// Removes `holder`'s factor (confirmed or not). Whether there was one.
pub async fn remove(
    client: &impl deadpool_postgres::GenericClient,
    holder: Holder<'_>,
) -> ApiResult<bool> {
    let removed = client
        .execute(
            "DELETE FROM second_factors WHERE holder_kind = $1 AND holder_id = $2",
            &[&holder.kind(), &holder.holder_id()],
        )
        .await?;
    Ok(removed > 0)
}

/// A sensitive action by `holder`: its confirmed factor's code must be `presented`.
pub async fn require(
    state: &AppState,
    holder: Holder<'_>,
    presented: Option<&str>,
) -> ApiResult<()> {
    check(state, holder, presented, Stage::Confirmed).await
}

/// The code in the request's `Qrgate-OTP` header, if any.
pub fn presented(req: &actix_web::HttpRequest) -> Option<&str> {
    req.headers().get(HEADER).and_then(|v| v.to_str().ok())
}

#[derive(PartialEq)]
enum Stage {
    Enrolling,
    Confirmed,
}

async fn check(
    state: &AppState,
    holder: Holder<'_>,
    presented: Option<&str>,
    stage: Stage,
) -> ApiResult<()> {
    let required = |why: &str| {
        ApiError::new(
            ErrorCode::SecondFactorRequired,
            format!("{why} (a six-digit code in the `Qrgate-OTP` header)"),
        )
    };
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            "SELECT id, secret, confirmed_at IS NOT NULL, last_used_step, failures,
                    held_until > now(), ceil(extract(epoch FROM held_until - now()))::bigint
             FROM second_factors WHERE holder_kind = $1 AND holder_id = $2 FOR UPDATE",
            &[&holder.kind(), &holder.holder_id()],
        )
        .await?;
    let Some(row) = row.filter(|r| r.get::<_, bool>(2) == (stage == Stage::Confirmed)) else {
        return Err(match stage {
            Stage::Confirmed => required(&format!(
                "this action needs a second factor, and this {} has none confirmed: enroll one first",
                holder.noun()
            )),
            Stage::Enrolling => ApiError::not_found("second factor enrollment awaiting confirmation"),
        });
    };
    let id: String = row.get(0);
    if row.get::<_, Option<bool>>(5) == Some(true) {
        let seconds: i64 = row.get::<_, Option<i64>>(6).unwrap_or(HELD_SECONDS);
        return Err(ApiError::rate_limited(
            format!("too many wrong codes: this second factor is held for {seconds} s"),
            seconds.max(1) as u64,
        ));
    }
    let code = presented.ok_or_else(|| required("this action needs a second factor's code"))?;
    let secret = state
        .settings
        .secrets
        .open(SecretKind::SecondFactor, &id, row.get(1))
        .map_err(|e| {
            tracing::error!(second_factor_id = %id, error = %e, "a second factor's secret does not open");
            ApiError::internal(anyhow::anyhow!("second factor {id} does not open"))
        })?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(ApiError::internal_from)?;
    let last_used_step: i64 = row.get(3);
    match matching_step(secret, code, last_used_step) {
        Some(step) => {
            tx.execute(
                "UPDATE second_factors SET last_used_step = $2, failures = 0, held_until = NULL,
                        confirmed_at = coalesce(confirmed_at, now())
                 WHERE id = $1",
                &[&id, &step],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        None => {
            tx.execute(
                "UPDATE second_factors SET failures = failures + 1,
                        held_until = CASE WHEN failures + 1 >= $2
                                          THEN now() + make_interval(secs => $3) END
                 WHERE id = $1",
                &[&id, &FAILURES_MAX, &(HELD_SECONDS as f64)],
            )
            .await?;
            tx.commit().await?;
            tracing::warn!(second_factor_id = %id, holder = holder.kind(), "a wrong or spent second-factor code");
            Err(ApiError::new(
                ErrorCode::SecondFactorInvalid,
                "the second factor's code is wrong, expired or already used",
            ))
        }
    }
}

/// Six ASCII digits: what an authenticator app shows.
fn well_formed(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The time step whose code `code` is, within the skew and after `last_used_step`.
fn matching_step(secret: Vec<u8>, code: &str, last_used_step: i64) -> Option<i64> {
    if !well_formed(code) {
        return None;
    }
    let totp = totp(secret);
    let now = chrono::Utc::now().timestamp() as u64;
    let current = (now / STEP_SECONDS) as i64;
    let skew = i64::from(SKEW_STEPS);
    (current - skew..=current + skew)
        .filter(|step| *step > last_used_step)
        .find(|step| {
            let expected = totp.generate(*step as u64 * STEP_SECONDS);
            // Constant time: the lengths are equal (six digits each).
            expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238 appendix B, SHA-1, at T = 59 s and 1111111109 s (eight digits there;
        // six here are the last six).
        let totp = totp(b"12345678901234567890".to_vec());
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(totp.generate(1_111_111_109), "081804");
    }

    #[test]
    fn a_code_is_good_once_within_the_skew_and_only_if_it_is_six_digits() {
        let secret = b"12345678901234567890".to_vec();
        let now = chrono::Utc::now().timestamp() as u64;
        let code = totp(secret.clone()).generate(now);
        let step = matching_step(secret.clone(), &code, 0).expect("the current code");
        assert!(
            matching_step(secret.clone(), &code, step).is_none(),
            "spent"
        );
        let old = totp(secret.clone()).generate(now - 5 * STEP_SECONDS);
        assert!(matching_step(secret.clone(), &old, 0).is_none() || old == code);
        assert!(matching_step(secret.clone(), "12345", 0).is_none());
        assert!(matching_step(secret, &format!("{code} "), 0).is_none());
    }
}
