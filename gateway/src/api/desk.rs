//! The customer-service desk (`GET /v1/admin/search`, every operator role): "I paid but
//! the shop says no" answered in one call. An operator gives what the customer or the
//! shop has — an order, payment or refund id, a customer account id, a wallet's
//! `wallet_txn_id` (with the wallet) or a merchant reference (with the merchant) — and
//! gets each matching order whole: its state, its payment, its refunds, its timeline of
//! attempts and declines (with the rule that declined), and every webhook the shop was
//! sent about it, with the answers it gave and when.
//!
//! Every lookup goes through an index: the payment path's own (primary keys, the wallet's
//! and the merchant's references, postings by account) and one the desk adds, webhook
//! events by the object they are about (one more index entry per outbox row).

use crate::{
    api::orders::{order_json_at, timeline_rows, ORDER_COLUMNS, ORDER_COLUMNS_COUNT},
    auth::Admin,
    error::{ApiError, ApiResult},
    http::{parse_timestamp, timestamp},
    state::AppState,
};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{
    ids,
    money::{format_minor, parse_decimal},
    text::AsciiText,
    Currency,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::GenericClient;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/search", crate::http::get().to(search));
}

/// Orders one search returns at most (each comes whole).
const RESULTS_MAX: i64 = 20;
const RESULTS_DEFAULT: i64 = 10;
/// Webhook events shown per order.
const PER_ORDER_ITEMS_MAX: i64 = 50;
const QUERY_CHARS_MAX: usize = 100;
/// `merchant_id` and `wallet_id`, at most.
const SCOPE_ID_CHARS_MAX: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    /// Needed to find a merchant reference.
    merchant_id: Option<String>,
    /// Needed to find a `wallet_txn_id`.
    wallet_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Only orders of this amount (a decimal string, in each order's currency).
    amount: Option<String>,
    max_results: Option<i64>,
}

async fn search(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let q = AsciiText::<QUERY_CHARS_MAX>::parse(&query.q).map_err(|e| ApiError::invalid("q", e))?;
    let q = q.as_str();
    let from = query
        .from
        .as_deref()
        .map(|s| parse_timestamp("from", s))
        .transpose()?;
    let to = query
        .to
        .as_deref()
        .map(|s| parse_timestamp("to", s))
        .transpose()?;
    let limit = query.max_results.unwrap_or(RESULTS_DEFAULT);
    if !(1..=RESULTS_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "max_results",
            format!("must be 1 to {RESULTS_MAX}"),
        ));
    }
    let amount = query
        .amount
        .as_deref()
        .map(parse_decimal)
        .transpose()
        .map_err(|e| ApiError::invalid("amount", e))?;
    let scope = |field: &str, id: Option<&str>| {
        id.map(|id| {
            AsciiText::<SCOPE_ID_CHARS_MAX>::parse(id).map_err(|e| ApiError::invalid(field, e))
        })
        .transpose()
    };
    let merchant_id = scope("merchant_id", query.merchant_id.as_deref())?;
    let wallet_id = scope("wallet_id", query.wallet_id.as_deref())?;
    let client = state.pool.get().await?;
    let Some(order_ids) = matching_orders(
        &**client,
        q,
        merchant_id.as_ref().map(AsciiText::as_str),
        wallet_id.as_ref().map(AsciiText::as_str),
    )
    .await?
    else {
        return Ok(HttpResponse::Ok().json(json!({"q": q, "items": [], "hint": HINT})));
    };
    let sql = format!(
        "SELECT {ORDER_COLUMNS}, o.merchant_id, m.name
         FROM orders o JOIN merchants m ON m.id = o.merchant_id JOIN currencies c ON c.code = o.currency
         WHERE o.id = ANY($1)
           AND ($2::timestamptz IS NULL OR o.created_at >= $2)
           AND ($3::timestamptz IS NULL OR o.created_at < $3)
           AND ($4::text IS NULL OR o.amount_minor::numeric = $4::text::numeric * 10 ^ c.minor_units)
         ORDER BY o.created_at DESC, o.id DESC LIMIT $5"
    );
    let amount = amount.map(|a| a.to_string());
    let rows = client
        .query(&sql, &[&order_ids, &from, &to, &amount, &limit])
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let order_id: &str = row.get(0);
        items.push(json!({
            "merchant": {
                "id": row.get::<_, &str>(ORDER_COLUMNS_COUNT),
                "name": row.get::<_, &str>(ORDER_COLUMNS_COUNT + 1),
            },
            "order": order_json_at(row, 0),
            "payment": payment(&**client, order_id).await?,
            "refunds": refunds(&**client, order_id).await?,
            "timeline": timeline(&**client, order_id).await?,
            "webhooks": webhooks(&**client, order_id).await?,
        }));
    }
    Ok(HttpResponse::Ok().json(json!({"q": q, "items": items})))
}

/// What a search that cannot be looked up is told.
const HINT: &str =
    "give an order (ord_…), payment (pay_…), refund (rfd_…) or customer account (acc_…) id; \
                    a wallet_txn_id with wallet_id; or a merchant reference with merchant_id";

