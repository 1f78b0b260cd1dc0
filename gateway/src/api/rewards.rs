//! Rewards for points. A merchant (`/v1/rewards`, a manager key to list and end) or the
//! platform (`/v1/admin/rewards`) lists rewards: a voucher worth an amount off at one
//! shop, or a gift, each for a number of points, with or without a stock. A wallet shows
//! its customers the live catalogue and redeems points for them
//! (`/v1/wallets/{wallet_id}/rewards`, signed): the points move in the ledger and the
//! stock is taken in `reward_redeem` (`migrations/functions/rewards.sql`), once per
//! `wallet_txn_id`. A voucher's code is then taken at payment like a discount
//! (`voucher_code`, `voucher_take`), once, before it expires.

use crate::{
    api::wallet::{claim_message, request_sha256, signed_get, signed_post, wallet_txn_id},
    auth::{Admin, Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{
        empty_body, encode_cursor, id_filter, json_body, page_ask, page_json, parse_json, timestamp,
    },
    idempotency::{self, Idempotency},
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use qrgate_domain::{ids, money::format_minor, text::PlainText, Currency, Money};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/rewards", web::post().to(create_own))
        .route("/v1/rewards", crate::http::get().to(list_own))
        .route("/v1/rewards/{id}", crate::http::get().to(get_own))
        .route("/v1/rewards/{id}/end", web::post().to(end_own))
        .route("/v1/admin/rewards", web::post().to(create_platform))
        .route("/v1/admin/rewards", crate::http::get().to(list_all))
        .route("/v1/admin/rewards/{id}/end", web::post().to(end_any))
        .route(
            "/v1/wallets/{wallet_id}/rewards",
            crate::http::get().to(catalogue),
        )
        .route(
            "/v1/wallets/{wallet_id}/rewards/redemptions",
            web::post().to(redeem),
        )
        .route(
            "/v1/wallets/{wallet_id}/rewards/redemptions",
            crate::http::get().to(redemptions),
        );
}

/// A voucher is good for this long after it is redeemed, unless the reward says.
const VALID_DAYS_DEFAULT: i32 = 30;
const VALID_DAYS_MAX: i32 = 366;
const STOCK_MAX: i32 = 1_000_000;
const POINTS_COST_MAX: i64 = 1_000_000_000;
/// Rewards a shop may have live (not ended) at once, and the platform.
const LIVE_REWARDS_PER_MERCHANT_MAX: i64 = 100;
const LIVE_PLATFORM_REWARDS_MAX: i64 = 1_000;

pub type RewardName = PlainText<100>;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewRewardRequest {
    kind: String,
    name: String,
    points_cost: i64,
    /// A voucher's value, in its shop's currency.
    value: Option<String>,
    valid_days: Option<i32>,
    /// None: unlimited.
    stock: Option<i32>,
    /// The platform's voucher: the shop where it is taken (a merchant's is its own).
    merchant_id: Option<String>,
}

/// What a reward is, every field checked (a voucher's shop and currency are known).
struct NewReward {
    name: RewardName,
    points_cost: i64,
    voucher: Option<(Money, i32)>,
    stock: Option<i32>,
}

/// A reward request with every field checked that needs no stored state: the voucher's
/// value is a decimal whose scale its shop's currency decides. Parsed before any lookup,
/// so a bad body is 400 whatever shop it names.
struct RewardShape {
    name: RewardName,
    points_cost: i64,
    /// A voucher's value and days; None: a gift.
    voucher: Option<(String, i32)>,
    stock: Option<i32>,
}

impl RewardShape {
    fn parse(r: &NewRewardRequest) -> ApiResult<Self> {
        let name = RewardName::parse(&r.name).map_err(|e| ApiError::invalid("name", e))?;
        if !(1..=POINTS_COST_MAX).contains(&r.points_cost) {
            return Err(ApiError::invalid(
                "points_cost",
                format!("must be a whole number of points from 1 to {POINTS_COST_MAX}"),
            ));
        }
        if r.stock.is_some_and(|s| !(1..=STOCK_MAX).contains(&s)) {
            return Err(ApiError::invalid(
                "stock",
                format!("must be from 1 to {STOCK_MAX}, or absent for no limit"),
            ));
        }
        let voucher = match r.kind.as_str() {
            "gift" => {
                for (field, given) in [
                    ("value", r.value.is_some()),
                    ("valid_days", r.valid_days.is_some()),
                ] {
                    if given {
                        return Err(ApiError::invalid(field, "is only for a voucher"));
                    }
                }
                None
            }
            "voucher" => {
                let value = r
                    .value
                    .as_deref()
                    .ok_or_else(|| ApiError::invalid("value", "a voucher needs its value"))?;
                qrgate_domain::money::parse_decimal(value)
                    .map_err(|e| ApiError::invalid("value", e))?;
                let days = r.valid_days.unwrap_or(VALID_DAYS_DEFAULT);
                if !(1..=VALID_DAYS_MAX).contains(&days) {
                    return Err(ApiError::invalid(
                        "valid_days",
                        format!("must be from 1 to {VALID_DAYS_MAX}"),
                    ));
                }
                Some((value.to_owned(), days))
            }
            _ => return Err(ApiError::invalid("kind", "must be voucher or gift")),
        };
        Ok(RewardShape {
            name,
            points_cost: r.points_cost,
            voucher,
            stock: r.stock,
        })
    }

    /// The reward, its voucher's value in the currency of the shop that takes it.
    fn priced(self, voucher_currency: Option<Currency>) -> ApiResult<NewReward> {
        let voucher = match (self.voucher, voucher_currency) {
            (None, _) => None,
            (Some((value, days)), Some(currency)) => Some((
                Money::parse(&value, currency).map_err(|e| ApiError::invalid("value", e))?,
                days,
            )),
            (Some(_), None) => {
                return Err(ApiError::invalid(
                    "merchant_id",
                    "a platform voucher names the shop that takes it",
                ))
            }
        };
        Ok(NewReward {
            name: self.name,
            points_cost: self.points_cost,
            voucher,
            stock: self.stock,
        })
    }
}

/// The columns `reward_json` reads, and the rows they come from: a reward with its
/// redemptions counted in one pass (those past expiry and unused count as expired
/// before the sweeper marks them).
const REWARD_COLUMNS: &str = "r.id, r.merchant_id, r.kind, r.name, r.points_cost, r.voucher_merchant_id,
    r.value_minor, r.currency, r.valid_days, r.stock_initial, r.stock_left, r.ended_at, r.created_at,
    n.redeemed, n.used, n.expired";
const REWARD_FROM: &str = "rewards r CROSS JOIN LATERAL (
    SELECT count(*) AS redeemed, count(*) FILTER (WHERE d.status = 'used') AS used,
           count(*) FILTER (WHERE d.status = 'expired' OR (d.status = 'issued' AND d.expires_at <= now())) AS expired
    FROM reward_redemptions d WHERE d.reward_id = r.id) n";

