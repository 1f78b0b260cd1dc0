//! Promotions as an operator runs them (`/v1/admin/campaigns`): start one, list and
//! read them, pause and resume, end early, move the window or the budget (never below
//! what was spent). A merchant reads the campaigns that apply to it
//! (`GET /v1/campaigns`). Which campaign discounts a payment is decided in
//! `campaign_take` (migrations/functions/payments.sql), which offers only campaigns
//! neither paused nor ended; editing a campaign takes its row lock, as a payment does.

use crate::{
    auth::{Admin, Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{
        currency_field, empty_body, encode_cursor, id_filter, json_body, page_ask, page_json,
        parse_timestamp, timestamp,
    },
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use qrgate_domain::{ids, money::format_minor, Currency};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/admin/campaigns", web::post().to(create_campaign))
        .route("/v1/admin/campaigns", crate::http::get().to(list_campaigns))
        .route(
            "/v1/admin/campaigns/{id}",
            crate::http::get().to(get_campaign),
        )
        .route("/v1/admin/campaigns/{id}", web::patch().to(edit_campaign))
        .route(
            "/v1/admin/campaigns/{id}/pause",
            web::post().to(pause_campaign),
        )
        .route(
            "/v1/admin/campaigns/{id}/resume",
            web::post().to(resume_campaign),
        )
        .route("/v1/admin/campaigns/{id}/end", web::post().to(end_campaign))
        .route("/v1/campaigns", crate::http::get().to(merchant_campaigns));
}

const COLUMNS: &str = "id, kind, percent_off::text, max_discount_minor, amount_off_minor, min_amount_minor,
     currency, budget_minor, spent_minor, funded_by, merchant_id, per_customer_limit, starts_at, ends_at,
     paused_at, ended_at, created_at,
     CASE WHEN ended_at IS NOT NULL OR ends_at <= now() THEN 'ended'
          WHEN paused_at IS NOT NULL THEN 'paused'
          WHEN starts_at > now() THEN 'scheduled'
          WHEN spent_minor >= budget_minor THEN 'spent'
          ELSE 'active' END";

/// The campaign statuses, as `COLUMNS` computes them.
const STATUSES: [&str; 5] = ["active", "scheduled", "paused", "spent", "ended"];

fn campaign_json(row: &Row) -> Value {
    let currency = Currency::parse(row.get(6)).expect("stored currencies are known");
    let money = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .map(|m| format_minor(m, currency))
    };
    let at = |i: usize| row.get::<_, Option<DateTime<Utc>>>(i).map(timestamp);
    json!({
        "id": row.get::<_, &str>(0),
        "kind": row.get::<_, &str>(1),
        "status": row.get::<_, &str>(17),
        "percent_off": row.get::<_, Option<&str>>(2),
        "max_discount": money(3),
        "amount_off": money(4),
        "min_amount": money(5),
        "currency": currency,
        "budget": money(7),
        "spent": money(8),
        "funded_by": row.get::<_, &str>(9),
        "merchant_id": row.get::<_, Option<&str>>(10),
        "per_customer_limit": row.get::<_, Option<i32>>(11),
        "starts_at": at(12),
        "ends_at": at(13),
        "paused_at": at(14),
        "ended_at": at(15),
        "created_at": timestamp(row.get(16)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignRequest {
    kind: String,
    percent_off: Option<String>,
    max_discount: Option<String>,
    amount_off: Option<String>,
    min_amount: Option<String>,
    currency: String,
    budget: String,
    funded_by: String,
    merchant_id: Option<String>,
    per_customer_limit: Option<i32>,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

/// A promotion. Rejected: a merchant-funded campaign without `merchant_id`,
/// `amount_off` ≥ `min_amount`, percentages outside (0, 100), fields of the other kind.
async fn create_campaign(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let r: CampaignRequest = json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let currency = currency_field("currency", &r.currency)?;
    let money = |field: &str, value: &Option<String>| -> ApiResult<Option<i64>> {
        value
            .as_deref()
            .map(|v| {
                qrgate_domain::Money::parse(v, currency)
                    .map(|m| m.minor())
                    .map_err(|e| ApiError::invalid(field, e))
            })
            .transpose()
    };
    let budget = money("budget", &Some(r.budget.clone()))?.expect("given");
    let (max_discount, amount_off, min_amount) = (
        money("max_discount", &r.max_discount)?,
        money("amount_off", &r.amount_off)?,
        money("min_amount", &r.min_amount)?,
    );
    let percent_off = match (r.kind.as_str(), &r.percent_off) {
        ("percent_off", Some(p)) => {
            if amount_off.is_some() || min_amount.is_some() {
                return Err(ApiError::invalid(
                    "kind",
                    "percent_off takes percent_off and max_discount, not amount_off or min_amount",
                ));
            }
            let pct = qrgate_domain::money::parse_decimal(p)
                .ok()
                .filter(|d| {
                    *d > rust_decimal::Decimal::ZERO
                        && *d < rust_decimal::Decimal::from(100)
                        && d.scale() <= 4
                })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "percent_off",
                        "must be a decimal string between 0 and 100, exclusive, such as \"10\"",
                    )
                })?;
            Some(pct.to_string())
        }
        ("percent_off", None) => {
            return Err(ApiError::invalid(
                "percent_off",
                "is required for percent_off campaigns",
            ))
        }
        ("amount_off_over", _) => {
            if r.percent_off.is_some() || max_discount.is_some() {
                return Err(ApiError::invalid("kind", "amount_off_over takes amount_off and min_amount, not percent_off or max_discount"));
            }
            match (amount_off, min_amount) {
                (Some(off), Some(min)) if off < min => None,
                (Some(_), Some(_)) => {
                    return Err(ApiError::invalid(
                        "amount_off",
                        "must be less than min_amount",
                    ))
                }
                _ => {
                    return Err(ApiError::invalid(
                        "amount_off",
                        "amount_off and min_amount are required for amount_off_over campaigns",
                    ))
                }
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "kind",
                "must be percent_off or amount_off_over",
            ))
        }
    };
    if !matches!(r.funded_by.as_str(), "merchant" | "platform") {
        return Err(ApiError::invalid(
            "funded_by",
            "must be merchant or platform",
        ));
    }
    if r.funded_by == "merchant" && r.merchant_id.is_none() {
        return Err(ApiError::invalid(
            "merchant_id",
            "is required for a merchant-funded campaign",
        ));
    }
    if r.per_customer_limit.is_some_and(|l| l < 1) {
        return Err(ApiError::invalid(
            "per_customer_limit",
            "must be at least 1",
        ));
    }
    let starts_at = r
        .starts_at
        .as_deref()
        .map(|s| crate::http::parse_timestamp("starts_at", s))
        .transpose()?;
    let ends_at = r
        .ends_at
        .as_deref()
        .map(|s| crate::http::parse_timestamp("ends_at", s))
        .transpose()?;
    if let (Some(s), Some(e)) = (starts_at, ends_at) {
        if s >= e {
            return Err(ApiError::invalid("ends_at", "must be after starts_at"));
        }
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(merchant_id) = &r.merchant_id {
        let merchant_currency: Option<String> = tx
            .query_opt(
                "SELECT currency FROM merchants WHERE id = $1",
                &[merchant_id],
            )
            .await?
            .map(|row| row.get(0));
        match merchant_currency {
            None => return Err(ApiError::not_found("merchant")),
            Some(c) if c != currency.code() => {
                return Err(ApiError::invalid(
                    "currency",
                    "must be the merchant's currency",
                ))
            }
            Some(_) => {}
        }
    }
    let id = ids::mint("cmp");
    let sql = format!(
        "INSERT INTO campaigns (id, kind, percent_off, max_discount_minor, amount_off_minor, min_amount_minor, currency,
                                budget_minor, funded_by, merchant_id, per_customer_limit, starts_at, ends_at)
         VALUES ($1, $2, $3::text::numeric, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &r.kind,
                &percent_off,
                &max_discount,
                &amount_off,
                &min_amount,
                &currency.code(),
                &budget,
                &r.funded_by,
                &r.merchant_id,
                &r.per_customer_limit,
                &starts_at,
                &ends_at,
            ],
        )
        .await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    tracing::info!(campaign_id = %id, kind = %r.kind, "campaign created");
    Ok(HttpResponse::Created().json(campaign_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    merchant_id: Option<String>,
    currency: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

async fn list_campaigns(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    if let Some(s) = &q.status {
        if !STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let currency = q
        .currency
        .as_deref()
        .map(|c| currency_field("currency", c).map(|c| c.code()))
        .transpose()?;
    let merchant_id = id_filter("merchant_id", q.merchant_id.as_deref())?;
    let page = page_ask(&state.settings.limits, q.cursor.as_deref(), q.limit)?;
    let (limit, after_at, after_id) = (page.limit, page.after_at, page.after_id);
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} AS status FROM campaigns
                        WHERE ($1::text IS NULL OR merchant_id = $1) AND ($2::text IS NULL OR currency = $2)
                          AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))) c
         WHERE $5::text IS NULL OR c.status = $5
         ORDER BY created_at DESC, id DESC LIMIT $6"
    );
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &sql,
            &[
                &merchant_id,
                &currency,
                &after_at,
                &after_id,
                &q.status,
                &(limit + 1),
            ],
        )
        .await?;
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, campaign_json, |last| {
            encode_cursor(last.get(16), last.get(0))
        })),
    )
}

