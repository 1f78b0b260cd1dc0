//! Online checkout: a checkout session is an order with a hosted payment page.
//!
//! The merchant's server creates it (`POST /v1/checkout-sessions`) and sends its
//! customer to the answer's `url`, `/pay/{token}`. The page (`api::pages`) shows the shop,
//! the amount, the line items and the order's QR (and an "open in wallet" link with the
//! same EMV payload), follows the order by server-sent events, and when it is paid sends
//! the customer to `return_url?session_id=…`; the merchant also gets `order.paid`. The
//! token is 160 random bits; only its SHA-256 is stored, and the request log shows
//! `/pay/…` without it. Everything under `/pay/{token}` answers about that session
//! only, and the same 404 for every unknown token.

use crate::{
    api::orders::{self, NewOrder, NewOrderRequest, ORDER_COLUMNS},
    auth::{sha256_32, Merchant, Scope},
    error::{ApiError, ApiResult, ErrorCode},
    http::{empty_body, json_body, timestamp},
    qr_image,
    state::AppState,
    streams,
};
use actix_web::{web, HttpRequest, HttpResponse};
use qrgate_domain::{
    ids,
    money::{format_minor, parse_minor},
    Currency,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/checkout-sessions", web::post().to(create_session))
        .route(
            "/v1/checkout-sessions/{id}",
            crate::http::get().to(get_session),
        )
        .route(
            "/pay/{token}/session",
            crate::http::get().to(public_session),
        )
        .route("/pay/{token}/stream", crate::http::get().to(public_stream))
        .route("/pay/{token}/qr.svg", crate::http::get().to(public_qr))
        .route("/pay/{token}/cancel", web::post().to(public_cancel));
}