/// A voucher's terms from four columns from `base` on (its shop, value, currency,
/// valid days); None for a gift.
fn voucher_json(r: &Row, base: usize) -> Option<Value> {
    let currency =
        Currency::parse(r.get::<_, Option<&str>>(base + 2)?).expect("stored currencies are known");
    Some(json!({
        "merchant_id": r.get::<_, &str>(base),
        "value": format_minor(r.get(base + 1), currency),
        "currency": currency,
        "valid_days": r.get::<_, i32>(base + 3),
    }))
}

/// A reward as its lister sees it: with how many were redeemed, used, and expired
/// unused (those return nothing: the points stay spent).
fn reward_json(r: &Row) -> Value {
    let voucher = voucher_json(r, 5).unwrap_or(Value::Null);
    let ended_at = r.get::<_, Option<DateTime<Utc>>>(11);
    json!({
        "id": r.get::<_, &str>(0),
        "listed_by": if r.get::<_, Option<&str>>(1).is_some() { "merchant" } else { "platform" },
        "merchant_id": r.get::<_, Option<&str>>(1),
        "kind": r.get::<_, &str>(2),
        "name": r.get::<_, &str>(3),
        "points_cost": r.get::<_, i64>(4).to_string(),
        "voucher": voucher,
        "stock": r.get::<_, Option<i32>>(9),
        "stock_left": r.get::<_, Option<i32>>(10),
        "status": if ended_at.is_some() { "ended" } else { "active" },
        "redeemed_count": r.get::<_, i64>(13),
        "used_count": r.get::<_, i64>(14),
        "expired_count": r.get::<_, i64>(15),
        "created_at": timestamp(r.get(12)),
        "ended_at": ended_at.map(timestamp),
    })
}

