//! Delivers webhooks (docs/contract.md §7) from the outbox, to merchants and to wallet
//! providers (`wallet_events`): at least once, signed with
//! Standard Webhooks (both secrets while a rotation overlaps), retried with doubling
//! backoff and jitter for about a day; any 2xx is success, 410 stops. Every replica runs
//! a worker; an event is leased to one worker at a time (`webhook_lease`), so no lock or
//! connection is held during the HTTP call.
//!
//! Destinations are checked when connecting: https only, and never private, loopback or
//! link-local addresses (the resolver drops them; IP literals are checked before), unless
//! `QRGATE_ALLOW_PRIVATE_WEBHOOKS=1`. Redirects are not followed.

use crate::{api::orders::order_json, config::Limits, sealed::SecretKind, state::AppState};
use futures_util::StreamExt;
use qrgate_domain::signing::SigningSecret;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::{json, Value};
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};
use tokio_postgres::Row;

/// How long a leased event stays with its worker: longer than one attempt can take
/// (with the retries of recording its outcome).
const LEASE_MARGIN_SECONDS: u64 = 20;
/// Recording an attempt's outcome: tries, the first wait between them (doubling). In
/// all at most about 6 s, well inside the lease margin.
const RECORD_ATTEMPTS_MAX: u32 = 5;
const RECORD_RETRY_FIRST_MS: u64 = 400;
/// The part of a failing answer's body kept as `last_error`.
const ERROR_CHARS_MAX: usize = 300;

/// Whether `ip` is somewhere a webhook may go: not private, loopback, link-local,
/// unspecified, multicast or shared (CGNAT) space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// Resolves names for deliveries, keeping only addresses a webhook may go to.
struct DestinationResolver {
    allow_private: bool,
}

impl Resolve for DestinationResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    "the webhook host resolves only to private, loopback or link-local addresses"
                        .into(),
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Why a URL may not be called before any connection is tried.
pub fn check_destination(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match (url.scheme(), allow_private) {
        ("https", _) | ("http", true) => {}
        _ => return Err("webhook URLs must be https://".into()),
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err("the URL has no host".into()),
    };
    if literal.is_some_and(|ip| !allow_private && !is_public(ip)) {
        return Err(
            "webhook URLs may not point at private, loopback or link-local addresses".into(),
        );
    }
    Ok(url)
}

pub fn http_client(limits: &Limits, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(DestinationResolver { allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(limits.webhook_timeout_ms))
        .connect_timeout(Duration::from_millis(limits.webhook_timeout_ms.min(5_000)))
        .pool_max_idle_per_host(2)
        .build()
        .expect("a webhook HTTP client builds")
}

/// The worker: leases due events and delivers them until the process stops.
pub async fn run(state: Arc<AppState>) {
    let limits = state.settings.limits.clone();
    let http = http_client(&limits, state.settings.allow_private_webhooks);
    let mut tick = tokio::time::interval(Duration::from_millis(limits.webhook_poll_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A full batch means more are due: go on at once rather than at the next tick,
        // or a replica could never deliver more than a batch per poll interval (64/s by
        // default) and a busy shop's events would queue for ever.
        loop {
            match deliver_due(&state, &http).await {
                Ok(leased) if leased as i64 >= i64::from(limits.webhook_batch_max) => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "webhook round failed; will retry");
                    break;
                }
            }
        }
    }
}

/// One round: lease what is due and deliver it, a bounded number at a time.
pub async fn deliver_due(state: &AppState, http: &reqwest::Client) -> anyhow::Result<usize> {
    let limits = &state.settings.limits;
    let lease_seconds = (limits.webhook_timeout_ms / 1000 + LEASE_MARGIN_SECONDS) as i32;
    let events = {
        let client = state.pool.get().await?;
        client
            .query(
                "SELECT * FROM webhook_lease($1, $2)",
                &[&limits.webhook_batch_max, &lease_seconds],
            )
            .await?
    };
    let count = events.len();
    futures_util::stream::iter(events)
        .for_each_concurrent(limits.webhook_concurrency_max, |event| async move {
            if let Err(e) = deliver(state, http, &event).await {
                tracing::warn!(event = event.get::<_, &str>("id"), error = %format!("{e:#}"), "webhook delivery bookkeeping failed");
            }
        })
        .await;
    Ok(count)
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    Gone,
    Failed(Option<u16>, String),
}

