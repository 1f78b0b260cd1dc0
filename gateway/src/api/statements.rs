//! Account statements: every ledger line of one account with its running balance,
//! oldest first, as JSON pages or streamed CSV.
//!
//! Order and stability: lines are ordered by (transaction xid, posting id), and a
//! statement shows only lines below a horizon: the oldest transaction of this database
//! still writing. A line that commits later therefore sorts after every line already
//! shown: pages never skip or repeat a line, however many payments land while someone
//! pages through. A line shows once every older writer here has finished (milliseconds
//! on the hot path; every statement is bounded by `statement_timeout`).
//!
//! Cost: a page reads its lines and the balance before the first of them through the
//! xid clock (`functions/balances_at.sql`): about a page of the account's index, however
//! old the account.

use crate::{
    error::{ApiError, ApiResult},
    http::{page_limit, parse_timestamp, timestamp},
    state::AppState,
};
use actix_web::{web::Bytes, HttpResponse};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use qrgate_domain::{ids, money::format_minor, Currency};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tokio_postgres::Row;

/// Lines fetched per database round trip while streaming CSV.
const CSV_PAGE_LINES: i64 = 500;
const CSV_HEADER: &str =
    "posted_at,ledger_transaction_id,kind,description,amount,balance_after\r\n";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

/// Where a page starts: after the line (xid, posting id).
#[derive(Clone)]
struct Position {
    xid: String,
    posting_id: i64,
}

fn encode_position(p: &Position) -> String {
    B64URL.encode(format!("{}|{}", p.xid, p.posting_id))
}

fn decode_position(s: &str) -> ApiResult<Position> {
    let bad = || ApiError::invalid("cursor", "is not a cursor this API returned");
    let text = String::from_utf8(B64URL.decode(s).map_err(|_| bad())?).map_err(|_| bad())?;
    let (xid, id) = text.split_once('|').ok_or_else(bad)?;
    if xid.is_empty() || !xid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok(Position {
        xid: xid.to_owned(),
        posting_id: id.parse().map_err(|_| bad())?,
    })
}

/// One statement request, parsed.
struct Statement {
    account_id: String,
    currency: Currency,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// Lines below this xid are final (all older writers finished).
    horizon: String,
}

/// The statement horizon: the oldest transaction still writing that may be ours, or the
/// next transaction id when none is. Transaction ids are cluster-wide, so writers that
/// pg_stat_activity places in another database are left out (they cannot post our
/// lines); a writer it cannot place counts, so the horizon is never too high.
const HORIZON_SQL: &str = "
    WITH snap AS (SELECT pg_current_snapshot() AS s),
         elsewhere AS (SELECT backend_xid::text AS xid32 FROM pg_stat_activity
                       WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database())
    SELECT coalesce(
        (SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x
         WHERE (x::text::numeric % 4294967296)::text NOT IN (SELECT xid32 FROM elsewhere)),
        (SELECT pg_snapshot_xmax(s) FROM snap))::text";