async fn insert_reward(
    client: &impl GenericClient,
    lister: Option<&str>,
    voucher_merchant: Option<(&str, Currency)>,
    reward: &NewReward,
    kind: &str,
) -> ApiResult<Value> {
    let id = ids::mint("rwd");
    let (value, days) = reward.voucher.map(|(v, d)| (v.minor(), d)).unzip();
    client
        .execute(
            "INSERT INTO rewards (id, merchant_id, kind, name, points_cost, voucher_merchant_id, value_minor,
                                  currency, valid_days, stock_left, stock_initial)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            &[
                &id,
                &lister,
                &kind,
                &reward.name.as_str(),
                &reward.points_cost,
                &voucher_merchant.map(|(m, _)| m),
                &value,
                &voucher_merchant.map(|(_, c)| c.code()),
                &days,
                &reward.stock,
            ],
        )
        .await?;
    tracing::info!(reward_id = %id, lister = lister.unwrap_or("platform"), kind, "reward listed");
    Ok(reward_json(&fetch_reward(client, &id, lister).await?))
}

/// Refuses a new reward past the lister's cap of live ones. The lister's listings are
/// serialized first (a shop's row, NO KEY UPDATE so its sales go on; the platform's by
/// an advisory lock), so the count holds under a herd until `tx` ends.
async fn within_live_cap(
    tx: &deadpool_postgres::Transaction<'_>,
    lister: Option<&str>,
) -> ApiResult<()> {
    let (live, max) = match lister {
        Some(merchant_id) => {
            let live = super::shop_live_count(
                tx,
                merchant_id,
                "SELECT count(*) FROM rewards WHERE merchant_id = $1 AND ended_at IS NULL",
            )
            .await?
            .unwrap_or_default();
            (live, LIVE_REWARDS_PER_MERCHANT_MAX)
        }
        None => {
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('qrgate.platform_rewards'))",
                &[],
            )
            .await?;
            let live: i64 = tx
                .query_one(
                    "SELECT count(*) FROM rewards WHERE merchant_id IS NULL AND ended_at IS NULL",
                    &[],
                )
                .await?
                .get(0);
            (live, LIVE_PLATFORM_REWARDS_MAX)
        }
    };
    if live >= max {
        let holder = if lister.is_some() {
            "a shop"
        } else {
            "the platform"
        };
        return Err(super::live_cap_reached(
            holder,
            max,
            "rewards",
            "end one first",
        ));
    }
    Ok(())
}

async fn create_own(
    merchant: Merchant,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    let body: NewRewardRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    if body.merchant_id.is_some() {
        return Err(ApiError::invalid(
            "merchant_id",
            "a shop's voucher is taken at the shop itself",
        ));
    }
    let currency = Currency::parse(&merchant.profile.currency).map_err(ApiError::internal_from)?;
    let reward = RewardShape::parse(&body)?.priced(Some(currency))?;
    let voucher_merchant = reward
        .voucher
        .map(|_| (merchant.merchant_id.as_str(), currency));
    // The SDK retries a POST under one Idempotency-Key: a retry must not list it twice.
    let request = serde_json::to_value(&body).expect("a request serializes");
    let idem =
        Idempotency::from_request(&req, &merchant.merchant_id, "POST /v1/rewards", &request)?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = idempotency::earlier_answer(&idem, &tx).await? {
        return Ok(stored);
    }
    let outcome = async {
        within_live_cap(&tx, Some(&merchant.merchant_id)).await?;
        let shop = Some(merchant.merchant_id.as_str());
        let json = insert_reward(&tx, shop, voucher_merchant, &reward, &body.kind).await?;
        Ok((StatusCode::CREATED, json))
    }
    .await;
    idempotency::finish(idem, tx, outcome).await
}

async fn create_platform(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let body: NewRewardRequest =
        json_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let merchant_id = id_filter("merchant_id", body.merchant_id.as_deref())?;
    let shape = RewardShape::parse(&body)?;
    if body.kind == "gift" && merchant_id.is_some() {
        return Err(ApiError::invalid("merchant_id", "is only for a voucher"));
    }
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let currency = match merchant_id {
        Some(id) => Some(
            tx.query_opt("SELECT currency FROM merchants WHERE id = $1", &[&id])
                .await?
                .map(|r| Currency::parse(r.get(0)))
                .transpose()
                .map_err(ApiError::internal_from)?
                .ok_or_else(|| ApiError::not_found("merchant"))?,
        ),
        None => None,
    };
    let reward = shape.priced(currency)?;
    let voucher_merchant = merchant_id.zip(currency);
    within_live_cap(&tx, None).await?;
    let json = insert_reward(&tx, None, voucher_merchant, &reward, &body.kind).await?;
    admin.commit(tx, StatusCode::CREATED).await?;
    Ok(HttpResponse::Created().json(json))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// One page of rewards, newest first, of one lister (None: all).
async fn rewards_page(
    state: &AppState,
    lister: Option<&str>,
    query: &PageQuery,
) -> ApiResult<Value> {
    let page = page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, at, id) = (page.limit, page.after_at, page.after_id);
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {REWARD_COLUMNS} FROM {REWARD_FROM}
                 WHERE ($1::text IS NULL OR r.merchant_id = $1)
                   AND ($2::timestamptz IS NULL OR (r.created_at, r.id) < ($2, $3))
                 ORDER BY r.created_at DESC, r.id DESC LIMIT $4"
            ),
            &[&lister, &at, &id, &(limit + 1)],
        )
        .await?;
    Ok(page_json(&rows, limit, reward_json, |last| {
        encode_cursor(last.get(12), last.get(0))
    }))
}