async fn deliver(state: &AppState, http: &reqwest::Client, event: &Row) -> anyhow::Result<()> {
    let id: &str = event.get("id");
    let client = state.pool.get().await?;
    let recipient = Recipient::of(event);
    let (url, secrets) = recipient.destination(state, &client).await?;
    let data = match recipient {
        Recipient::Merchant(_) => {
            render(&client, event.get("type"), event.get("object_id")).await?
        }
        Recipient::Wallet(_) => {
            crate::wallet_events::render(&client, event.get("type"), event.get("object_id")).await?
        }
    };
    drop(client);
    let body = serde_json::to_vec(&json!({
        "id": id,
        "type": event.get::<_, &str>("type"),
        "created_at": crate::http::timestamp(event.get("created_at")),
        "data": data,
    }))?;
    let attempt = match url {
        None => Attempt::Failed(None, format!("the {} has no webhook URL", recipient.noun())),
        // Never an unsigned delivery: the recipient could not tell it from a forgery.
        Some(_) if secrets.is_empty() => Attempt::Failed(
            None,
            format!(
                "the {}'s webhook secret could not be opened (see the gateway's log)",
                recipient.noun()
            ),
        ),
        Some(url) => post(state, http, &url, id, &secrets, body).await,
    };
    record(state, event, attempt).await
}

/// A recipient's webhook URL, its secret and the previous secret while a rotation
/// overlaps, from `$table` (merchants and wallets keep the same columns).
macro_rules! destination_sql {
    ($table:literal) => {
        concat!(
            "SELECT webhook_url, webhook_secret,
                    CASE WHEN webhook_secret_previous_until > now() THEN webhook_secret_previous END
             FROM ",
            $table,
            " WHERE id = $1"
        )
    };
}

/// Who an event is for: a merchant (its orders and refunds) or a wallet (its customers).
#[derive(Clone, Copy)]
enum Recipient<'a> {
    Merchant(&'a str),
    Wallet(&'a str),
}

impl<'a> Recipient<'a> {
    fn of(event: &'a Row) -> Self {
        match event.get::<_, Option<&str>>("merchant_id") {
            Some(merchant_id) => Recipient::Merchant(merchant_id),
            None => Recipient::Wallet(event.get("wallet_id")),
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Recipient::Merchant(_) => "merchant",
            Recipient::Wallet(_) => "wallet",
        }
    }

    /// The URL and the secrets that sign (the previous secret too while a rotation
    /// overlaps).
    async fn destination(
        self,
        state: &AppState,
        client: &deadpool_postgres::Client,
    ) -> anyhow::Result<(Option<String>, Vec<SigningSecret>)> {
        let (sql, kind, owner) = match self {
            Recipient::Merchant(id) => (
                destination_sql!("merchants"),
                SecretKind::MerchantWebhook,
                id,
            ),
            Recipient::Wallet(id) => (destination_sql!("wallets"), SecretKind::WalletWebhook, id),
        };
        let row = client.query_one(sql, &[&owner]).await?;
        let secrets = [row.get::<_, Option<String>>(1), row.get(2)]
            .into_iter()
            .flatten()
            .filter_map(|stored| {
                (state.settings.secrets)
                    .open_signing_secret(kind, owner, &stored)
                    .inspect_err(|e| tracing::error!(recipient = owner, error = %e, "a webhook secret does not open"))
                    .ok()
            })
            .collect();
        Ok((row.get(0), secrets))
    }
}

async fn post(
    state: &AppState,
    http: &reqwest::Client,
    url: &str,
    id: &str,
    secrets: &[SigningSecret],
    body: Vec<u8>,
) -> Attempt {
    let url = match check_destination(url, state.settings.allow_private_webhooks) {
        Ok(u) => u,
        Err(why) => return Attempt::Failed(None, why),
    };
    let timestamp = chrono::Utc::now().timestamp();
    let signature: Vec<String> = secrets
        .iter()
        .map(|s| s.sign(id, timestamp, &body))
        .collect();
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature.join(" "))
        .body(body)
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Attempt::Delivered(r.status().as_u16()),
        Ok(r) if r.status() == reqwest::StatusCode::GONE => Attempt::Gone,
        Ok(r) => {
            let status = r.status().as_u16();
            let text: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(ERROR_CHARS_MAX)
                .collect();
            Attempt::Failed(Some(status), format!("HTTP {status}: {text}"))
        }
        Err(e) => Attempt::Failed(
            None,
            error_chain(&e).chars().take(ERROR_CHARS_MAX).collect(),
        ),
    }
}

/// An error with its causes ("error sending request: … : the host resolves only to …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Records an attempt, trying again for a few seconds when the database is briefly
/// away (a connection cut, a restart): an outcome not recorded leaves the event leased
/// until its lease ends and then delivered again, a duplicate the endpoint must absorb.
async fn record(state: &AppState, event: &Row, attempt: Attempt) -> anyhow::Result<()> {
    let mut wait = Duration::from_millis(RECORD_RETRY_FIRST_MS);
    for _ in 1..RECORD_ATTEMPTS_MAX {
        match record_once(state, event, &attempt).await {
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %format!("{e:#}"), "recording a webhook attempt failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            done => return done,
        }
    }
    record_once(state, event, &attempt).await
}

