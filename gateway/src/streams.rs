//! Server-sent events: an order's state pushed to a page (the cashier page and the
//! hosted payment page) as it changes, instead of the page polling.
//!
//! One stream follows one order. It sends the order at once (unless the client's
//! `Last-Event-ID` says it has this version already), then each new version, and ends
//! when the order leaves `pending` or after `order_stream_seconds_max`; the browser
//! reconnects by itself with `Last-Event-ID`. Streams are counted per merchant and per
//! process and refused past `order_streams_per_merchant_max` / `order_streams_max`
//! (429), so a page left open everywhere cannot hold the gateway's memory or its pool:
//! no connection is held between looks.

use crate::{
    error::{ApiError, ApiResult, ErrorCode},
    state::AppState,
};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

/// What the browser waits before reconnecting a dropped stream.
const RETRY_MS: u64 = 1_000;

/// One look at the followed order: its version (the event id), whether it is still
/// pending, and what the page is sent.
pub struct Look {
    pub version: String,
    pub pending: bool,
    pub data: serde_json::Value,
}

/// Reads the order; `None` once it is gone from the caller's view.
pub type Fetch = Arc<dyn Fn() -> BoxFuture<'static, ApiResult<Option<Look>>> + Send + Sync>;

/// The open streams: in all, and by merchant.
#[derive(Default)]
pub struct OpenStreams(Arc<Mutex<Counts>>);

#[derive(Default)]
struct Counts {
    total: usize,
    by_merchant: HashMap<String, usize>,
}

/// A counted open stream; uncounted when dropped (the client went away or it ended).
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    merchant_id: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("streams lock");
        counts.total -= 1;
        if let Some(n) = counts.by_merchant.get_mut(&self.merchant_id) {
            *n -= 1;
            if *n == 0 {
                counts.by_merchant.remove(&self.merchant_id);
            }
        }
    }
}

/// Counts a new stream for a merchant, or refuses it past the limits.
pub fn open_slot(state: &AppState, merchant_id: &str) -> ApiResult<Slot> {
    let limits = &state.settings.limits;
    let mut counts = state.open_streams.0.lock().expect("streams lock");
    let mine = counts.by_merchant.get(merchant_id).copied().unwrap_or(0);
    if mine >= limits.order_streams_per_merchant_max || counts.total >= limits.order_streams_max {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many open event streams (at most {} per merchant); close a page or use the long-poll",
                limits.order_streams_per_merchant_max
            ),
        ));
    }
    counts.total += 1;
    *counts
        .by_merchant
        .entry(merchant_id.to_owned())
        .or_insert(0) += 1;
    Ok(Slot {
        counts: state.open_streams.0.clone(),
        merchant_id: merchant_id.to_owned(),
    })
}

/// The client's `Last-Event-ID`, if it sent a sane one.
pub fn last_event_id(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("last-event-id")?.to_str().ok()?;
    (value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| value.to_owned())
}

/// The response: `first` is the look already taken (so a missing order answers 404
/// before the stream starts), then the stream follows `order_id`.
pub fn respond(
    state: Arc<AppState>,
    slot: Slot,
    order_id: String,
    first: Look,
    last_seen: Option<String>,
    fetch: Fetch,
) -> HttpResponse {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(follow(state, slot, order_id, first, last_seen, fetch, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

fn event(look: &Look) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: order\ndata: {}\n\n",
        look.version, look.data
    ))
}

async fn follow(
    state: Arc<AppState>,
    _slot: Slot,
    order_id: String,
    first: Look,
    last_seen: Option<String>,
    fetch: Fetch,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let limits = &state.settings.limits;
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(limits.order_stream_seconds_max);
    let recheck = Duration::from_millis(limits.long_poll_recheck_ms);
    let keep_alive = Duration::from_millis(limits.order_stream_keepalive_ms);
    let registration = state.order_waiters.register(&order_id);
    if tx
        .send(Bytes::from(format!("retry: {RETRY_MS}\n\n")))
        .await
        .is_err()
    {
        return;
    }
    let mut sent = last_seen;
    let mut look = first;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        if sent.as_deref() != Some(look.version.as_str()) {
            if tx.send(event(&look)).await.is_err() {
                return;
            }
            sent = Some(look.version.clone());
            quiet_since = tokio::time::Instant::now();
        }
        if !look.pending || tokio::time::Instant::now() >= deadline {
            return;
        }
        // Woken by this replica's settlement, else re-read every recheck.
        let settled = registration.notify().notified();
        tokio::select! {
            _ = settled => {}
            _ = tokio::time::sleep(recheck) => {}
            _ = tx.closed() => return,
        }
        if quiet_since.elapsed() >= keep_alive {
            if tx
                .send(Bytes::from_static(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
            quiet_since = tokio::time::Instant::now();
        }
        look = match fetch().await {
            Ok(Some(next)) => next,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(%order_id, error = %e, "event stream could not read its order; closing it");
                return;
            }
        };
    }
}

/// `web::Data` to the `Arc` the stream task keeps.
pub fn shared(state: &web::Data<AppState>) -> Arc<AppState> {
    state.clone().into_inner()
}

/// An order's version for `Last-Event-ID`: when it last changed and its (effective)
/// status, since a pending order that passes its expiry changes status unwritten.
pub fn order_version(updated_at: chrono::DateTime<chrono::Utc>, status: &str) -> String {
    format!("{}-{status}", updated_at.timestamp_micros())
}
