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
//! controlled delay (CoDel, as Facebook's servers queue requests): while someone got a
//! place within `TARGET` in the last `INTERVAL`, the queue is a burst, and a new arrival
//! waits up to the pool wait; when every request admitted in an interval waited longer
//! than that (or none was admitted while some waited), the queue is standing — an
//! overload — and new arrivals wait only `OVERLOADED_WAIT` before `503 unavailable` with
//! `Retry-After`, but for wallets' payments, which finish work already done (an order
//! made, a QR shown) and keep their turn. The replica keeps working at its capacity on the requests it admitted,
//! and the shed ones cost almost nothing.
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

/// How often the queue is judged: a burst, or a standing queue (an overload). Long
/// enough that a burst of a few hundred requests at once is served, not cut.
const INTERVAL: Duration = Duration::from_millis(500);
/// A queue whose quickest admission in an interval waited longer than this is standing.
const TARGET: Duration = Duration::from_millis(100);
/// How long a new arrival waits for a place during an overload.
const OVERLOADED_WAIT: Duration = Duration::from_millis(20);

/// The queue's delay this interval, and the judgement of the last one.
struct Delay {
    interval_started: Instant,
    /// The shortest wait of a request admitted this interval.
    quickest: Option<Duration>,
    overloaded: bool,
}

/// Places for requests in flight on this replica, the queue for them, and how many were
/// shed.
pub struct Admission {
    places: Semaphore,
    places_max: usize,
    /// Requests waiting for a place.
    waiting: AtomicUsize,
    delay: Mutex<Delay>,
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
            delay: Mutex::new(Delay {
                interval_started: Instant::now(),
                quickest: None,
                overloaded: false,
            }),
            burst_wait,
            shed_total: AtomicU64::new(0),
            shed_unlogged: AtomicU64::new(0),
            warned_at_second: AtomicU64::new(0),
        }
    }

    /// A place, at once if one is free; otherwise after waiting in line as long as the
    /// queue's state allows. `None`: shed.
    pub async fn admit(&self, finishes_work: bool) -> Option<SemaphorePermit<'_>> {
        if let Ok(place) = self.places.try_acquire() {
            self.admitted_after(Duration::ZERO);
            return Some(place);
        }
        let arrived = Instant::now();
        let wait = if self.judged().overloaded && !finishes_work {
            OVERLOADED_WAIT
        } else {
            self.burst_wait
        };
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = tokio::time::timeout(wait, self.places.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match place {
            Ok(Ok(place)) => {
                self.admitted_after(arrived.elapsed());
                Some(place)
            }
            _ => {
                self.shed();
                None
            }
        }
    }

    /// The queue's state, judged again when an interval has passed.
    fn judged(&self) -> std::sync::MutexGuard<'_, Delay> {
        let mut delay = self.delay.lock().unwrap();
        let elapsed = delay.interval_started.elapsed();
        if elapsed >= INTERVAL {
            // Quiet intervals since: the last whole one admitted no one.
            let quickest = delay.quickest.filter(|_| elapsed < 2 * INTERVAL);
            delay.overloaded = match quickest {
                Some(quickest) => quickest > TARGET,
                None => self.waiting.load(Ordering::Acquire) > 0,
            };
            delay.quickest = None;
            delay.interval_started = Instant::now();
        }
        delay
    }

    fn admitted_after(&self, waited: Duration) {
        let mut delay = self.judged();
        delay.quickest = Some(delay.quickest.map_or(waited, |q| q.min(waited)));
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

/// A wallet's payment finishes a sale whose order (and long-poll) the gateway already
/// did the work for: during an overload it keeps its turn in the queue, and new orders
/// are the ones refused — shedding a payment would waste that work and settle nothing.
fn finishes_work(req: &ServiceRequest) -> bool {
    req.method() == actix_web::http::Method::POST
        && req.path().starts_with("/v1/wallets/")
        && req.path().ends_with("/payments")
}

pub async fn admit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = match req.app_data::<web::Data<AppState>>() {
        Some(state) if !exempt(&req) => state.clone(),
        _ => return next.call(req).await.map(|r| r.map_into_left_body()),
    };
    let Some(place) = state.admission.admit(finishes_work(&req)).await else {
        let response = actix_web::ResponseError::error_response(&ApiError::at_capacity());
        return Ok(req.into_response(response).map_into_right_body());
    };
    let served = next.call(req).await.map(|r| r.map_into_left_body());
    drop(place);
    served
}
