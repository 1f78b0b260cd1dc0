//! Read-only reconciliation for operators and the simulator: the ledger invariants of
//! docs/contract.md §4, and whether given payments are each settled exactly once.

use crate::{
    auth::Admin,
    error::{ApiError, ApiResult},
    http::json_body,
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/admin/ledger/invariants",
        crate::http::get().to(invariants),
    )
    .route(
        "/v1/admin/reconciliation/payments",
        web::post().to(reconcile_payments),
    );
}

/// Violations listed in one answer; the count is always exact.
const VIOLATIONS_LISTED_MAX: usize = 100;
/// Payment ids checked in one request.
const PAYMENT_IDS_PER_REQUEST_MAX: usize = 10_000;
/// These reads scan the ledger: they get a longer statement budget than requests do.
const RECONCILIATION_STATEMENT_TIMEOUT_MS: u32 = 120_000;

/// A read-only transaction with the reconciliation statement budget.
async fn reconciliation_transaction(
    client: &mut deadpool_postgres::Client,
) -> ApiResult<deadpool_postgres::Transaction<'_>> {
    let tx = client.build_transaction().read_only(true).start().await?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {RECONCILIATION_STATEMENT_TIMEOUT_MS}"
    ))
    .await?;
    Ok(tx)
}

async fn invariants(_: Admin, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT invariant, detail FROM ledger_invariant_violations()",
            &[],
        )
        .await?;
    let listed: Vec<_> = rows
        .iter()
        .take(VIOLATIONS_LISTED_MAX)
        .map(|r| json!({"invariant": r.get::<_, i32>(0), "detail": r.get::<_, String>(1)}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "ok": rows.is_empty(),
        "violations_count": rows.len(),
        "violations": listed,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentsRequest {
    payment_ids: Vec<String>,
}

/// For each payment id: it exists, its order is paid by it, and exactly one ledger
/// transaction carries it. Answers the ids that fail with the reason.
async fn reconcile_payments(
    _: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    // A full batch of ids is larger than an ordinary body.
    let limit = state
        .settings
        .limits
        .body_bytes_max
        .max(PAYMENT_IDS_PER_REQUEST_MAX * 40);
    let body: PaymentsRequest = json_body(payload, &req, limit).await?;
    if body.payment_ids.len() > PAYMENT_IDS_PER_REQUEST_MAX {
        return Err(ApiError::invalid(
            "payment_ids",
            format!("at most {PAYMENT_IDS_PER_REQUEST_MAX} per request"),
        ));
    }
    let mut client = state.pool.get().await?;
    let tx = reconciliation_transaction(&mut client).await?;
    // One pass over ledger_transactions (a hash join), not a lookup per id: `reference`
    // has no index, and the write path is better without one.
    let rows = tx
        .query(
            "WITH ids AS (SELECT DISTINCT unnest($1::text[]) AS id),
                  carried AS (SELECT t.reference, count(*) AS n FROM ledger_transactions t
                              JOIN ids ON ids.id = t.reference WHERE t.kind = 'payment' GROUP BY t.reference)
             SELECT ids.id,
                    CASE WHEN p.id IS NULL THEN 'no such payment'
                         WHEN o.payment_id IS DISTINCT FROM p.id OR o.status NOT IN ('paid', 'partially_refunded', 'refunded')
                              THEN 'its order is ' || coalesce(o.status, 'missing') || ' and not paid by it'
                         WHEN coalesce(c.n, 0) <> 1 THEN 'it has ' || coalesce(c.n, 0) || ' ledger transactions, not one'
                    END
             FROM ids
             LEFT JOIN payments p ON p.id = ids.id
             LEFT JOIN orders o ON o.id = p.order_id
             LEFT JOIN carried c ON c.reference = ids.id",
            &[&body.payment_ids],
        )
        .await?;
    let problems: Vec<_> = rows
        .iter()
        .filter_map(|r| {
            r.get::<_, Option<String>>(1)
                .map(|why| json!({"payment_id": r.get::<_, String>(0), "problem": why}))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "checked": body.payment_ids.len(),
        "settled_once": body.payment_ids.len() - problems.len(),
        "problems": problems.iter().take(VIOLATIONS_LISTED_MAX).collect::<Vec<_>>(),
    })))
}
