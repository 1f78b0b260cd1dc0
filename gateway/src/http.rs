//! HTTP plumbing shared by every endpoint: bounded body reading, strict JSON parsing,
//! the request id, timestamps and cursors on the wire.

use crate::error::{ApiError, ApiResult, ErrorCode, REQUEST_ID};
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    guard,
    http::header::{self, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpRequest,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64URL, Engine};
use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::time::Instant;
use tracing::Instrument;

/// Gives every request an id (`x-request-id` on the response, `request_id` in every
/// error body and on every log line of the request) and logs one line when it ends.
pub async fn request_id_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = qrgate_domain::ids::mint("req");
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", request_id = %request_id, %method, route = %route);
    // Instrumented, not entered: a span entered across an await would tag other
    // requests' log lines on this thread with this request's id.
    async move {
        let state = req.app_data::<web::Data<crate::state::AppState>>().cloned();
        let mut response = REQUEST_ID.scope(request_id.clone(), next.call(req)).await?;
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        if state
            .as_ref()
            .is_some_and(|s| over_https(response.request(), &s.settings))
        {
            // Browsers that saw the pages over HTTPS never ask for them over HTTP again.
            response.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            );
        }
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1e3,
            "request served"
        );
        if let Some(state) = state {
            state
                .metrics
                .request(method.as_str(), &route, status, elapsed);
            if status == 401 {
                if let Some(ip) = client_ip(response.request(), &state.settings.trusted_proxies) {
                    state.auth_failures.record_failure(ip);
                }
            }
            let actor = response
                .request()
                .extensions()
                .get::<crate::auth::AdminActor>()
                .cloned();
            let audited = response
                .request()
                .extensions()
                .get::<AuditedInTransaction>()
                .is_some();
            if let (Some(actor), false, false) =
                (actor, method == actix_web::http::Method::GET, audited)
            {
                let entry = AuditEntry {
                    actor: &actor.0,
                    method: method.as_str(),
                    route: &route,
                    path: response.request().path(),
                    status,
                    request_id: &request_id,
                    body_sha256: response
                        .request()
                        .extensions()
                        .get::<AuditedBody>()
                        .map(|b| b.0.clone()),
                };
                audit(&state, entry).await;
            }
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert(header::HeaderName::from_static("x-request-id"), value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Whether the client reached us over HTTPS: ours (`QRGATE_TLS_CERT_FILE`), or a trusted
/// reverse proxy's that says so (`X-Forwarded-Proto: https`).
pub fn over_https(req: &HttpRequest, settings: &crate::config::Settings) -> bool {
    settings.tls_files.is_some()
        || (req
            .peer_addr()
            .is_some_and(|peer| settings.trusted_proxies.contains(&peer.ip()))
            && req
                .headers()
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
}

/// One admin action: who, what, with which outcome, and a digest of what was asked.
struct AuditEntry<'a> {
    actor: &'a str,
    method: &'a str,
    route: &'a str,
    path: &'a str,
    status: u16,
    request_id: &'a str,
    body_sha256: Option<String>,
}

/// The request's admin action was recorded in its own transaction (`Admin::commit`).
#[derive(Clone, Copy)]
pub struct AuditedInTransaction;

async fn insert_audit(
    client: &impl deadpool_postgres::GenericClient,
    e: &AuditEntry<'_>,
) -> ApiResult<()> {
    client
        .execute(
            "INSERT INTO admin_audit (actor, method, route, path, http_status, request_id, body_sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&e.actor, &e.method, &e.route, &e.path, &(e.status as i16), &e.request_id, &e.body_sha256],
        )
        .await?;
    Ok(())
}

/// Records an operator's change in the change's own transaction (`Admin::commit`).
pub async fn record_admin_action(
    client: &impl deadpool_postgres::GenericClient,
    actor: &str,
    req: &HttpRequest,
    status: u16,
) -> ApiResult<()> {
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let body_sha256 = req.extensions().get::<AuditedBody>().map(|b| b.0.clone());
    let entry = AuditEntry {
        actor,
        method: req.method().as_str(),
        route: &route,
        path: req.path(),
        status,
        request_id: &crate::error::current_request_id(),
        body_sha256,
    };
    insert_audit(client, &entry).await
}

/// Records an admin action that changed nothing (refused, or failed before its commit)
/// after its answer: a failure to record it is logged loudly.
async fn audit(state: &crate::state::AppState, e: AuditEntry<'_>) {
    let recorded = async {
        let client = state.pool.get().await?;
        insert_audit(&client, &e).await
    };
    if let Err(why) = recorded.await {
        tracing::error!(actor = e.actor, route = e.route, status = e.status, error = %why, "admin action not recorded in the audit log");
    }
}

/// A GET route that also answers HEAD (actix-http leaves the body out of a HEAD answer).
pub fn get() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// What no route answers: `405` with `Allow` when the path exists with other methods,
/// else `404`.
pub async fn unrouted(req: HttpRequest) -> ApiResult<actix_web::HttpResponse> {
    let allowed = crate::openapi::allowed_methods(req.path());
    if allowed.is_empty() {
        return Err(ApiError::not_found("route"));
    }
    let allow = allowed
        .iter()
        .map(|m| m.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not served here; allowed: {allow}", req.method()),
    )
    .with_header("Allow", allow))
}

/// Reads a request body of at most `limit` bytes (413 beyond; never buffers more).
pub async fn read_body(
    mut payload: web::Payload,
    req: &HttpRequest,
    limit: usize,
) -> ApiResult<web::Bytes> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is over {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // A client that trickles its body holds a connection and a request slot: it gets
    // this long for the whole body (the head has its own timeout at the server).
    let timeout_ms = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(10_000, |s| s.settings.limits.body_read_timeout_ms);
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::invalid("body", format!("could not be read: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let body = tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), read)
        .await
        .map_err(|_| {
            ApiError::invalid("body", format!("was not received within {timeout_ms} ms"))
        })??;
    // An operator's request: the audit log keeps a digest of what was asked.
    if req.extensions().contains::<crate::auth::AdminActor>() {
        let digest: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        req.extensions_mut().insert(AuditedBody(digest));
    }
    Ok(body)
}

/// The SHA-256 (hex) of an operator request's body, for its audit entry.
#[derive(Clone)]
pub struct AuditedBody(pub String);

/// 415 unless the request says its body is JSON.
pub fn require_json_content_type(req: &HttpRequest) -> ApiResult<()> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim();
    // JSON is UTF-8 (RFC 8259): a body declared in another charset is not one we read.
    let utf8 = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    if essence.eq_ignore_ascii_case("application/json") && utf8 {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json (charset utf-8, if given)",
        ))
    }
}

