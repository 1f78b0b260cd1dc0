//! Request rates per API key and per wallet (issue 7): at most N requests a second per
//! subject across every replica, `429 rate_limited` with `Retry-After` beyond.
//!
//! Exact upper bound without a database write per request: a replica leases part of
//! the subject's current one-second window from `request_rate_windows` (one short
//! transaction of its own, never inside a payment's) and spends it from memory. The sum
//! leased in a window never passes the limit, so no replica mix can exceed it.
//!
//! Not refusing early (issue 11): per subject and replica one lease is in flight at a
//! time and the requests that arrive meanwhile wait for it, so a burst cannot lease the
//! window away in parallel chunks it will not use. A lease asks for what is waiting, or
//! twice the last lease when that ran out within its window; the database grants at most
//! half of what is left, so tokens one replica holds and does not spend strand at most
//! half of the rest. A request is refused only when the database says nothing is left.

use crate::error::{ApiError, ApiResult};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// What is limited: one merchant API key, or one wallet.
#[derive(Clone, Copy, Debug)]
pub enum RateSubject<'a> {
    ApiKey(&'a str),
    Wallet(&'a str),
}

impl RateSubject<'_> {
    fn key(self) -> String {
        match self {
            RateSubject::ApiKey(id) => format!("key:{id}"),
            RateSubject::Wallet(id) => format!("wallet:{id}"),
        }
    }
}

/// This replica's leases, by subject.
pub struct RequestRates {
    subjects: Mutex<HashMap<String, Arc<Subject>>>,
    subjects_max: usize,
}

/// One subject on this replica: its lease, and how many requests wait for it.
#[derive(Default)]
struct Subject {
    waiting: AtomicUsize,
    /// Held across the lease statement: one lease in flight per subject and replica.
    lease: tokio::sync::Mutex<Lease>,
}

#[derive(Default)]
struct Lease {
    remaining: u32,
    /// When the database's window ends, on this replica's monotonic clock.
    ends: Option<Instant>,
    /// Nothing was left to lease in this window on any replica: refuse until it ends.
    window_spent: bool,
    /// The size of the last grant, which the next lease doubles when busy.
    granted: u32,
}

impl Lease {
    fn current(&self, now: Instant) -> bool {
        self.ends.is_some_and(|ends| now < ends)
    }

    /// How many to ask for: everyone waiting, or, when the last grant ran out within its
    /// window, twice that; never more than the limit.
    fn asked(&self, now: Instant, waiting: usize, limit_per_second: u32) -> u32 {
        let waiting = u32::try_from(waiting).unwrap_or(u32::MAX).saturating_add(1);
        let busy = if self.current(now) {
            self.granted.saturating_mul(2)
        } else {
            self.granted
        };
        waiting.max(busy).clamp(1, limit_per_second.max(1))
    }
}

impl RequestRates {
    pub fn new(subjects_max: usize) -> Self {
        RequestRates {
            subjects: Mutex::new(HashMap::new()),
            subjects_max,
        }
    }

    /// Admits one request of `subject`, or answers `rate_limited`. Takes a connection
    /// from `pool` only to lease, once its turn to lease has come (a waiting request
    /// holds none).
    pub async fn admit(
        &self,
        pool: &deadpool_postgres::Pool,
        subject: RateSubject<'_>,
        limit_per_second: u32,
    ) -> ApiResult<()> {
        let key = subject.key();
        let entry = self.subject(&key);
        entry.waiting.fetch_add(1, Ordering::Relaxed);
        let mut lease = entry.lease.lock().await;
        let waiting = entry.waiting.fetch_sub(1, Ordering::Relaxed) - 1;
        let now = Instant::now();
        if lease.current(now) {
            if lease.remaining > 0 {
                lease.remaining -= 1;
                return Ok(());
            }
            if lease.window_spent {
                return Err(limited(subject, limit_per_second));
            }
        }
        let asked = lease.asked(now, waiting, limit_per_second);
        let client = pool.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT leased, unleased, window_left_ms FROM request_rate_lease($1, $2, $3)",
            )
            .await?;
        let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let row = client
            .query_one(&stmt, &[&key, &to_i32(asked), &to_i32(limit_per_second)])
            .await?;
        let leased = u32::try_from(row.get::<_, i32>(0)).unwrap_or(0);
        let window_left = Duration::from_millis(u64::try_from(row.get::<_, i32>(2)).unwrap_or(1));
        *lease = Lease {
            remaining: leased.saturating_sub(1),
            ends: Some(Instant::now() + window_left),
            window_spent: row.get::<_, i32>(1) == 0,
            granted: leased.max(1),
        };
        if leased == 0 {
            return Err(limited(subject, limit_per_second));
        }
        Ok(())
    }

    /// The subject's entry, kept while the map has room; when it is full, entries nobody
    /// holds whose window has ended make room, or the caller gets an unstored entry (it
    /// leases again next time: correct, only slower).
    fn subject(&self, key: &str) -> Arc<Subject> {
        let mut subjects = self.subjects.lock().expect("request rate map poisoned");
        if let Some(entry) = subjects.get(key) {
            return Arc::clone(entry);
        }
        if subjects.len() >= self.subjects_max {
            let now = Instant::now();
            subjects.retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || entry
                        .lease
                        .try_lock()
                        .map_or(true, |lease| lease.current(now))
            });
            if subjects.len() >= self.subjects_max {
                return Arc::default();
            }
        }
        Arc::clone(subjects.entry(key.to_owned()).or_default())
    }
}

fn limited(subject: RateSubject<'_>, limit_per_second: u32) -> ApiError {
    let what = match subject {
        RateSubject::ApiKey(_) => "this API key",
        RateSubject::Wallet(_) => "this wallet",
    };
    ApiError::rate_limited(
        format!("{what} may make at most {limit_per_second} requests a second"),
        1,
    )
}
