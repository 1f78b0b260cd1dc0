//! The merchant's API: orders (create, list, read with long-poll, QR, close,
//! timeline) and its own account.

use crate::{
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult, ErrorCode},
    http::{
        currency_field, decode_cursor, empty_body, encode_cursor, id_filter, json_body,
        money_field, page_json, page_limit, parse_timestamp, timestamp,
    },
    idempotency::{self, Idempotency},
    qr_image,
    state::AppState,
    streams,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use qrgate_domain::{
    emv::{LocalName, OrderQr},
    ids,
    money::format_minor,
    text::AsciiText,
    tips::{FeePercent, TipError, TipPolicy},
    Currency, Money,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/orders", web::post().to(create_order))
        .route("/v1/orders", crate::http::get().to(list_orders))
        .route("/v1/orders/{id}", crate::http::get().to(get_order))
        .route("/v1/orders/{id}/qr.svg", crate::http::get().to(qr_svg))
        .route("/v1/orders/{id}/qr.png", crate::http::get().to(qr_png))
        .route("/v1/orders/{id}/close", web::post().to(close_order))
        .route(
            "/v1/orders/{id}/stream",
            crate::http::get().to(order_stream),
        )
        .route(
            "/v1/orders/{id}/events",
            crate::http::get().to(order_events),
        )
        .route("/v1/accounts", crate::http::get().to(list_accounts))
        .route("/v1/accounts/{id}", crate::http::get().to(get_account))
        .route(
            "/v1/accounts/{id}/statement",
            crate::http::get().to(merchant_statement),
        );
}

const EXPIRES_IN_SECONDS_DEFAULT: i32 = 300;
const EXPIRES_IN_SECONDS_MIN: i32 = 30;
/// An order's longest life, so also the longest an order is made before its payment:
/// the reports read only the orders that could have been paid in their window.
pub const EXPIRES_IN_SECONDS_MAX: i32 = 86_400;
const DESCRIPTION_CHARS_MAX: usize = 500;

/// The columns `order_json` reads. `status` is the effective one: a pending order
/// past `expires_at` reads as expired even before the sweeper has moved it.
pub const ORDER_COLUMNS: &str = "o.id, order_effective_status(o.status, o.expires_at),
     o.amount_minor, o.currency, o.merchant_reference, o.description, o.terminal_id, o.qr_payload,
     o.expires_at, o.created_at, o.updated_at, o.paid_at, o.payment_id, o.discount_minor, o.charged_minor,
     o.charged_currency, o.created_by_key_id, o.static_code_id, o.refunded_minor, o.tip_policy,
     o.convenience_fee_minor, o.convenience_fee_percent_hundredths, o.tip_minor";

/// How many columns `ORDER_COLUMNS` is: a query's own columns come after them.
pub const ORDER_COLUMNS_COUNT: usize = 23;

pub fn order_json(row: &Row) -> Value {
    order_json_at(row, 0)
}

