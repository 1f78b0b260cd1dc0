//! The daily settlement report (`GET /v1/reports/settlement?date=YYYY-MM-DD`, scope
//! `reports`): one day of the merchant's settlement account, in the merchant's time
//! zone, reconciled to the ledger (opening + net = closing).

use crate::{
    api::{orders::EXPIRES_IN_SECONDS_MAX, statements::csv_text},
    auth::{Merchant, Scope},
    error::{ApiError, ApiResult},
    http::{parse_date, parse_timestamp, timestamp},
    state::AppState,
};
use actix_web::{web, HttpResponse};
use qrgate_domain::{money::format_minor, Currency};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/reports/settlement", crate::http::get().to(settlement))
        .route("/v1/reports/shift", crate::http::get().to(shift));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    date: String,
    format: Option<String>,
}

/// Every figure from the ledger and its records, over [start, end) of the merchant's
/// day. The opening and closing balances are the account's balances at the day's two
/// instants (`account_balance_at`: a stored earlier balance plus what was posted since,
/// so a report reads about a day of the ledger however old the shop); `net` is their
/// difference, and the itemised figures must explain it to the minor unit (checked
/// here: a difference is a bug, logged loudly). A merchant-funded discount is its own
/// line: the merchant is credited the amount less the discount, and a refund returns
/// only its share of what was credited. Tips and convenience fees are the merchant's
/// whole (no fee on them), lines of their own, and refunds give back their share of
/// each. Read in one repeatable-read snapshot, so the balances and the lines agree.
const REPORT_SQL: &str = "
    WITH day AS (
        SELECT m.account_id, m.currency, m.time_zone,
               ($2::date)::timestamp AT TIME ZONE m.time_zone AS start_at,
               ($2::date + 1)::timestamp AT TIME ZONE m.time_zone AS end_at
        FROM merchants m WHERE m.id = $1
    ), balances AS (
        SELECT account_balance_at(day.account_id, day.start_at) AS opening,
               account_balance_at(day.account_id, day.end_at) AS closing
        FROM day
    )
    SELECT day.currency, balances.opening, balances.closing - balances.opening,
        pay.n, pay.amount, pay.fees, rf.n, rf.amount, rf.fees_returned, po.amount,
        pay.discounts, rf.discounts, pay.tips, pay.convenience_fees, rf.tips, rf.convenience_fees,
        day.time_zone
    FROM day, balances,
    LATERAL (SELECT count(*)::bigint AS n, coalesce(sum(p.amount_minor), 0)::bigint AS amount,
                    coalesce(sum(p.fee_minor), 0)::bigint AS fees,
                    (coalesce(sum(p.discount_minor) FILTER (WHERE p.discount_funded_by = 'merchant'), 0)
                     + coalesce(sum(p.voucher_minor) FILTER (WHERE p.voucher_funded_by = 'merchant'), 0))::bigint
                        AS discounts,
                    coalesce(sum(p.tip_minor), 0)::bigint AS tips,
                    coalesce(sum(p.convenience_fee_minor), 0)::bigint AS convenience_fees
             FROM payments p JOIN orders o ON o.id = p.order_id
             WHERE o.merchant_id = $1 AND p.paid_at >= day.start_at AND p.paid_at < day.end_at
               -- (only orders that could have been paid that day: the shop's own, by its index)
               AND o.created_at > day.start_at - make_interval(secs => $3::integer)
               AND o.created_at < day.end_at) pay,
    LATERAL (SELECT count(*)::bigint AS n, coalesce(sum(r.amount_minor), 0)::bigint AS amount,
                    coalesce(sum(r.fee_returned_minor), 0)::bigint AS fees_returned,
                    coalesce(sum(r.amount_minor - r.merchant_debited_minor - r.fee_returned_minor
                                 + r.tip_returned_minor + r.convenience_fee_returned_minor), 0)::bigint AS discounts,
                    coalesce(sum(r.tip_returned_minor), 0)::bigint AS tips,
                    coalesce(sum(r.convenience_fee_returned_minor), 0)::bigint AS convenience_fees
             FROM refunds r JOIN orders o ON o.id = r.order_id
             WHERE o.merchant_id = $1 AND r.outcome = 'succeeded'
               AND r.created_at >= day.start_at AND r.created_at < day.end_at) rf,
    LATERAL (SELECT coalesce(sum(po.amount_minor), 0)::bigint AS amount
             FROM payouts po
             WHERE po.merchant_id = $1 AND po.outcome = 'succeeded'
               AND po.created_at >= day.start_at AND po.created_at < day.end_at) po";

async fn settlement(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<ReportQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Reports)?;
    let q = query.into_inner();
    let date = parse_date("date", &q.date)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format", "must be json or csv")),
    };
    let mut client = state.pool.get().await?;
    let snapshot = crate::db::one_snapshot(&mut client).await?;
    let row = snapshot
        .query_one(
            REPORT_SQL,
            &[&merchant.merchant_id, &date, &EXPIRES_IN_SECONDS_MAX],
        )
        .await?;
    snapshot.commit().await?;
    let currency = Currency::parse(row.get(0)).map_err(ApiError::internal_from)?;
    let (opening, net): (i64, i64) = (row.get(1), row.get(2));
    let (payments_count, payments_amount, payment_fees): (i64, i64, i64) =
        (row.get(3), row.get(4), row.get(5));
    let (refunds_count, refunds_amount, fees_returned): (i64, i64, i64) =
        (row.get(6), row.get(7), row.get(8));
    let payouts_amount: i64 = row.get(9);
    let (discounts_amount, refunded_discounts_amount): (i64, i64) = (row.get(10), row.get(11));
    let (tips, convenience_fees, refunded_tips, refunded_convenience_fees): (i64, i64, i64, i64) =
        (row.get(12), row.get(13), row.get(14), row.get(15));
    let fees = payment_fees - fees_returned;
    let explained = payments_amount - discounts_amount - fees + tips + convenience_fees
        - refunds_amount
        + refunded_discounts_amount
        - refunded_tips
        - refunded_convenience_fees
        - payouts_amount;
    if explained != net {
        tracing::error!(merchant_id = %merchant.merchant_id, %date, net, explained, "settlement report does not reconcile");
    }
    let money = |minor: i64| format_minor(minor, currency);
    let fields = [
        ("date", date.to_string()),
        ("currency", currency.code().to_owned()),
        ("opening_balance", money(opening)),
        ("payments_count", payments_count.to_string()),
        ("payments_amount", money(payments_amount)),
        ("discounts_amount", money(discounts_amount)),
        ("refunds_count", refunds_count.to_string()),
        ("refunds_amount", money(refunds_amount)),
        (
            "refunded_discounts_amount",
            money(refunded_discounts_amount),
        ),
        ("fees", money(fees)),
        ("payouts_amount", money(payouts_amount)),
        ("net", money(net)),
        ("closing_balance", money(opening + net)),
        // After the columns a CSV reader already knows, so their positions stay.
        ("tips_amount", money(tips)),
        ("convenience_fees_amount", money(convenience_fees)),
        ("refunded_tips_amount", money(refunded_tips)),
        (
            "refunded_convenience_fees_amount",
            money(refunded_convenience_fees),
        ),
    ];
    if csv {
        let header: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
        let values: Vec<String> = fields.iter().map(|(_, v)| csv_text(v)).collect();
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(format!("{}\r\n{}\r\n", header.join(","), values.join(","))));
    }
    let mut body = serde_json::Map::new();
    for (k, v) in fields {
        let value = if k.ends_with("_count") {
            json!(v.parse::<i64>().unwrap_or_default())
        } else {
            json!(v)
        };
        body.insert(k.to_owned(), value);
    }
    body.insert("time_zone".into(), json!(row.get::<_, &str>(16)));
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftQuery {
    since: String,
}