async fn fetch(
    client: &impl deadpool_postgres::GenericClient,
    id: &str,
    lock: bool,
) -> ApiResult<Row> {
    if !ids::is_gateway_id(id) {
        return Err(ApiError::not_found("campaign"));
    }
    let lock = if lock { " FOR NO KEY UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1{lock}");
    client
        .query_opt(&sql, &[&id])
        .await?
        .ok_or_else(|| ApiError::not_found("campaign"))
}

async fn get_campaign(
    _admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(campaign_json(&fetch(&client, &path, false).await?)))
}

async fn pause_campaign(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    change_state(admin, state, path, req, payload, Change::Pause).await
}

async fn resume_campaign(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    change_state(admin, state, path, req, payload, Change::Resume).await
}

async fn end_campaign(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    change_state(admin, state, path, req, payload, Change::End).await
}

#[derive(Clone, Copy)]
enum Change {
    Pause,
    Resume,
    End,
}

/// Pause, resume or end a campaign. Each answers the campaign as it then is; asking for
/// the state it is already in changes nothing. An ended campaign stays ended:
/// resuming or pausing it is `409 campaign_ended`.
async fn change_state(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    change: Change,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = fetch(&tx, &path, true).await?;
    let ended = row.get::<_, &str>(17) == "ended";
    let set = match change {
        _ if ended && !matches!(change, Change::End) => {
            return Err(ApiError::new(
                crate::error::ErrorCode::CampaignEnded,
                format!("campaign {} has ended; start a new one", &*path),
            ))
        }
        Change::End if ended => None,
        Change::End => Some("ended_at = now()"),
        Change::Pause => Some("paused_at = coalesce(paused_at, now())"),
        Change::Resume => Some("paused_at = NULL"),
    };
    let row = match set {
        None => row,
        Some(set) => {
            let sql = format!("UPDATE campaigns SET {set} WHERE id = $1 RETURNING {COLUMNS}");
            tx.query_one(&sql, &[&&*path]).await?
        }
    };
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(campaign_id = %&*path, status = %row.get::<_, &str>(17), "campaign changed");
    Ok(HttpResponse::Ok().json(campaign_json(&row)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EditRequest {
    budget: Option<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
}

/// Moves the window (`starts_at` before `ends_at`) or the budget (never below what was
/// spent, read under the campaign's row lock, which every payment it discounts holds).
async fn edit_campaign(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let r: EditRequest = json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let starts_at = r
        .starts_at
        .as_deref()
        .map(|s| parse_timestamp("starts_at", s))
        .transpose()?;
    let ends_at = r
        .ends_at
        .as_deref()
        .map(|s| parse_timestamp("ends_at", s))
        .transpose()?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let row = fetch(&tx, &path, true).await?;
    if row.get::<_, &str>(17) == "ended" {
        return Err(ApiError::new(
            crate::error::ErrorCode::CampaignEnded,
            format!("campaign {} has ended; start a new one", &*path),
        ));
    }
    let currency = Currency::parse(row.get(6)).expect("stored currencies are known");
    let budget = r
        .budget
        .as_deref()
        .map(|b| qrgate_domain::Money::parse(b, currency).map(|m| m.minor()))
        .transpose()
        .map_err(|e| ApiError::invalid("budget", e))?;
    let spent: i64 = row.get(8);
    if budget.is_some_and(|b| b < spent) {
        return Err(ApiError::invalid(
            "budget",
            format!(
                "must be at least what was spent, {}",
                format_minor(spent, currency)
            ),
        ));
    }
    let window_starts = starts_at.or(row.get(12));
    let window_ends = ends_at.or(row.get(13));
    if let (Some(s), Some(e)) = (window_starts, window_ends) {
        if s >= e {
            return Err(ApiError::invalid("ends_at", "must be after starts_at"));
        }
    }
    let sql = format!(
        "UPDATE campaigns SET budget_minor = coalesce($2, budget_minor), starts_at = coalesce($3, starts_at),
                              ends_at = coalesce($4, ends_at)
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(&sql, &[&&*path, &budget, &starts_at, &ends_at])
        .await?;
    admin.commit(tx, StatusCode::OK).await?;
    tracing::info!(campaign_id = %&*path, "campaign edited");
    Ok(HttpResponse::Ok().json(campaign_json(&row)))
}

/// The campaigns that may discount this merchant's orders: its own and the platform's in
/// its currency, not ended. (Scope `orders`: what a cashier tells a customer.)
async fn merchant_campaigns(
    merchant: Merchant,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let sql = format!(
        "SELECT * FROM (SELECT {COLUMNS} AS status FROM campaigns
                        WHERE (merchant_id = $1 OR (merchant_id IS NULL AND currency = $2))) c
         WHERE c.status <> 'ended' ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &sql,
            &[
                &merchant.merchant_id,
                &merchant.profile.currency,
                &CAMPAIGNS_LISTED_MAX,
            ],
        )
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"items": rows.iter().map(campaign_json).collect::<Vec<_>>()})))
}

/// At most this many campaigns answer a merchant's list: more live campaigns than this
/// for one shop is a mistake to fix, not a page to turn.
const CAMPAIGNS_LISTED_MAX: i64 = 100;