/// `order_json` of a row whose `ORDER_COLUMNS` start at column `base`.
pub fn order_json_at(row: &Row, base: usize) -> Value {
    let col = |i: usize| base + i;
    let currency = Currency::parse(row.get(col(3))).expect("stored currencies are known");
    json!({
        "id": row.get::<_, &str>(col(0)),
        "status": row.get::<_, &str>(col(1)),
        "amount": format_minor(row.get(col(2)), currency),
        "currency": currency,
        "merchant_reference": row.get::<_, &str>(col(4)),
        "description": row.get::<_, Option<&str>>(col(5)),
        "terminal_id": row.get::<_, Option<&str>>(col(6)),
        "qr_payload": row.get::<_, &str>(col(7)),
        "expires_at": timestamp(row.get(col(8))),
        "created_at": timestamp(row.get(col(9))),
        "updated_at": timestamp(row.get(col(10))),
        "paid_at": row.get::<_, Option<DateTime<Utc>>>(col(11)).map(timestamp),
        "payment_id": row.get::<_, Option<&str>>(col(12)),
        // Once paid: the discount (in the order's currency) and what was charged, in the
        // paying account's currency.
        "discount": row.get::<_, Option<i64>>(col(13)).map(|d| format_minor(d, currency)),
        "charged": row
            .get::<_, Option<&str>>(col(15))
            .and_then(|c| Currency::parse(c).ok())
            .zip(row.get::<_, Option<i64>>(col(14)))
            .map(|(c, minor)| format_minor(minor, c)),
        "charged_currency": row.get::<_, Option<&str>>(col(15)),
        // The API key (staff key) that made the order.
        "created_by_key_id": row.get::<_, Option<&str>>(col(16)),
        // The static code the customer scanned, for an order its payment made.
        "static_code_id": row.get::<_, Option<&str>>(col(17)),
        // Refunded so far, in the order's currency (its refunds: `GET …/refunds`).
        "refunded": format_minor(row.get(col(18)), currency),
        // What the customer may or must add (EMV tags 55–57): the convenience fee in
        // the order's currency (with its percentage), and once paid, the tip.
        "tip_policy": row.get::<_, &str>(col(19)),
        "convenience_fee": match row.get::<_, &str>(col(19)) {
            "fixed_fee" | "percentage_fee" => Some(format_minor(row.get(col(20)), currency)),
            _ => None,
        },
        "convenience_fee_percent": row
            .get::<_, Option<i32>>(col(21))
            .and_then(|h| FeePercent::from_hundredths(h).ok())
            .map(|p| p.to_string()),
        "tip": row.get::<_, Option<i64>>(col(22)).map(|t| format_minor(t, currency)),
    })
}