/// The orders `q` names, by what it looks like: a gateway id by its prefix, otherwise a
/// `wallet_txn_id` (with `wallet_id`) or a merchant reference (with `merchant_id`).
/// None: nothing `q` could be looked up as.
async fn matching_orders(
    client: &impl GenericClient,
    q: &str,
    merchant_id: Option<&str>,
    wallet_id: Option<&str>,
) -> ApiResult<Option<Vec<String>>> {
    let prefix = q
        .split_once('_')
        .map(|(p, _)| p)
        .filter(|_| ids::is_gateway_id(q));
    // Each lookup, and the wallet or merchant that scopes it (when it needs one).
    let (sql, scope) = match (prefix, merchant_id, wallet_id) {
        (Some("ord"), _, _) => ("SELECT id FROM orders WHERE id = $1", None),
        (Some("pay"), _, _) => ("SELECT order_id FROM payments WHERE id = $1", None),
        (Some("rfd"), _, _) => ("SELECT order_id FROM refunds WHERE id = $1", None),
        // A customer account: the orders it paid, through its postings, newest first (in
        // the order of the account's index: any account id may be asked, the fee account's
        // millions of lines too, and sorting them by id read every one).
        (Some("acc"), _, _) => (
            "SELECT p.order_id FROM postings s JOIN payments p ON p.ledger_transaction_id = s.ledger_transaction_id
             WHERE s.account_id = $1 ORDER BY s.xid DESC, s.id DESC LIMIT 200",
            None,
        ),
        (_, _, Some(wallet)) => (
            "SELECT order_id FROM wallet_txns WHERE wallet_txn_id = $1 AND wallet_id = $2 AND order_id IS NOT NULL",
            Some(wallet),
        ),
        (_, Some(merchant), None) => (
            "SELECT id FROM orders WHERE merchant_reference = $1 AND merchant_id = $2",
            Some(merchant),
        ),
        _ => return Ok(None),
    };
    let rows = match scope {
        Some(scope) => client.query(sql, &[&q, &scope]).await?,
        None => client.query(sql, &[&q]).await?,
    };
    Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
}

async fn payment(client: &impl GenericClient, order_id: &str) -> ApiResult<Value> {
    let row = client
        .query_opt(
            "SELECT id, wallet_id, wallet_txn_id, customer_account_id, amount_minor, currency, discount_minor,
                    charged_minor, charged_currency, fee_minor, points_used, points_earned, paid_at
             FROM payments WHERE order_id = $1",
            &[&order_id],
        )
        .await?;
    let Some(r) = row else { return Ok(Value::Null) };
    let money = |minor: i64, code: &str| {
        Currency::from_ledger(code)
            .map(|c| format_minor(minor, c))
            .map_err(ApiError::internal_from)
    };
    let currency: &str = r.get(5);
    Ok(json!({
        "id": r.get::<_, &str>(0), "wallet_id": r.get::<_, &str>(1), "wallet_txn_id": r.get::<_, &str>(2),
        "customer_account_id": r.get::<_, &str>(3), "amount": money(r.get(4), currency)?, "currency": currency,
        "discount": money(r.get(6), currency)?, "charged": money(r.get(7), r.get(8))?,
        "charged_currency": r.get::<_, &str>(8), "fee": money(r.get(9), currency)?,
        "points_used": r.get::<_, i64>(10), "points_earned": r.get::<_, i64>(11),
        "paid_at": timestamp(r.get(12)),
    }))
}

async fn refunds(client: &impl GenericClient, order_id: &str) -> ApiResult<Value> {
    let rows = client
        .query(
            "SELECT r.id, r.outcome, r.amount_minor, o.currency, r.refund_reference, r.created_at
             FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.order_id = $1 ORDER BY r.created_at, r.id",
            &[&order_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let currency = Currency::from_ledger(r.get(3)).map_err(ApiError::internal_from)?;
            Ok(json!({
                "id": r.get::<_, &str>(0), "outcome": r.get::<_, &str>(1),
                "amount": format_minor(r.get(2), currency), "refund_reference": r.get::<_, &str>(4),
                "created_at": timestamp(r.get(5)),
            }))
        })
        .collect::<ApiResult<Vec<Value>>>()
        .map(Value::from)
}

/// The order's timeline (`orders::timeline_rows`), with whole account ids: support sees
/// what the merchant sees masked.
async fn timeline(client: &impl GenericClient, order_id: &str) -> ApiResult<Value> {
    let rows = timeline_rows(client, order_id).await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "at": timestamp(r.get::<_, DateTime<Utc>>(0)), "kind": r.get::<_, &str>(1),
                "code": r.get::<_, Option<&str>>(2), "customer_account_id": r.get::<_, Option<&str>>(3),
                "rule": r.get::<_, Option<&str>>(4), "wallet_id": r.get::<_, Option<&str>>(5),
            })
        })
        .collect())
}

/// What the shop was told: each webhook about the order (or its refunds), with the
/// last answer its endpoint gave and when it was delivered.
async fn webhooks(client: &impl GenericClient, order_id: &str) -> ApiResult<Value> {
    let rows = client
        .query(
            "SELECT id, type, status, attempts, last_http_status, last_error, last_attempt_at, delivered_at, created_at
             FROM webhook_events
             WHERE object_id = $1 OR object_id = ANY(ARRAY(SELECT id FROM refunds WHERE order_id = $1))
             ORDER BY created_at, id LIMIT $2",
            &[&order_id, &PER_ORDER_ITEMS_MAX],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, &str>(0), "type": r.get::<_, &str>(1), "status": r.get::<_, &str>(2),
                "attempts": r.get::<_, i32>(3), "last_http_status": r.get::<_, Option<i16>>(4),
                "last_error": r.get::<_, Option<&str>>(5),
                "last_attempt_at": r.get::<_, Option<DateTime<Utc>>>(6).map(timestamp),
                "delivered_at": r.get::<_, Option<DateTime<Utc>>>(7).map(timestamp),
                "created_at": timestamp(r.get(8)),
            })
        })
        .collect())
}