const LINE_ITEMS_MAX: usize = 100;
/// What a line item is called, as the payment page shows it.
pub type LineItemName = qrgate_domain::text::PlainText<100>;
const LINE_ITEM_QUANTITY_MAX: i64 = 9_999;
const URL_CHARS_MAX: usize = 2_000;
const TOKEN_CHARS: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSessionRequest {
    amount: String,
    currency: String,
    merchant_reference: String,
    description: Option<String>,
    expires_in_seconds: Option<i32>,
    return_url: String,
    cancel_url: String,
    #[serde(default)]
    line_items: Vec<LineItemRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineItemRequest {
    name: String,
    quantity: i64,
    /// The price of one, in the session's currency.
    amount: String,
}

/// A checked line item: stored as JSON with the amount as the wire writes it.
fn line_item(item: &LineItemRequest, currency: Currency, at: usize) -> ApiResult<(Value, i64)> {
    let field = |name: &str| format!("line_items[{at}].{name}");
    let name = LineItemName::parse(&item.name).map_err(|e| ApiError::invalid(&field("name"), e))?;
    if !(1..=LINE_ITEM_QUANTITY_MAX).contains(&item.quantity) {
        return Err(ApiError::invalid(
            &field("quantity"),
            format!("must be 1 to {LINE_ITEM_QUANTITY_MAX}"),
        ));
    }
    let unit = parse_minor(&item.amount, currency)
        .ok()
        .filter(|m| *m > 0)
        .ok_or_else(|| {
            ApiError::invalid(
                &field("amount"),
                format!("must be a positive amount in {currency}"),
            )
        })?;
    let total = unit
        .checked_mul(item.quantity)
        .ok_or_else(|| ApiError::invalid(&field("amount"), "is too large"))?;
    let json = json!({"name": name.as_str(), "quantity": item.quantity, "amount": format_minor(unit, currency)});
    Ok((json, total))
}

/// A return or cancel address: https, or http to a loopback host when the deployment
/// allows it (`QRGATE_CHECKOUT_HTTP_LOOPBACK_ALLOWED`); no credentials in it.
fn return_address(field: &str, raw: &str, loopback_http: bool) -> ApiResult<String> {
    let bad = |why: &str| ApiError::invalid(field, why.to_owned());
    if raw.len() > URL_CHARS_MAX {
        return Err(bad(&format!("must be at most {URL_CHARS_MAX} characters")));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("must be an absolute URL"))?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback && loopback_http => {}
        "http" if loopback => {
            return Err(bad(
                "http:// is allowed only when the gateway allows loopback returns; use https://",
            ))
        }
        _ => return Err(bad("must be an https:// URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    Ok(url.into())
}

async fn create_session(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let limits = &state.settings.limits;
    let body: NewSessionRequest = json_body(payload, &req, limits.body_bytes_max).await?;
    let order = NewOrder::parse(&NewOrderRequest {
        amount: body.amount.clone(),
        currency: body.currency.clone(),
        merchant_reference: body.merchant_reference.clone(),
        description: body.description.clone(),
        terminal_id: None,
        expires_in_seconds: body.expires_in_seconds,
        // A session's order takes the shop's default tip policy.
        tip_policy: None,
        convenience_fee: None,
        convenience_fee_percent: None,
    })?;
    let loopback = limits.checkout_http_loopback_allowed;
    let return_url = return_address("return_url", &body.return_url, loopback)?;
    let cancel_url = return_address("cancel_url", &body.cancel_url, loopback)?;
    if body.line_items.len() > LINE_ITEMS_MAX {
        return Err(ApiError::invalid(
            "line_items",
            format!("at most {LINE_ITEMS_MAX} items"),
        ));
    }
    let currency = order.amount.currency();
    let mut items = Vec::with_capacity(body.line_items.len());
    let mut total: i64 = 0;
    for (at, item) in body.line_items.iter().enumerate() {
        let (json, line_total) = line_item(item, currency, at)?;
        items.push(json);
        total = total.saturating_add(line_total);
    }
    if !items.is_empty() && total != order.amount.minor() {
        return Err(ApiError::invalid(
            "line_items",
            format!(
                "add up to {}, not the amount {}",
                format_minor(total, currency),
                body.amount
            ),
        ));
    }
    let token = ids::random_base32(TOKEN_CHARS);
    let session_id = ids::mint("cs");
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let order_row = orders::insert_order(&tx, &state, &merchant, &order).await?;
    let row = tx
        .query_one(
            "INSERT INTO checkout_sessions (id, token_sha256, merchant_id, order_id, return_url, cancel_url,
                                            line_items, created_by_key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING created_at",
            &[
                &session_id,
                &sha256_32(token.as_bytes()).as_slice(),
                &merchant.merchant_id,
                &order_row.get::<_, &str>(0),
                &return_url,
                &cancel_url,
                &Value::Array(items.clone()),
                &merchant.key_id,
            ],
        )
        .await?;
    tx.commit().await?;
    tracing::info!(merchant_id = %merchant.merchant_id, %session_id, order_id = order_row.get::<_, &str>(0), "checkout session opened");
    let path = format!("/pay/{token}");
    let info = req.connection_info();
    // The scheme the client used, as we or a trusted proxy know it: not a header anyone
    // could send.
    let scheme = if crate::http::over_https(&req, &state.settings) {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{}{path}", info.host());
    let mut session = session_json(
        &session_id,
        &order_row,
        &return_url,
        &cancel_url,
        &Value::Array(items),
        None,
        row.get(0),
    );
    session["url"] = json!(url);
    session["path"] = json!(path);
    Ok(HttpResponse::Created().json(session))
}

/// The merchant's view of a session: the order as `GET /v1/orders/{id}` shows it.
fn session_json(
    id: &str,
    order: &Row,
    return_url: &str,
    cancel_url: &str,
    line_items: &Value,
    cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let order_json = orders::order_json(order);
    json!({
        "id": id,
        "status": session_status(order.get(1)),
        "cancelled_at": cancelled_at.map(timestamp),
        "order": order_json,
        "return_url": return_url,
        "cancel_url": cancel_url,
        "line_items": line_items,
        "expires_at": order_json["expires_at"],
        "created_at": timestamp(created_at),
    })
}

/// open while the order is pending; complete once paid (refunds after do not reopen
/// it); expired; cancelled when the customer cancelled or the merchant closed the order.
fn session_status(order_status: &str) -> &'static str {
    match order_status {
        "pending" => "open",
        "paid" | "partially_refunded" | "refunded" => "complete",
        "expired" => "expired",
        _ => "cancelled",
    }
}

const SESSION_SELECT: &str =
    "s.id, s.return_url, s.cancel_url, s.line_items, s.cancelled_at, s.created_at, m.name, m.city, s.merchant_id";

fn session_sql(filter: &str) -> String {
    format!(
        "SELECT {SESSION_SELECT}, {ORDER_COLUMNS}
         FROM checkout_sessions s JOIN orders o ON o.id = s.order_id JOIN merchants m ON m.id = s.merchant_id
         WHERE {filter}"
    )
}

/// The columns after `SESSION_SELECT` are `ORDER_COLUMNS`: an order row view of them.
const ORDER_OFFSET: usize = 9;

async fn get_session(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &session_sql("s.id = $1 AND s.merchant_id = $2"),
            &[&path.as_str(), &merchant.merchant_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("checkout session"))?;
    let order = OrderView(&row);
    Ok(HttpResponse::Ok().json(order.merchant_json()))
}

/// A session row read with `session_sql`.
struct OrderView<'a>(&'a Row);

impl OrderView<'_> {
    fn order_status(&self) -> &str {
        self.0.get(ORDER_OFFSET + 1)
    }

    fn order_row_json(&self) -> Value {
        // order_json reads columns 0..: rebuild the order part with its own indices.
        orders::order_json_at(self.0, ORDER_OFFSET)
    }

    fn merchant_json(&self) -> Value {
        let r = self.0;
        let order = self.order_row_json();
        json!({
            "id": r.get::<_, &str>(0),
            "status": session_status(self.order_status()),
            "cancelled_at": r.get::<_, Option<chrono::DateTime<chrono::Utc>>>(4).map(timestamp),
            "order": order,
            "return_url": r.get::<_, &str>(1),
            "cancel_url": r.get::<_, &str>(2),
            "line_items": r.get::<_, Value>(3),
            "expires_at": order["expires_at"],
            "created_at": timestamp(r.get(5)),
        })
    }

    /// What the payment page shows: no ids of the merchant, no key, no other session.
    fn public_json(&self) -> Value {
        let r = self.0;
        let order = self.order_row_json();
        let status = session_status(self.order_status());
        let mut view = json!({
            "id": r.get::<_, &str>(0),
            "status": status,
            "merchant_name": r.get::<_, &str>(6),
            "merchant_city": r.get::<_, &str>(7),
            "amount": order["amount"],
            "currency": order["currency"],
            "description": order["description"],
            "line_items": r.get::<_, Value>(3),
            "expires_at": order["expires_at"],
            "cancel_url": r.get::<_, &str>(2),
        });
        if status == "open" {
            view["qr_payload"] = order["qr_payload"].clone();
        }
        if status == "complete" {
            view["paid_at"] = order["paid_at"].clone();
            view["redirect_url"] = json!(redirect(r.get(1), r.get(0)));
        }
        view
    }

    fn look(&self) -> streams::Look {
        let status = self.order_status();
        streams::Look {
            version: streams::order_version(self.0.get(ORDER_OFFSET + 10), status),
            pending: status == "pending",
            data: self.public_json(),
        }
    }
}

/// `return_url` with `session_id` added to its query.
fn redirect(return_url: &str, session_id: &str) -> String {
    match url::Url::parse(return_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("session_id", session_id);
            url.into()
        }
        Err(_) => return_url.to_owned(),
    }
}