pub(crate) async fn fetch_order(
    client: &impl GenericClient,
    merchant_id: &str,
    order_id: &str,
) -> ApiResult<Row> {
    if !ids::is_gateway_id(order_id) {
        return Err(ApiError::not_found("order"));
    }
    let sql =
        format!("SELECT {ORDER_COLUMNS} FROM orders o WHERE o.id = $1 AND o.merchant_id = $2");
    let stmt = client.prepare_cached(&sql).await?;
    client
        .query_opt(&stmt, &[&order_id, &merchant_id])
        .await?
        .ok_or_else(|| ApiError::not_found("order"))
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrderRequest {
    pub amount: String,
    pub currency: String,
    pub merchant_reference: String,
    pub description: Option<String>,
    pub terminal_id: Option<String>,
    pub expires_in_seconds: Option<i32>,
    /// `none`, `prompt`, `fixed_fee` or `percentage_fee`; absent: the shop's default.
    pub tip_policy: Option<String>,
    pub convenience_fee: Option<String>,
    pub convenience_fee_percent: Option<String>,
}

/// An order as the cashier asked for it, every field checked.
pub(crate) struct NewOrder {
    pub(crate) amount: Money,
    merchant_reference: AsciiText<25>,
    description: Option<String>,
    terminal_id: Option<AsciiText<25>>,
    expires_in_seconds: i32,
    /// None: the shop's default.
    tip_policy: Option<TipPolicy>,
}

impl NewOrder {
    pub(crate) fn parse(r: &NewOrderRequest) -> ApiResult<Self> {
        let currency = currency_field("currency", &r.currency)?;
        let amount = money_field("amount", &r.amount, currency)?;
        let merchant_reference = AsciiText::parse(&r.merchant_reference)
            .map_err(|e| ApiError::invalid("merchant_reference", e))?;
        let terminal_id = r
            .terminal_id
            .as_deref()
            .map(AsciiText::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("terminal_id", e))?;
        if r.description
            .as_ref()
            .is_some_and(|d| d.chars().count() > DESCRIPTION_CHARS_MAX)
        {
            return Err(ApiError::invalid(
                "description",
                format!("must be at most {DESCRIPTION_CHARS_MAX} characters"),
            ));
        }
        let expires_in_seconds = r.expires_in_seconds.unwrap_or(EXPIRES_IN_SECONDS_DEFAULT);
        if !(EXPIRES_IN_SECONDS_MIN..=EXPIRES_IN_SECONDS_MAX).contains(&expires_in_seconds) {
            return Err(ApiError::invalid(
                "expires_in_seconds",
                format!("must be between {EXPIRES_IN_SECONDS_MIN} and {EXPIRES_IN_SECONDS_MAX}"),
            ));
        }
        let tip_policy = match &r.tip_policy {
            Some(policy) => Some(
                TipPolicy::parse(
                    policy,
                    r.convenience_fee.as_deref(),
                    r.convenience_fee_percent.as_deref(),
                    currency,
                )
                .map_err(tip_policy_error)?,
            ),
            None if r.convenience_fee.is_some() || r.convenience_fee_percent.is_some() => {
                return Err(ApiError::invalid(
                    "tip_policy",
                    "is required with convenience_fee or convenience_fee_percent",
                ))
            }
            None => None,
        };
        Ok(NewOrder {
            amount,
            merchant_reference,
            description: r.description.clone(),
            terminal_id,
            expires_in_seconds,
            tip_policy,
        })
    }
}

/// A tip policy's refusal, named by the field it is about.
pub(crate) fn tip_policy_error(e: TipError) -> ApiError {
    let field = match &e {
        TipError::UnknownPolicy => "tip_policy",
        TipError::Missing(field) | TipError::NotAllowed(field, _) => field,
        TipError::BadPercent => "convenience_fee_percent",
        TipError::BadFee(_) => "convenience_fee",
    };
    ApiError::invalid(field, e)
}

async fn create_order(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    let body: NewOrderRequest = json_body(payload, &req, limits.body_bytes_max).await?;
    let order = NewOrder::parse(&body)?;
    let request = serde_json::to_value(&body).expect("a request serializes");
    let idem = Idempotency::from_request(&req, &merchant.merchant_id, "POST /v1/orders", &request)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = idempotency::earlier_answer(&idem, &tx).await? {
        return Ok(stored);
    }
    let outcome = insert_order(&tx, &state, &merchant, &order)
        .await
        .map(|row| (StatusCode::CREATED, order_json(&row)));
    idempotency::finish(idem, tx, outcome).await
}

/// Inserts a pending order made by `merchant`'s key; the row has `ORDER_COLUMNS`.
pub(crate) async fn insert_order(
    tx: &deadpool_postgres::Transaction<'_>,
    state: &AppState,
    caller: &Merchant,
    order: &NewOrder,
) -> ApiResult<Row> {
    let merchant_id = caller.merchant_id.as_str();
    let merchant = &caller.profile;
    if merchant.blocked {
        return Err(ApiError::new(
            ErrorCode::AccountBlocked,
            format!("merchant {merchant_id} is blocked: it can take no new orders"),
        ));
    }
    if order.amount.currency().code() != merchant.currency {
        return Err(ApiError::new(
            ErrorCode::CurrencyMismatch,
            format!(
                "this merchant settles in {}; orders must be in it",
                merchant.currency
            ),
        ));
    }
    let order_id = ids::mint("ord");
    let tip = order.tip_policy.unwrap_or(merchant.tip_policy);
    let qr = OrderQr {
        gateway_guid: state.settings.gateway_guid.clone(),
        merchant_id: merchant_id.to_owned(),
        order_token: ids::mint_order_token(),
        mcc: merchant.mcc.clone(),
        amount: order.amount,
        tip,
        country: merchant.country.clone(),
        merchant_name: merchant.name.clone(),
        merchant_city: merchant.city.clone(),
        bill_number: order.merchant_reference.as_str().to_owned(),
        order_id: order_id.clone(),
        terminal_id: order.terminal_id.as_ref().map(|t| t.as_str().to_owned()),
        local: merchant_local_name(merchant),
    };
    let payload = qr
        .encode()
        .map_err(|e| ApiError::invalid("order", format!("does not fit the EMV QR: {e}")))?;
    let fee_rate_bps = merchant.fee_rate_bps;
    let insert = format!(
        "INSERT INTO orders AS o (id, merchant_id, status, amount_minor, currency, merchant_reference, description,
                                  terminal_id, qr_payload, fee_rate_bps, expires_at, created_by_key_id, tip_policy,
                                  convenience_fee_minor, convenience_fee_percent_hundredths)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10), $11, $12, $13, $14)
         ON CONFLICT (merchant_id, merchant_reference) WHERE status NOT IN ('expired', 'closed') DO NOTHING
         RETURNING {ORDER_COLUMNS}"
    );
    let convenience_fee_minor = tip.convenience_fee_minor(order.amount.minor());
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 14] = [
        &order_id,
        &merchant_id,
        &order.amount.minor(),
        &order.amount.currency().code(),
        &order.merchant_reference.as_str(),
        &order.description,
        &order.terminal_id.as_ref().map(|t| t.as_str()),
        &payload,
        &fee_rate_bps,
        &f64::from(order.expires_in_seconds),
        &caller.key_id,
        &tip.name(),
        &convenience_fee_minor,
        &tip.percent_hundredths(),
    ];
    let insert = tx.prepare_cached(&insert).await?;
    // The reference may be held by a pending order that is due but not yet swept:
    // expire it, then insert again (once).
    for _ in 0..2 {
        if let Some(row) = tx.query_opt(&insert, &params).await? {
            return Ok(row);
        }
        let holder = tx
            .query_one(
                "SELECT id, order_due(status, expires_at), status FROM orders
                 WHERE merchant_id = $1 AND merchant_reference = $2 AND status NOT IN ('expired', 'closed') FOR NO KEY UPDATE",
                &[&merchant_id, &order.merchant_reference.as_str()],
            )
            .await?;
        let holder_id: String = holder.get(0);
        if !holder.get::<_, bool>(1) {
            // What to do depends on the holder: a pending order can be closed; a paid
            // (or refunded) one keeps its reference for good.
            let status: &str = holder.get(2);
            let hint = if status == "pending" {
                "close it or use another reference"
            } else {
                "a paid order keeps its reference: use another one"
            };
            return Err(ApiError::new(
                ErrorCode::DuplicateReference,
                format!(
                    "merchant_reference is in use by order {holder_id}, which is {status}; {hint}"
                ),
            ));
        }
        tx.execute(
            "UPDATE orders SET status = 'expired', updated_at = now() WHERE id = $1",
            &[&holder_id],
        )
        .await?;
        tx.execute(
            "INSERT INTO order_events (order_id, kind) VALUES ($1, 'expired')",
            &[&holder_id],
        )
        .await?;
    }
    Err(ApiError::internal(anyhow::anyhow!(
        "order insert neither succeeded nor conflicted"
    )))
}