/// Parses a JSON body into `T`, naming the offending field on failure. A body is
/// exactly one JSON value and optional whitespace (issue 11: `{…} xyz` was accepted),
/// and no text in it may hold NUL, which PostgreSQL cannot store.
/// For a field that must be sent but may be null, as `Option<Option<T>>` with
/// `#[serde(default, deserialize_with = "crate::http::present")]`: left out is `None`,
/// null is `Some(None)`.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if contains_escaped_nul(body) {
        return Err(ApiError::invalid(
            "body",
            "text may not contain the NUL character (\\u0000)",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = parse_value(de)?;
    de.end()
        .map_err(|_| ApiError::invalid("body", "must be one JSON value: there is more after it"))?;
    Ok(value)
}

fn parse_value<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> ApiResult<T> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let inner = e.into_inner();
        let problem = inner.to_string();
        // serde_json appends " at line L column C": keep the message about the field.
        let problem = problem
            .split(" at line ")
            .next()
            .unwrap_or(&problem)
            .to_owned();
        ApiError::invalid(&field, problem)
    })
}

/// Whether a JSON text has a `\u0000` escape: one preceded by an odd number of
/// backslashes (`\\u0000` is a backslash and the letters u0000). Raw control
/// characters are refused by the parser itself.
fn contains_escaped_nul(body: &[u8]) -> bool {
    body.windows(5).enumerate().any(|(at, w)| {
        w == b"u0000" && body[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
    })
}

/// A path or query that holds NUL (`%00`) names nothing that can exist: 404 for a path,
/// 400 for a query, before any handler sees it.
pub async fn refuse_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let refusal = if req.path().contains("%00") {
        Some(ApiError::not_found("resource"))
    } else if req.query_string().contains("%00") {
        Some(ApiError::invalid(
            "query",
            "may not contain the NUL character (%00)",
        ))
    } else {
        None
    };
    match refusal {
        // Answered here, inside the request's scope, so the body carries its request id
        // (an error handed outward is rendered after the scope has ended).
        Some(refusal) => {
            let response = actix_web::ResponseError::error_response(&refusal);
            Ok(req.into_response(response).map_into_right_body())
        }
        None => next.call(req).await.map(|r| r.map_into_left_body()),
    }
}

