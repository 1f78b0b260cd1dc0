//! Admission: the requests one replica works on at once are bounded, and when it cannot
//! keep up the rest are refused at the door, at once, rather than after waiting.
//!
//! Without it an overloaded replica lets every request in: each takes a connection to
//! authenticate, waits for another to settle, and may time out having done part of its
//! work, while clients' retries keep the queue full — the chaos runs showed such an
//! overload outlive the fault that caused it (docs/reliability.md).
//!
//! So at most `pool size × requests_in_flight_per_connection_max` requests are worked on
//! at once; the others wait their turn, first come first served, before any work (no
//! body read, no signature checked, no connection taken). How long they may wait is
//! controlled delay (CoDel, as Facebook's servers queue requests): a burst — the queue
//! was empty within the last `OVERLOAD_AFTER` — waits up to the pool wait and is
//! served; a queue that has not emptied for that long is an overload, and new arrivals
//! wait only `OVERLOADED_WAIT` before `503 unavailable` with `Retry-After`. The replica
//! keeps working at its capacity on the requests it admitted, and the shed ones cost
//! almost nothing.
//!
//! Event streams, the order long-poll and the health and metrics endpoints are not
//! counted: they park for long without a connection, and operators must see an
//! overloaded replica.

use crate::{error::ApiError, state::AppState};
use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};
use tokio::sync::{Semaphore, SemaphorePermit};

/// A queue that has not emptied for this long is an overload, not a burst.
const OVERLOAD_AFTER: Duration = Duration::from_millis(100);
/// How long a new arrival waits for a place during an overload.
const OVERLOADED_WAIT: Duration = Duration::from_millis(10);

/// Places for requests in flight on this replica, the queue for them, and how many were
/// shed.
pub struct Admission {
    places: Semaphore,
    places_max: usize,
    /// Requests waiting for a place, and since when the queue has not been empty.
    waiting: AtomicUsize,
    busy_since: Mutex<Option<Instant>>,
    burst_wait: Duration,
    shed_total: AtomicU64,
    /// Shed since the last warning, and the second of that warning: one line a second
    /// at most, however many are shed.
    shed_unlogged: AtomicU64,
    warned_at_second: AtomicU64,
}

impl Admission {
    /// `places_max` requests in flight at most; a burst waits up to `burst_wait`.
    pub fn new(places_max: usize, burst_wait: Duration) -> Self {
        Admission {
            places: Semaphore::new(places_max),
            places_max,
            waiting: AtomicUsize::new(0),
            busy_since: Mutex::new(None),
            burst_wait,
            shed_total: AtomicU64::new(0),
            shed_unlogged: AtomicU64::new(0),
            warned_at_second: AtomicU64::new(0),
        }
    }

    /// A place, at once if one is free; otherwise after waiting in line as long as the
    /// queue's state allows. `None`: shed.
    pub async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        if let Ok(place) = self.places.try_acquire() {
            return Some(place);
        }
        let wait = self.queued();
        let place = tokio::time::timeout(wait, self.places.acquire()).await;
        self.dequeued();
        match place {
            Ok(Ok(place)) => Some(place),
            _ => {
                self.shed();
                None
            }
        }
    }

    /// Joins the queue; how long to wait in it.
    fn queued(&self) -> Duration {
        let mut busy_since = self.busy_since.lock().unwrap();
        if self.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            *busy_since = Some(Instant::now());
        }
        match *busy_since {
            Some(since) if since.elapsed() >= OVERLOAD_AFTER => OVERLOADED_WAIT,
            _ => self.burst_wait,
        }
    }

    fn dequeued(&self) {
        let mut busy_since = self.busy_since.lock().unwrap();
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            *busy_since = None;
        }
    }

    pub fn in_flight(&self) -> usize {
        self.places_max - self.places.available_permits()
    }

    pub fn shed_total(&self) -> u64 {
        self.shed_total.load(Ordering::Relaxed)
    }

    fn shed(&self) {
        self.shed_total.fetch_add(1, Ordering::Relaxed);
        self.shed_unlogged.fetch_add(1, Ordering::Relaxed);
        let second = chrono::Utc::now().timestamp() as u64;
        let last = self.warned_at_second.load(Ordering::Relaxed);
        if second > last
            && self
                .warned_at_second
                .compare_exchange(last, second, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let shed = self.shed_unlogged.swap(0, Ordering::Relaxed);
            tracing::warn!(
                shed,
                requests_in_flight_max = self.places_max,
                waiting = self.waiting.load(Ordering::Relaxed),
                "at capacity: requests refused at admission (503) since the last warning"
            );
        }
    }
}

/// Long-lived requests that hold no connection while they wait, and the endpoints an
/// operator needs on an overloaded replica.
fn exempt(req: &ServiceRequest) -> bool {
    let path = req.path();
    path.ends_with("/stream")
        || matches!(path, "/healthz" | "/readyz" | "/metrics")
        || (path.starts_with("/v1/orders/") && req.query_string().contains("wait_seconds="))
}

pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !exempt(&req) => state.clone(),
        _ => return next.call(req).await.map(|r| r.map_into_left_body()),
    };
    let Some(place) = state.admission.admit().await else {
        let response = actix_web::ResponseError::error_response(&ApiError::at_capacity());
        return Ok(req.into_response(response).map_into_right_body());
    };
    let served = next.call(req).await.map(|r| r.map_into_left_body());
    drop(place);
    served
}