/// The shop's name in its own language (tag 64), when it has one.
pub(crate) fn merchant_local_name(merchant: &crate::auth::MerchantProfile) -> Option<LocalName> {
    merchant.local_name.clone().map(|name| LocalName {
        language: merchant
            .local_language
            .clone()
            .unwrap_or_else(|| "ZH".into()),
        name,
        city: merchant.local_city.clone(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The merchant's own search: an order, payment or refund id, or its reference.
    q: Option<String>,
    status: Option<String>,
    /// Only the orders this API key (staff key) made.
    key_id: Option<String>,
    /// Only the orders paid through this static code.
    static_code_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A merchant's search text (an id or a reference), at most.
const SEARCH_CHARS_MAX: usize = 100;

const ORDER_STATUSES: [&str; 6] = [
    "pending",
    "paid",
    "expired",
    "closed",
    "partially_refunded",
    "refunded",
];

async fn list_orders(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    let q = query.into_inner();
    if let Some(s) = &q.status {
        if !ORDER_STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(
                "status",
                format!("must be one of {}", ORDER_STATUSES.join(", ")),
            ));
        }
    }
    let from = q
        .from
        .as_deref()
        .map(|s| parse_timestamp("from", s))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|s| parse_timestamp("to", s))
            .transpose()?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let limit = page_limit(q.limit, limits.page_size_default, limits.page_size_max)?;
    let (after_at, after_id) = after.unzip();
    let search =
        q.q.as_deref()
            .map(|text| AsciiText::<SEARCH_CHARS_MAX>::parse(text).map(|t| t.as_str().to_owned()))
            .transpose()
            .map_err(|e| ApiError::invalid("q", e))?;
    let key_id = id_filter("key_id", q.key_id.as_deref())?;
    let static_code_id = id_filter("static_code_id", q.static_code_id.as_deref())?;
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders o
         WHERE o.merchant_id = $1
           AND ($2::text IS NULL OR order_effective_status(o.status, o.expires_at) = $2)
           AND ($3::timestamptz IS NULL OR o.created_at >= $3)
           AND ($4::timestamptz IS NULL OR o.created_at < $4)
           AND ($5::timestamptz IS NULL OR (o.created_at, o.id) < ($5, $6))
           AND ($8::text IS NULL OR o.created_by_key_id = $8)
           AND ($10::text IS NULL OR o.static_code_id = $10)
           AND ($9::text IS NULL OR o.id = $9 OR o.merchant_reference = $9
                OR o.id = (SELECT order_id FROM payments WHERE id = $9)
                OR o.id = (SELECT order_id FROM refunds WHERE id = $9))
         ORDER BY o.created_at DESC, o.id DESC LIMIT $7"
    );
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &sql,
            &[
                &merchant.merchant_id,
                &q.status,
                &from,
                &to,
                &after_at,
                &after_id,
                &(limit + 1),
                &key_id,
                &search,
                &static_code_id,
            ],
        )
        .await?;
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, order_json, |last| {
            encode_cursor(last.get(9), last.get(0))
        })),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetQuery {
    wait_seconds: Option<u64>,
}