/// The database was unreachable or the connection was lost, rather than a query wrong.
fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<deadpool_postgres::PoolError>()
            || cause
                .downcast_ref::<tokio_postgres::Error>()
                .is_some_and(|pg| {
                    pg.is_closed() || pg.code().is_some_and(|c| c.code().starts_with("57P"))
                })
    })
}

async fn record_once(state: &AppState, event: &Row, attempt: &Attempt) -> anyhow::Result<()> {
    let limits = &state.settings.limits;
    let id: &str = event.get("id");
    let attempts: i32 = event.get("attempts");
    let client = state.pool.get().await?;
    match attempt {
        Attempt::Delivered(status) => {
            client
                .execute(
                    "UPDATE webhook_events SET status = 'delivered', delivered_at = now(), last_http_status = $2, last_error = NULL
                     WHERE id = $1",
                    &[&id, &(*status as i16)],
                )
                .await?;
            state.metrics.webhook_attempt("delivered");
            tracing::info!(event = id, attempts, "webhook delivered");
        }
        Attempt::Gone => {
            client
                .execute("UPDATE webhook_events SET status = 'gone', last_http_status = 410 WHERE id = $1", &[&id])
                .await?;
            tracing::info!(
                event = id,
                "webhook endpoint answered 410: delivery stopped"
            );
        }
        Attempt::Failed(status, why) => {
            let backoff_ms = backoff_ms(limits, attempts);
            client
                .execute(
                    "UPDATE webhook_events SET last_http_status = $2, last_error = $3,
                        status = CASE WHEN attempts >= $4 OR created_at < now() - make_interval(secs => $5) THEN 'failed' ELSE 'pending' END,
                        next_attempt_at = now() + make_interval(secs => $6)
                     WHERE id = $1",
                    &[
                        &id,
                        &status.map(|s| s as i16),
                        &why,
                        &limits.webhook_attempts_max,
                        &(limits.webhook_give_up_after_seconds as f64),
                        &(backoff_ms as f64 / 1000.0),
                    ],
                )
                .await?;
            state.metrics.webhook_attempt("failed");
            tracing::warn!(event = id, attempts, backoff_ms, error = %why, "webhook delivery failed");
        }
    }
    Ok(())
}

/// Doubling from `webhook_retry_initial_ms`, capped, with ±20% jitter.
fn backoff_ms(limits: &Limits, attempts: i32) -> u64 {
    let doubled = limits
        .webhook_retry_initial_ms
        .saturating_mul(1u64 << attempts.clamp(1, 40).saturating_sub(1).min(40));
    let capped = doubled.min(limits.webhook_retry_max_ms);
    let jitter = 0.8 + 0.4 * rand::random::<f64>();
    (capped as f64 * jitter) as u64
}

/// The event's object as it is now (`data.updated_at` orders a merchant's events).
async fn render(
    client: &deadpool_postgres::Client,
    kind: &str,
    object_id: &str,
) -> anyhow::Result<Value> {
    if kind == "refund.succeeded" {
        let r = client
            .query_one(
                "SELECT r.id, r.order_id, r.amount_minor, o.currency, r.order_status_after, r.reason, r.created_at
                 FROM refunds r JOIN orders o ON o.id = r.order_id WHERE r.id = $1",
                &[&object_id],
            )
            .await?;
        let currency = qrgate_domain::Currency::parse(r.get(3))?;
        let created_at = crate::http::timestamp(r.get(6));
        return Ok(json!({
            "id": r.get::<_, &str>(0),
            "order_id": r.get::<_, &str>(1),
            "status": "succeeded",
            "amount": qrgate_domain::money::format_minor(r.get(2), currency),
            "currency": currency,
            "order_status": r.get::<_, &str>(4),
            "reason": r.get::<_, Option<&str>>(5),
            "created_at": created_at,
            "updated_at": created_at,
        }));
    }
    let sql = format!(
        "SELECT {} FROM orders o WHERE o.id = $1",
        crate::api::orders::ORDER_COLUMNS
    );
    Ok(order_json(&client.query_one(&sql, &[&object_id]).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_destinations_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(check_destination("https://127.0.0.1/hook", false).is_err());
        assert!(check_destination("https://[::1]/hook", false).is_err());
        assert!(check_destination("http://example.com/hook", false).is_err());
        assert!(check_destination("https://example.com/hook", false).is_ok());
        assert!(check_destination("http://127.0.0.1:9/hook", true).is_ok());
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let limits = Limits::default();
        for (attempts, base) in [(1, 1_000u64), (2, 2_000), (5, 16_000)] {
            let b = backoff_ms(&limits, attempts);
            assert!(b >= base * 8 / 10 && b <= base * 12 / 10, "{attempts}: {b}");
        }
        assert!(backoff_ms(&limits, 39) <= limits.webhook_retry_max_ms * 12 / 10);
    }
}