const LINES_SQL: &str = "
    SELECT p.id, p.xid::text, t.created_at, t.id,
           CASE WHEN a.kind = 'fee' THEN 'fee' WHEN a.currency = 'PTS' THEN 'points' ELSE t.kind END,
           CASE t.kind
               WHEN 'payment' THEN CASE WHEN a.currency = 'PTS' THEN 'points, order ' || pay.order_id ELSE CASE a.kind
                   WHEN 'customer' THEN 'payment to ' || m.name || ', order ' || pay.order_id
                   WHEN 'merchant' THEN CASE
                       -- The tip and the convenience fee are the merchant's own legs
                       -- after the sale's (payment_legs), in that order.
                       WHEN pay.tip_minor + pay.convenience_fee_minor = 0 THEN 'payment for order ' || pay.order_id
                       ELSE (ARRAY['payment for order ', 'tip on order ', 'convenience fee on order '])[
                           CASE WHEN earlier.n = 1 AND pay.tip_minor = 0 THEN 3 ELSE earlier.n + 1 END]
                           || pay.order_id END
                   ELSE 'fee on order ' || pay.order_id END END
               WHEN 'refund' THEN CASE a.kind WHEN 'fee' THEN 'fee returned, order ' || r.order_id
                                              ELSE 'refund of order ' || r.order_id END
               WHEN 'top_up' THEN 'top-up ' || t.reference
               WHEN 'transfer' THEN CASE WHEN p.amount_minor < 0 THEN 'transfer to ' || tr.to_account_id
                                         ELSE 'transfer from ' || tr.from_account_id END
               WHEN 'payout' THEN CASE WHEN p.amount_minor < 0 THEN 'payout to ' || po.to_account_id
                                       ELSE 'payout from ' || mp.name END
               ELSE t.kind END,
           p.amount_minor
    FROM postings p
    JOIN ledger_transactions t ON t.id = p.ledger_transaction_id
    JOIN accounts a ON a.id = p.account_id
    LEFT JOIN payments pay ON t.kind = 'payment' AND pay.id = t.reference
    LEFT JOIN orders o ON o.id = pay.order_id
    LEFT JOIN merchants m ON m.id = o.merchant_id
    LEFT JOIN refunds r ON t.kind = 'refund' AND r.id = t.reference
    LEFT JOIN transfers tr ON t.kind = 'transfer' AND tr.ledger_transaction_id = t.id
    LEFT JOIN payouts po ON t.kind = 'payout' AND po.ledger_transaction_id = t.id
    LEFT JOIN merchants mp ON mp.id = po.merchant_id
    LEFT JOIN LATERAL (SELECT count(*)::integer AS n FROM postings q
                       WHERE q.ledger_transaction_id = p.ledger_transaction_id AND q.account_id = p.account_id
                         AND q.id < p.id) earlier ON a.kind = 'merchant' AND t.kind = 'payment'
    WHERE p.account_id = $1 AND p.xid < $2::text::xid8
      -- (the part of the account's index the xid clock says may hold [from, to))
      AND p.xid >= xid_clock_low(coalesce($5::timestamptz, '-infinity'))
      AND p.xid < coalesce(xid_clock_high($6::timestamptz), $2::text::xid8)
      AND ($3::text IS NULL OR (p.xid, p.id) > ($3::text::xid8, $4::bigint))
      AND ($5::timestamptz IS NULL OR t.created_at >= $5)
      AND ($6::timestamptz IS NULL OR t.created_at < $6)
    ORDER BY p.xid, p.id
    LIMIT $7";

impl Statement {
    /// The lines after `after`, at most `limit`.
    async fn lines(
        &self,
        client: &impl GenericClient,
        after: Option<&Position>,
        limit: i64,
    ) -> ApiResult<Vec<Row>> {
        let stmt = client.prepare_cached(LINES_SQL).await?;
        let (xid, id) = (after.map(|p| p.xid.clone()), after.map(|p| p.posting_id));
        Ok(client
            .query(
                &stmt,
                &[
                    &self.account_id,
                    &self.horizon,
                    &xid,
                    &id,
                    &self.from,
                    &self.to,
                    &limit,
                ],
            )
            .await?)
    }

    /// The account's balance just before `line` (the sum of every earlier line), read
    /// from the xid clock's stored balances in one repeatable-read snapshot.
    async fn balance_before(
        &self,
        client: &mut deadpool_postgres::Client,
        line: &Row,
    ) -> ApiResult<i64> {
        let snapshot = crate::db::one_snapshot(client).await?;
        let stmt = snapshot
            .prepare_cached("SELECT account_balance_below($1, $2::text::xid8, $3::bigint)")
            .await?;
        let xid: &str = line.get(1);
        let id: i64 = line.get(0);
        let balance = snapshot
            .query_one(&stmt, &[&self.account_id, &xid, &id])
            .await?
            .get(0);
        snapshot.commit().await?;
        Ok(balance)
    }

    fn line_json(&self, line: &Row, balance_after: i64) -> serde_json::Value {
        json!({
            "posted_at": timestamp(line.get(2)),
            "ledger_transaction_id": line.get::<_, i64>(3).to_string(),
            "kind": line.get::<_, &str>(4),
            "description": line.get::<_, Option<&str>>(5),
            "amount": format_minor(line.get(6), self.currency),
            "balance_after": format_minor(balance_after, self.currency),
        })
    }

    fn line_csv(&self, line: &Row, balance_after: i64) -> String {
        let cells = [
            timestamp(line.get(2)),
            line.get::<_, i64>(3).to_string(),
            csv_text(line.get(4)),
            csv_text(line.get::<_, Option<&str>>(5).unwrap_or("")),
            format_minor(line.get(6), self.currency),
            format_minor(balance_after, self.currency),
        ];
        let mut row = cells.join(",");
        row.push_str("\r\n");
        row
    }
}

/// A text cell for CSV (RFC 4180): quoted when it holds a comma, quote or line break,
/// and neutralised (a leading apostrophe) when a spreadsheet would read it as a
/// formula. Amounts are written by us as plain numbers and are not text cells.
pub fn csv_text(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// The statement of `account_id`, which must satisfy `owner_clause = owner` (the
/// caller's merchant or wallet); any other account answers 404.
pub async fn respond(
    state: &AppState,
    account_id: &str,
    owner_clause: &str,
    owner: &str,
    q: StatementQuery,
) -> ApiResult<HttpResponse> {
    let limits = &state.settings.limits;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format", "must be json or csv")),
    };
    let from = q
        .from
        .as_deref()
        .map(|s| parse_timestamp("from", s))
        .transpose()?;
    let to =
        q.to.as_deref()
            .map(|s| parse_timestamp("to", s))
            .transpose()?;
    let after = q.cursor.as_deref().map(decode_position).transpose()?;
    let limit = page_limit(q.limit, limits.page_size_default, limits.page_size_max)?;
    if !ids::is_gateway_id(account_id) {
        return Err(ApiError::not_found("account"));
    }
    let mut client = state.pool.get().await?;
    let sql = format!("SELECT a.currency, ({HORIZON_SQL}) FROM accounts a WHERE a.id = $1 AND {owner_clause} = $2");
    let row = client
        .query_opt(&sql, &[&account_id, &owner])
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    let statement = Statement {
        account_id: account_id.to_owned(),
        currency: Currency::from_ledger(row.get(0)).map_err(ApiError::internal_from)?,
        from,
        to,
        horizon: row.get(1),
    };
    if csv {
        drop(client);
        return Ok(stream_csv(state, statement, after));
    }
    let lines = statement.lines(&client, after.as_ref(), limit).await?;
    let mut balance = match lines.first() {
        Some(first) => statement.balance_before(&mut client, first).await?,
        None => 0,
    };
    let items: Vec<_> = lines
        .iter()
        .map(|line| {
            balance += line.get::<_, i64>(6);
            statement.line_json(line, balance)
        })
        .collect();
    let next_cursor = (lines.len() as i64 == limit).then(|| {
        let last = lines.last().expect("a full page has a last line");
        encode_position(&Position {
            xid: last.get(1),
            posting_id: last.get(0),
        })
    });
    Ok(HttpResponse::Ok().json(json!({
        "account_id": statement.account_id,
        "currency": statement.currency,
        "items": items,
        "next_cursor": next_cursor,
    })))
}

/// CSV, page by page from the database: memory stays at one page however long the
/// statement. Each page takes a pool connection only while it is read.
fn stream_csv(state: &AppState, statement: Statement, after: Option<Position>) -> HttpResponse {
    struct Cursor {
        pool: deadpool_postgres::Pool,
        statement: Arc<Statement>,
        after: Option<Position>,
        balance: Option<i64>,
        header_sent: bool,
        done: bool,
    }
    let start = Cursor {
        pool: state.pool.clone(),
        statement: Arc::new(statement),
        after,
        balance: None,
        header_sent: false,
        done: false,
    };
    let body = futures_util::stream::unfold(start, |mut c| async move {
        if !c.header_sent {
            c.header_sent = true;
            return Some((
                Ok::<_, actix_web::Error>(Bytes::from_static(CSV_HEADER.as_bytes())),
                c,
            ));
        }
        if c.done {
            return None;
        }
        let page = async {
            let mut client = c.pool.get().await?;
            let lines = c
                .statement
                .lines(&client, c.after.as_ref(), CSV_PAGE_LINES)
                .await?;
            let mut balance = match (c.balance, lines.first()) {
                (Some(b), _) => b,
                (None, Some(first)) => c.statement.balance_before(&mut client, first).await?,
                (None, None) => 0,
            };
            let mut text = String::new();
            for line in &lines {
                balance += line.get::<_, i64>(6);
                text.push_str(&c.statement.line_csv(line, balance));
            }
            Ok::<_, ApiError>((lines, balance, text))
        };
        match page.await {
            Ok((lines, balance, text)) => {
                c.done = (lines.len() as i64) < CSV_PAGE_LINES;
                c.balance = Some(balance);
                if let Some(last) = lines.last() {
                    c.after = Some(Position {
                        xid: last.get(1),
                        posting_id: last.get(0),
                    });
                }
                Some((Ok(Bytes::from(text)), c))
            }
            Err(e) => {
                tracing::error!(error = %e, "statement CSV stream failed");
                c.done = true;
                Some((
                    Err(actix_web::error::ErrorInternalServerError(
                        "statement stream failed",
                    )),
                    c,
                ))
            }
        }
    });
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"statement.csv\"",
        ))
        .streaming(body)
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn csv_cells_are_quoted_and_neutralised() {
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("+1"), "'+1");
        assert_eq!(csv_text("-2"), "'-2");
        assert_eq!(csv_text("@SUM(A1)"), "'@SUM(A1)");
    }
}