/// The order; with `wait_seconds`, held while it is pending (no connection is held
/// while waiting: each look is a short read).
async fn get_order(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<GetQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    let order_id = path.into_inner();
    let wait = query.wait_seconds.unwrap_or(0);
    if wait > limits.long_poll_seconds_max {
        return Err(ApiError::invalid(
            "wait_seconds",
            format!("must be at most {}", limits.long_poll_seconds_max),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let registration = state.order_waiters.register(&order_id);
    loop {
        // Armed before the read, so a settlement between the read and the wait is seen.
        let settled = registration.notify().notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let row = {
            let client = state.pool.get().await?;
            fetch_order(&client, &merchant.merchant_id, &order_id).await?
        };
        let now = tokio::time::Instant::now();
        if row.get::<_, &str>(1) != "pending" || now >= deadline {
            return Ok(HttpResponse::Ok().json(order_json(&row)));
        }
        let expires_at: DateTime<Utc> = row.get(8);
        let to_expiry = (expires_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        let recheck = Duration::from_millis(limits.long_poll_recheck_ms);
        let until = deadline.min(now + to_expiry.min(recheck));
        // Woken by this replica's settlement of the order, or re-read at `until`.
        let _ = tokio::time::timeout_at(until, settled).await;
        // Settled here: the pending order as read, with what the payment changed, is
        // what a re-read would show; no round trip for it.
        if let Some(changed) = registration.settlement() {
            let mut order = order_json(&row);
            for (field, value) in changed.as_object().into_iter().flatten() {
                order[field] = value.clone();
            }
            return Ok(HttpResponse::Ok().json(order));
        }
    }
}

/// The order's state as server-sent events (`crate::streams`): for the cashier page.
async fn order_stream(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let order_id = path.into_inner();
    let state = streams::shared(&state);
    let slot = streams::open_slot(&state, &merchant.merchant_id)?;
    let fetch: streams::Fetch = {
        let (state, merchant_id, order_id) = (
            state.clone(),
            merchant.merchant_id.clone(),
            order_id.clone(),
        );
        std::sync::Arc::new(move || {
            let (state, merchant_id, order_id) =
                (state.clone(), merchant_id.clone(), order_id.clone());
            Box::pin(async move {
                let client = state.pool.get().await?;
                match fetch_order(&client, &merchant_id, &order_id).await {
                    Ok(row) => Ok(Some(order_look(&row))),
                    Err(e) if e.code == ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
        })
    };
    let first = fetch().await?.ok_or_else(|| ApiError::not_found("order"))?;
    Ok(streams::respond(
        state,
        slot,
        order_id,
        first,
        streams::last_event_id(&req),
        fetch,
    ))
}

fn order_look(row: &Row) -> streams::Look {
    let status: &str = row.get(1);
    streams::Look {
        version: streams::order_version(row.get(10), status),
        pending: status == "pending",
        data: order_json(row),
    }
}

async fn order_qr(
    merchant: &Merchant,
    state: &AppState,
    order_id: &str,
) -> ApiResult<qrcodegen::QrCode> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let row = fetch_order(&client, &merchant.merchant_id, order_id).await?;
    qr_image::encode(row.get(7)).map_err(ApiError::internal)
}

async fn qr_svg(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = order_qr(&merchant, &state, &path).await?;
    Ok(qr_image::svg_response(&code))
}

async fn qr_png(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let code = order_qr(&merchant, &state, &path).await?;
    qr_image::png_response(&code)
}

/// A pending order stops being payable. Closing a closed or expired order answers it
/// as it is; a paid one is `already_paid`.
async fn close_order(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    empty_body(payload, &req, limits.body_bytes_max).await?;
    let order_id = path.into_inner();
    let idem = Idempotency::from_request(
        &req,
        &merchant.merchant_id,
        "POST /v1/orders/{id}/close",
        &json!({"order_id": order_id}),
    )?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = idempotency::earlier_answer(&idem, &tx).await? {
        return Ok(stored);
    }
    let outcome = close(&tx, &merchant.merchant_id, &order_id).await;
    idempotency::finish(idem, tx, outcome).await
}

pub(crate) async fn close(
    tx: &deadpool_postgres::Transaction<'_>,
    merchant_id: &str,
    order_id: &str,
) -> ApiResult<(StatusCode, Value)> {
    let closed = tx
        .execute(
            "WITH closed AS (
                 UPDATE orders SET status = 'closed', updated_at = now()
                 WHERE id = $1 AND merchant_id = $2 AND status = 'pending' AND NOT order_due(status, expires_at) RETURNING id)
             INSERT INTO order_events (order_id, kind) SELECT id, 'closed' FROM closed",
            &[&order_id, &merchant_id],
        )
        .await?;
    let row = fetch_order(tx, merchant_id, order_id).await?;
    let status: &str = row.get(1);
    if closed == 0 && !matches!(status, "closed" | "expired") {
        return Err(ApiError::new(
            ErrorCode::AlreadyPaid,
            format!("order {order_id} is {status}"),
        ));
    }
    Ok((StatusCode::OK, order_json(&row)))
}

/// `acc_9x…wxyz`: enough to tell accounts apart on a timeline, not to use one.
fn mask_account(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("acc_…{tail}")
}

/// An order's timeline, oldest first: created, each failed attempt (its code, the risk
/// rule that declined it, the wallet and account that tried), closed or expired, paid,
/// each refund. Columns: at, kind, code, customer_account_id, rule, wallet_id. The
/// failed attempts an order keeps are bounded when they are written.
pub async fn timeline_rows(
    client: &impl tokio_postgres::GenericClient,
    order_id: &str,
) -> ApiResult<Vec<Row>> {
    Ok(client
        .query(
            "SELECT at, kind, code, customer_account_id, rule, wallet_id FROM (
                SELECT created_at AS at, 'created' AS kind, NULL AS code, NULL AS customer_account_id,
                       NULL AS rule, NULL AS wallet_id, 0::bigint AS seq FROM orders WHERE id = $1
                UNION ALL
                SELECT created_at, kind, code, customer_account_id, rule, wallet_id, id
                FROM order_events WHERE order_id = $1
                UNION ALL
                SELECT paid_at, 'paid', NULL, customer_account_id, NULL, wallet_id, 9223372036854775807
                FROM payments WHERE order_id = $1
                UNION ALL
                SELECT created_at, 'refunded', NULL, NULL, NULL, NULL, 9223372036854775807 FROM refunds
                WHERE order_id = $1 AND outcome = 'succeeded') t
             ORDER BY at, seq",
            &[&order_id],
        )
        .await?)
}

async fn order_events(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let order = fetch_order(&client, &merchant.merchant_id, &path).await?;
    let rows = timeline_rows(&**client, order.get(0)).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "at": timestamp(r.get(0)),
                "kind": r.get::<_, &str>(1),
                "code": r.get::<_, Option<&str>>(2),
                "rule": r.get::<_, Option<&str>>(4),
                "customer_account": r.get::<_, Option<&str>>(3).map(mask_account),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"order_id": order.get::<_, &str>(0), "items": items})))
}