/// The longest shift a report covers.
const SHIFT_DAYS_MAX: i64 = 31;

/// A till's shift close: since the shift opened, the orders paid and the refunds made,
/// by the staff key that made them (a key may have been revoked since: still listed).
/// Scope `orders`: closing a shift is the cashier's job, and a shop's staff see one
/// another's totals at the till anyway.
const SHIFT_SQL: &str = "
    WITH paid AS (
        SELECT coalesce(o.created_by_key_id, '') AS key_id, count(*)::bigint AS n, sum(p.amount_minor)::bigint AS amount,
               sum(p.tip_minor)::bigint AS tips
        FROM payments p JOIN orders o ON o.id = p.order_id
        WHERE o.merchant_id = $1 AND p.paid_at >= $2 AND p.paid_at < $3
          AND o.created_at > $2 - make_interval(secs => $4::integer) AND o.created_at < $3 GROUP BY 1
    ), refunded AS (
        SELECT coalesce(r.created_by_key_id, '') AS key_id, count(*)::bigint AS n, sum(r.amount_minor)::bigint AS amount
        FROM refunds r JOIN orders o ON o.id = r.order_id
        WHERE o.merchant_id = $1 AND r.outcome = 'succeeded' AND r.created_at >= $2 AND r.created_at < $3 GROUP BY 1
    )
    SELECT nullif(coalesce(p.key_id, r.key_id), ''), k.name, coalesce(p.n, 0), coalesce(p.amount, 0),
           coalesce(r.n, 0), coalesce(r.amount, 0), coalesce(p.tips, 0)
    FROM paid p FULL JOIN refunded r ON r.key_id = p.key_id
    LEFT JOIN api_keys k ON k.id = coalesce(p.key_id, r.key_id)
    ORDER BY 1 NULLS LAST";