/// Reads and parses a JSON request body: content type, size, then schema.
pub async fn json_body<T: DeserializeOwned>(
    payload: web::Payload,
    req: &HttpRequest,
    limit: usize,
) -> ApiResult<T> {
    require_json_content_type(req)?;
    let body = read_body(payload, req, limit).await?;
    parse_json(&body)
}

/// A currency code from the wire, or `400 invalid_request` naming `field`.
pub fn currency_field(field: &str, code: &str) -> ApiResult<qrgate_domain::Currency> {
    qrgate_domain::Currency::parse(code).map_err(|e| ApiError::invalid(field, e))
}

/// An amount of `currency` from the wire, or `400 invalid_request` naming `field`.
pub fn money_field(
    field: &str,
    amount: &str,
    currency: qrgate_domain::Currency,
) -> ApiResult<qrgate_domain::Money> {
    qrgate_domain::Money::parse(amount, currency).map_err(|e| ApiError::invalid(field, e))
}

/// For POSTs that take no fields: an empty body or `{}`.
pub async fn empty_body(payload: web::Payload, req: &HttpRequest, limit: usize) -> ApiResult<()> {
    let body = read_body(payload, req, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    require_json_content_type(req)?;
    no_fields(&body)
}

/// A JSON body that must be `{}`: no field is known.
pub fn no_fields(body: &[u8]) -> ApiResult<()> {
    parse_json::<NoFields>(body).map(|_| ())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// A filter naming one of the gateway's ids (`key_id=…`): such an id, or 400.
pub fn id_filter<'a>(field: &str, value: Option<&'a str>) -> ApiResult<Option<&'a str>> {
    match value {
        Some(id) if !qrgate_domain::ids::is_gateway_id(id) => Err(ApiError::invalid(
            field,
            "is not an id (1 to 25 of A-Z, a-z, 0-9 and _)",
        )),
        other => Ok(other),
    }
}

/// A field that names an account: an id in shape (whether it exists, and whose it is,
/// is the caller's question).
pub fn account_id_field(field: &str, value: &str) -> ApiResult<String> {
    if qrgate_domain::ids::is_gateway_id(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::invalid(field, "is not an account id"))
    }
}

/// RFC 3339 in UTC with microseconds, as every timestamp is written.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The years a date or time from outside may name: PostgreSQL and chrono disagree at
/// the far ends of their ranges, and nothing in a payments ledger lies outside these.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

pub fn parse_timestamp(field: &str, s: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .filter(|t| YEARS.contains(&t.year()))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be an RFC 3339 timestamp such as 2026-01-31T08:00:00Z, in the years 1970 to 9999",
            )
        })
}

/// A calendar date `YYYY-MM-DD` in the years 1970 to 9999.
pub fn parse_date(field: &str, s: &str) -> ApiResult<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|d| s.len() == 10 && YEARS.contains(&d.year()))
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "must be a date such as 2026-11-25, in the years 1970 to 9999",
            )
        })
}