async fn list_own(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    Ok(HttpResponse::Ok().json(rewards_page(&state, Some(&merchant.merchant_id), &query).await?))
}

async fn list_all(
    _admin: Admin,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(rewards_page(&state, None, &query).await?))
}

/// A reward by id; `lister` Some: only that merchant's.
async fn fetch_reward(
    client: &impl GenericClient,
    id: &str,
    lister: Option<&str>,
) -> ApiResult<Row> {
    if !ids::is_gateway_id(id) {
        return Err(ApiError::not_found("reward"));
    }
    client
        .query_opt(
            &format!(
                "SELECT {REWARD_COLUMNS} FROM {REWARD_FROM} WHERE r.id = $1 AND ($2::text IS NULL OR r.merchant_id = $2)"
            ),
            &[&id, &lister],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("reward"))
}

async fn get_own(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let client = state.pool.get().await?;
    let row = fetch_reward(&client, &path, Some(&merchant.merchant_id)).await?;
    Ok(HttpResponse::Ok().json(reward_json(&row)))
}

/// Ends a reward: no more redemptions; vouchers already issued stay good until they
/// expire. Ending an ended reward changes nothing.
async fn end_reward(
    client: &impl GenericClient,
    id: &str,
    lister: Option<&str>,
) -> ApiResult<Value> {
    fetch_reward(client, id, lister).await?;
    client
        .execute(
            "UPDATE rewards SET ended_at = now() WHERE id = $1 AND ended_at IS NULL",
            &[&id],
        )
        .await?;
    tracing::info!(reward_id = %id, "reward ended");
    Ok(reward_json(&fetch_reward(client, id, lister).await?))
}

async fn end_own(
    merchant: Merchant,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Keys)?;
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let client = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(end_reward(&client, &path, Some(&merchant.merchant_id)).await?))
}

async fn end_any(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    empty_body(payload, &req, state.settings.limits.body_bytes_max).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let json = end_reward(&tx, &path, None).await?;
    admin.commit(tx, StatusCode::OK).await?;
    Ok(HttpResponse::Ok().json(json))
}

/// The live catalogue a wallet shows its customers: not ended, with stock left, newest
/// first; a voucher with its shop's name.
async fn catalogue(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    let (_call, client) = signed_get(&state, &req, &path).await?;
    let page = page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, at, id) = (page.limit, page.after_at, page.after_id);
    let rows = client
        .query(
            "SELECT r.id, r.kind, r.name, r.points_cost, r.voucher_merchant_id, r.value_minor, r.currency,
                    r.valid_days, m.name, r.stock_left, r.created_at
             FROM rewards r LEFT JOIN merchants m ON m.id = r.voucher_merchant_id
             WHERE r.ended_at IS NULL AND (r.stock_left IS NULL OR r.stock_left > 0)
               AND ($1::timestamptz IS NULL OR (r.created_at, r.id) < ($1, $2))
             ORDER BY r.created_at DESC, r.id DESC LIMIT $3",
            &[&at, &id, &(limit + 1)],
        )
        .await?;
    let item = |r: &Row| {
        // With the shop's name, for the customer.
        let voucher = voucher_json(r, 4).map(|mut v| {
            v["merchant_name"] = json!(r.get::<_, &str>(8));
            v
        });
        json!({
            "id": r.get::<_, &str>(0),
            "kind": r.get::<_, &str>(1),
            "name": r.get::<_, &str>(2),
            "points_cost": r.get::<_, i64>(3).to_string(),
            "voucher": voucher,
            "stock_left": r.get::<_, Option<i32>>(9),
        })
    };
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, item, |last| {
            encode_cursor(last.get(10), last.get(0))
        })),
    )
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    wallet_txn_id: String,
    customer_account_id: String,
    reward_id: String,
}

fn parse_redeem(body: &[u8]) -> ApiResult<RedeemRequest> {
    let r: RedeemRequest = parse_json(body)?;
    wallet_txn_id(&r.wallet_txn_id)?;
    for (field, id) in [
        ("customer_account_id", &r.customer_account_id),
        ("reward_id", &r.reward_id),
    ] {
        if !ids::is_gateway_id(id) {
            return Err(ApiError::invalid(field, "is not an id"));
        }
    }
    Ok(r)
}

