//! Merchant `Idempotency-Key` (docs/contract.md §6): the first definitive answer (2xx, 409,
//! 422) to a key is stored and given again for the same request; the same key with
//! another request is `idempotency_conflict`; a duplicate that waits too long for the
//! first is `idempotency_in_progress`. Transient answers are not stored.

use crate::error::{ApiError, ApiResult, ErrorCode};
use actix_web::{http::StatusCode, HttpRequest, HttpResponse};
use deadpool_postgres::Transaction;
use serde_json::Value;
use tokio_postgres::error::SqlState;

const KEY_CHARS_MAX: usize = 255;

/// A validated `Idempotency-Key` header and what it guards.
pub struct Idempotency {
    pub merchant_id: String,
    pub endpoint: &'static str,
    pub key: String,
    pub request_sha256: Vec<u8>,
}

impl Idempotency {
    /// `None` when the request carries no key. `request` is the parsed request (path
    /// parameters included), so formatting differences in the body do not matter.
    pub fn from_request(
        req: &HttpRequest,
        merchant_id: &str,
        endpoint: &'static str,
        request: &Value,
    ) -> ApiResult<Option<Self>> {
        let Some(value) = req.headers().get("idempotency-key") else {
            return Ok(None);
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                !k.is_empty() && k.len() <= KEY_CHARS_MAX && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                )
            })?;
        let canonical = serde_json::to_vec(request).expect("a JSON value serializes");
        Ok(Some(Idempotency {
            merchant_id: merchant_id.to_owned(),
            endpoint,
            key: key.to_owned(),
            request_sha256: crate::http::sha256(&[endpoint.as_bytes(), &canonical]),
        }))
    }

    /// The stored answer of an earlier request with this key, if any, read inside `tx`
    /// after taking the key's lock (`merchant_idempotency_earlier`): a request with the
    /// same key still at work on another connection is waited for, at most the
    /// connection's `lock_timeout` (`QRGATE_LOCK_TIMEOUT_MS`), and its answer given. The
    /// lock is held until `tx` ends; `finish` writes the key with the answer.
    pub async fn earlier_answer(&self, tx: &Transaction<'_>) -> ApiResult<Option<HttpResponse>> {
        let stmt = tx
            .prepare_cached("SELECT * FROM merchant_idempotency_earlier($1, $2, $3)")
            .await?;
        let row = tx
            .query_opt(&stmt, &[&self.merchant_id, &self.endpoint, &self.key])
            .await
            .map_err(in_progress_if_held)?;
        row.map(|row| self.replay_if_same(&row)).transpose()
    }

    /// The stored answer of `row` if it answered this very request; another request
    /// under the same key is `idempotency_conflict`.
    fn replay_if_same(&self, row: &tokio_postgres::Row) -> ApiResult<HttpResponse> {
        let stored_sha: Vec<u8> = row.get("request_sha256");
        if stored_sha != self.request_sha256 {
            return Err(ApiError::new(
                ErrorCode::IdempotencyConflict,
                "this Idempotency-Key was used with a different request",
            ));
        }
        Ok(replay(row.get("http_status"), row.get("response")))
    }
}

/// `Idempotency::earlier_answer` for a request that may carry no key (then `None`).
pub async fn earlier_answer(
    idem: &Option<Idempotency>,
    tx: &Transaction<'_>,
) -> ApiResult<Option<HttpResponse>> {
    match idem {
        Some(idem) => idem.earlier_answer(tx).await,
        None => Ok(None),
    }
}

/// A lock wait that ran out (`lock_timeout`) behind a request with the same key.
fn in_progress_if_held(e: tokio_postgres::Error) -> ApiError {
    match e.code() {
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => ApiError::new(
            ErrorCode::IdempotencyInProgress,
            "a request with this Idempotency-Key is still being processed; retry shortly",
        ),
        _ => e.into(),
    }
}