/// The session a page token names, or the one 404 every unknown token gets.
async fn by_token(client: &impl deadpool_postgres::GenericClient, token: &str) -> ApiResult<Row> {
    if token.len() != TOKEN_CHARS || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("checkout session"));
    }
    client
        .query_opt(
            &session_sql("s.token_sha256 = $1"),
            &[&sha256_32(token.as_bytes()).as_slice()],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("checkout session"))
}

async fn public_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let row = by_token(&client, &path).await?;
    Ok(no_store(HttpResponse::Ok()).json(OrderView(&row).public_json()))
}

async fn public_qr(state: web::Data<AppState>, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    let row = by_token(&client, &path).await?;
    let view = OrderView(&row);
    if view.order_status() != "pending" {
        return Err(ApiError::new(
            ErrorCode::OrderNotPayable,
            "this checkout session is not open",
        ));
    }
    let code = qr_image::encode(row.get(ORDER_OFFSET + 7)).map_err(ApiError::internal)?;
    Ok(no_store(HttpResponse::Ok())
        .content_type("image/svg+xml")
        .body(qr_image::svg(&code)))
}

async fn public_stream(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let token = path.into_inner();
    let state = streams::shared(&state);
    let (first, owner, order_id) = {
        let client = state.pool.get().await?;
        let row = by_token(&client, &token).await?;
        let look = OrderView(&row).look();
        (
            look,
            row.get::<_, String>(8),
            row.get::<_, String>(ORDER_OFFSET),
        )
    };
    let slot = streams::open_slot(&state, &owner)?;
    let fetch: streams::Fetch = {
        let state = state.clone();
        std::sync::Arc::new(move || {
            let (state, token) = (state.clone(), token.clone());
            Box::pin(async move {
                let client = state.pool.get().await?;
                match by_token(&client, &token).await {
                    Ok(row) => Ok(Some(OrderView(&row).look())),
                    Err(e) if e.code == ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
        })
    };
    Ok(streams::respond(
        state,
        slot,
        order_id,
        first,
        streams::last_event_id(&req),
        fetch,
    ))
}

/// The customer cancels on the page: the order is closed if it is still open (a paid
/// one stays paid), and the page is told where to go.
async fn public_cancel(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = by_token(&tx, &path).await?;
    let session_id: &str = row.get(0);
    let order_id: &str = row.get(ORDER_OFFSET);
    let merchant_id: &str = row.get(8);
    // The order first: its row lock decides a race with the wallet's payment. Closed
    // now (or before): the session is cancelled; paid: it stays complete.
    let closed = match orders::close(&tx, merchant_id, order_id).await {
        Ok((_, order)) => order["status"] == "closed",
        Err(e) if e.code == ErrorCode::AlreadyPaid => false,
        Err(e) => return Err(e),
    };
    if closed {
        tx.execute(
            "UPDATE checkout_sessions SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = $1",
            &[&session_id],
        )
        .await?;
    }
    let row = by_token(&tx, &path).await?;
    tx.commit().await?;
    Ok(no_store(HttpResponse::Ok()).json(OrderView(&row).public_json()))
}

fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header(("cache-control", "no-store"));
    builder
}