/// The columns `redemption_json` reads.
const REDEMPTION_COLUMNS: &str =
    "d.id, d.reward_id, r.name, r.kind, d.customer_account_id, d.points, d.voucher_code,
    d.merchant_id, d.value_minor, d.currency, d.expires_at,
    CASE WHEN d.status = 'issued' AND d.expires_at <= now() THEN 'expired' ELSE d.status END,
    d.used_payment_id, d.created_at";

fn redemption_json(d: &Row) -> Value {
    let currency = d
        .get::<_, Option<&str>>(9)
        .and_then(|c| Currency::parse(c).ok());
    json!({
        "id": d.get::<_, &str>(0),
        "reward_id": d.get::<_, &str>(1),
        "reward_name": d.get::<_, &str>(2),
        "kind": d.get::<_, &str>(3),
        "customer_account_id": d.get::<_, &str>(4),
        "points": d.get::<_, i64>(5).to_string(),
        // A voucher: the code the customer's wallet sends with a payment at merchant_id.
        "voucher_code": d.get::<_, Option<&str>>(6),
        "merchant_id": d.get::<_, Option<&str>>(7),
        "value": currency.zip(d.get::<_, Option<i64>>(8)).map(|(c, v)| format_minor(v, c)),
        "currency": currency,
        "expires_at": d.get::<_, Option<DateTime<Utc>>>(10).map(timestamp),
        "status": d.get::<_, &str>(11),
        "used_payment_id": d.get::<_, Option<&str>>(12),
        "created_at": timestamp(d.get(13)),
    })
}

/// A voucher's code: 16 characters of an unambiguous upper-case alphabet in four
/// groups (`QG7K-…`), 80 random bits: a customer can read it out, nobody can guess one.
fn voucher_code() -> String {
    let raw = ids::random_base32(16).to_uppercase();
    raw.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

async fn redeem(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let request = match parse_redeem(&post.body) {
        Ok(r) => r,
        Err(e) => {
            let client = state.pool.get().await?;
            claim_message(&client, &post.call, &post.message_sha256, false).await?;
            return Err(e);
        }
    };
    let redemption_id = ids::mint("rdm");
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            "SELECT * FROM reward_redeem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &post.call.wallet_id,
                &post.call.message_id,
                &post.message_sha256,
                &request.wallet_txn_id,
                &request_sha256("reward", &request),
                &redemption_id,
                &request.customer_account_id,
                &request.reward_id,
                &voucher_code(),
                &i32::from(rand::random::<u16>()),
            ],
        )
        .await?;
    if let Some(error) = crate::idempotency::outcome_error(&row) {
        return Err(error);
    }
    let id: &str = row.get("redemption_id");
    let redemption = client
        .query_one(
            &format!(
                "SELECT {REDEMPTION_COLUMNS} FROM reward_redemptions d JOIN rewards r ON r.id = d.reward_id
                 WHERE d.id = $1"
            ),
            &[&id],
        )
        .await?;
    Ok(HttpResponse::Created().json(redemption_json(&redemption)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedemptionsQuery {
    customer_account_id: String,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// A customer's redemptions (all their accounts in this wallet), newest first.
async fn redemptions(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    query: web::Query<RedemptionsQuery>,
) -> ApiResult<HttpResponse> {
    let (call, client) = signed_get(&state, &req, &path).await?;
    let account = id_filter("customer_account_id", Some(&query.customer_account_id))?;
    let page = page_ask(&state.settings.limits, query.cursor.as_deref(), query.limit)?;
    let (limit, at, id) = (page.limit, page.after_at, page.after_id);
    let reference: String = client
        .query_opt(
            "SELECT customer_reference FROM accounts WHERE id = $1 AND wallet_id = $2 AND kind = 'customer'",
            &[&account, &call.wallet_id],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("customer account"))?
        .get(0);
    let rows = client
        .query(
            &format!(
                "SELECT {REDEMPTION_COLUMNS} FROM reward_redemptions d JOIN rewards r ON r.id = d.reward_id
                 WHERE d.wallet_id = $1 AND d.customer_reference = $2
                   AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
                 ORDER BY d.created_at DESC, d.id DESC LIMIT $5"
            ),
            &[&call.wallet_id, &reference, &at, &id, &(limit + 1)],
        )
        .await?;
    Ok(
        HttpResponse::Ok().json(page_json(&rows, limit, redemption_json, |last| {
            encode_cursor(last.get(13), last.get(0))
        })),
    )
}