async fn shift(
    merchant: Merchant,
    state: web::Data<AppState>,
    query: web::Query<ShiftQuery>,
) -> ApiResult<HttpResponse> {
    merchant.require(Scope::Orders)?;
    let since = parse_timestamp("since", &query.since)?;
    let until = chrono::Utc::now();
    if since > until || until - since > chrono::Duration::days(SHIFT_DAYS_MAX) {
        return Err(ApiError::invalid(
            "since",
            format!("must be in the past, at most {SHIFT_DAYS_MAX} days ago"),
        ));
    }
    let client = state.pool.get().await?;
    let currency: String = client
        .query_one(
            "SELECT currency FROM merchants WHERE id = $1",
            &[&merchant.merchant_id],
        )
        .await?
        .get(0);
    let currency = Currency::parse(&currency).map_err(ApiError::internal_from)?;
    let rows = client
        .query(
            SHIFT_SQL,
            &[
                &merchant.merchant_id,
                &since,
                &until,
                &EXPIRES_IN_SECONDS_MAX,
            ],
        )
        .await?;
    let money = |minor: i64| format_minor(minor, currency);
    let (mut paid_n, mut paid, mut refunds_n, mut refunded, mut tips) =
        (0i64, 0i64, 0i64, 0i64, 0i64);
    let keys: Vec<_> = rows
        .iter()
        .map(|r| {
            paid_n += r.get::<_, i64>(2);
            paid += r.get::<_, i64>(3);
            refunds_n += r.get::<_, i64>(4);
            refunded += r.get::<_, i64>(5);
            tips += r.get::<_, i64>(6);
            json!({
                "key_id": r.get::<_, Option<&str>>(0),
                "key_name": r.get::<_, Option<&str>>(1),
                "orders_paid": r.get::<_, i64>(2),
                "paid_amount": money(r.get(3)),
                "refunds": r.get::<_, i64>(4),
                "refunded_amount": money(r.get(5)),
                "tips_amount": money(r.get(6)),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "since": timestamp(since),
        "until": timestamp(until),
        "currency": currency,
        "keys": keys,
        "totals": {
            "orders_paid": paid_n,
            "paid_amount": money(paid),
            "refunds": refunds_n,
            "refunded_amount": money(refunded),
            "net_amount": money(paid - refunded),
            "tips_amount": money(tips),
        },
    })))
}