/// Stores a definitive answer under the key (if any) in `tx` and commits; anything
/// else is rolled back, so a retry runs afresh.
pub async fn finish(
    idem: Option<Idempotency>,
    tx: Transaction<'_>,
    outcome: ApiResult<(StatusCode, Value)>,
) -> ApiResult<HttpResponse> {
    let (status, body) = match outcome {
        Ok((status, body)) => (status, body),
        Err(e) if is_definitive(actix_web::ResponseError::status_code(&e)) => {
            (actix_web::ResponseError::status_code(&e), error_record(&e))
        }
        Err(e) => return Err(e), // dropping tx rolls the work back
    };
    if let Some(this) = idem {
        // The key and its answer, one row. Under the key's lock (`earlier_answer`) no
        // other gateway request can have written it since; a row there anyway was
        // written around that lock, and its answer stands: this work is undone.
        let stmt = tx
            .prepare_cached(
                "INSERT INTO merchant_idempotency
                     (merchant_id, endpoint, idempotency_key, request_sha256, http_status, response)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await?;
        let written = tx
            .execute(
                &stmt,
                &[
                    &this.merchant_id,
                    &this.endpoint,
                    &this.key,
                    &this.request_sha256,
                    &(status.as_u16() as i16),
                    &body,
                ],
            )
            .await
            .map_err(in_progress_if_held)?;
        if written == 0 {
            // The row that is there answers (dropping tx rolls this work back).
            return this.earlier_answer(&tx).await?.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "an Idempotency-Key row conflicted on insert and then was not there"
                ))
            });
        }
    }
    tx.commit().await?;
    Ok(replay(status.as_u16() as i16, body))
}

fn is_definitive(status: StatusCode) -> bool {
    status.is_success()
        || status == StatusCode::CONFLICT
        || status == StatusCode::UNPROCESSABLE_ENTITY
}

/// What is stored of an error: its code and message (the request id is each answer's own).
fn error_record(e: &ApiError) -> Value {
    serde_json::json!({"error": {"code": e.code.as_str(), "message": e.message}})
}

/// Turns a stored answer back into a response.
fn replay(status: i16, body: Value) -> HttpResponse {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let error = body.get("error").and_then(|e| {
        let code = ErrorCode::parse(e.get("code")?.as_str()?)?;
        Some(ApiError::new(code, e.get("message")?.as_str()?.to_owned()))
    });
    match error {
        Some(e) => HttpResponse::build(status).json(e.body()),
        None => HttpResponse::build(status).json(body),
    }
}

/// Runs one ledger function (`sql`, returning an `outcome` and a `message` column) for
/// a merchant POST: in one transaction with the Idempotency-Key (its lock and stored answer), again (a bounded
/// number of times) when it lost a race to a concurrent request, and answers with
/// `render` on success or the stored error code otherwise.
pub async fn ledger_call(
    state: &crate::state::AppState,
    idem: Option<Idempotency>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    render: impl Fn(&tokio_postgres::Row) -> ApiResult<Value>,
) -> ApiResult<HttpResponse> {
    let mut client = state.pool.get().await?;
    let mut attempt = 0;
    loop {
        let tx = client.transaction().await?;
        if let Some(stored) = earlier_answer(&idem, &tx).await? {
            return Ok(stored);
        }
        let stmt = tx.prepare_cached(sql).await?;
        match tx.query_one(&stmt, params).await {
            Err(e)
                if crate::db::is_retryable(&e) && attempt < state.settings.limits.db_retry_max =>
            {
                attempt += 1
            }
            Err(e) => return Err(e.into()),
            Ok(row) => {
                let outcome = outcome_error(&row)
                    .map_or_else(|| render(&row).map(|body| (StatusCode::CREATED, body)), Err);
                return finish(idem, tx, outcome).await;
            }
        }
    }
}

/// The error a ledger function answered, or `None` when it succeeded.
pub fn outcome_error(row: &tokio_postgres::Row) -> Option<ApiError> {
    let outcome: &str = row.get("outcome");
    if outcome == "succeeded" {
        return None;
    }
    let message: Option<String> = row.get("message");
    // Only wallet calls can be declined by a risk rule; other outcomes have no column.
    let rule: Option<String> = row.try_get("rule").ok().flatten();
    Some(match ErrorCode::parse(outcome) {
        Some(code) => ApiError::new(code, message.unwrap_or_default()).with_rule(rule),
        None => ApiError::internal(anyhow::anyhow!(
            "a ledger function answered an unknown outcome {outcome}"
        )),
    })
}