/// An opaque page cursor: the position (time, id) of the last item returned.
pub fn encode_cursor(at: DateTime<Utc>, id: &str) -> String {
    B64URL.encode(format!("{}|{id}", at.timestamp_micros()))
}

pub fn decode_cursor(s: &str) -> ApiResult<(DateTime<Utc>, String)> {
    let bad = || ApiError::invalid("cursor", "is not a cursor this API returned");
    let text = String::from_utf8(B64URL.decode(s).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = text.split_once('|').ok_or_else(bad)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?)
        .filter(|t| YEARS.contains(&t.year()))
        .ok_or_else(bad)?;
    Ok((at, id.to_owned()))
}

/// The page size asked for, within the configured bounds.
pub fn page_limit(asked: Option<i64>, default: i64, max: i64) -> ApiResult<i64> {
    match asked {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {max}"),
        )),
    }
}

/// What a list request asks for: how many items, after which (time, id) position.
pub struct PageAsk {
    pub limit: i64,
    pub after_at: Option<DateTime<Utc>>,
    pub after_id: Option<String>,
}

/// `cursor` and `limit` of a list request, checked against the configured bounds.
pub fn page_ask(
    limits: &crate::config::Limits,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> ApiResult<PageAsk> {
    let limit = page_limit(limit, limits.page_size_default, limits.page_size_max)?;
    let (after_at, after_id) = cursor.map(decode_cursor).transpose()?.unzip();
    Ok(PageAsk {
        limit,
        after_at,
        after_id,
    })
}

/// A list page from rows fetched with `LIMIT limit + 1`: `{"items", "next_cursor"}`,
/// the cursor made from the page's last row when more rows follow.
pub fn page_json<R>(
    rows: &[R],
    limit: i64,
    item: impl Fn(&R) -> serde_json::Value,
    cursor: impl Fn(&R) -> String,
) -> serde_json::Value {
    let page = &rows[..rows.len().min(limit as usize)];
    let next_cursor =
        (rows.len() > page.len()).then(|| cursor(page.last().expect("a full page has a last row")));
    serde_json::json!({
        "items": page.iter().map(item).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })
}

/// A header's value as text, if present and visible ASCII.
pub fn header_str<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

pub fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_vec()
}

/// The caller's address: the TCP peer, or, when the peer is a trusted reverse proxy,
/// the nearest address in `X-Forwarded-For` that is not one of ours. Nearest, because
/// each proxy appends the address it saw and anything to its left may be forged by
/// the client. A list that runs out or does not parse leaves the proxy's own address.
pub fn client_ip(
    req: &HttpRequest,
    trusted_proxies: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(forwarded_client(peer, &forwarded, trusted_proxies))
}

fn forwarded_client(
    peer: std::net::IpAddr,
    forwarded_for: &str,
    trusted_proxies: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let mut client = peer;
    let mut hops = forwarded_for.rsplit(',').map(str::trim);
    while trusted_proxies.contains(&client) {
        match hops.next().and_then(|hop| hop.parse().ok()) {
            Some(ip) => client = ip,
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod client_ip_tests {
    use super::forwarded_client;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxies = [ip("10.0.0.1"), ip("10.0.0.2")];
        // No proxy trusted: X-Forwarded-For is whatever the client wrote.
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), "203.0.113.7", &[]),
            ip("10.0.0.1")
        );
        assert_eq!(
            forwarded_client(ip("198.51.100.1"), "203.0.113.7", &proxies),
            ip("198.51.100.1")
        );
        // Through two of our proxies; the client's own forged entry is to the left.
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), "1.2.3.4, 203.0.113.7, 10.0.0.2", &proxies),
            ip("203.0.113.7")
        );
        // A list that runs out, or an entry that does not parse, leaves the proxy.
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), "", &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), "10.0.0.2", &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), "unknown", &proxies),
            ip("10.0.0.1")
        );
    }
}