/// An account's balance: the sum of its shards, which equals the sum of its postings.
pub async fn account_json(
    client: &impl GenericClient,
    account_id: &str,
    owner_clause: &str,
    owner: &str,
) -> ApiResult<Value> {
    if !ids::is_gateway_id(account_id) {
        return Err(ApiError::not_found("account"));
    }
    let sql = format!(
        "SELECT a.id, a.currency, sum(b.balance_minor)::bigint FROM accounts a
         JOIN account_balances b ON b.account_id = a.id
         WHERE a.id = $1 AND {owner_clause} = $2 GROUP BY a.id"
    );
    let row = client
        .query_opt(&sql, &[&account_id, &owner])
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    let currency = Currency::from_ledger(row.get(1)).map_err(ApiError::internal_from)?;
    Ok(json!({
        "id": row.get::<_, &str>(0),
        "currency": currency,
        "balance": format_minor(row.get(2), currency),
    }))
}

/// The merchant's own accounts (today: its settlement account).
async fn list_accounts(merchant: Merchant, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    let client = state.pool.get().await?;
    let ids: Vec<String> = client
        .query(
            "SELECT id FROM accounts WHERE merchant_id = $1 ORDER BY created_at, id",
            &[&merchant.merchant_id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut items = Vec::with_capacity(ids.len());
    for id in &ids {
        items.push(account_json(&client, id, "a.merchant_id", &merchant.merchant_id).await?);
    }
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn merchant_statement(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<crate::api::statements::StatementQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    crate::api::statements::respond(
        &state,
        &path,
        "a.merchant_id",
        &merchant.merchant_id,
        query.into_inner(),
    )
    .await
}

async fn get_account(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    let client = state.pool.get().await?;
    let account = account_json(&client, &path, "a.merchant_id", &merchant.merchant_id).await?;
    Ok(HttpResponse::Ok().json(account))
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_accounts() {
        assert_eq!(super::mask_account("acc_abcdefghijklmnopqrst"), "acc_…qrst");
    }

    #[test]
    fn order_columns_count_is_their_number() {
        use super::{ORDER_COLUMNS, ORDER_COLUMNS_COUNT};
        let mut depth = 0;
        let mut columns = 1;
        for c in ORDER_COLUMNS.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => columns += 1,
                _ => {}
            }
        }
        assert_eq!(columns, ORDER_COLUMNS_COUNT);
    }
}
