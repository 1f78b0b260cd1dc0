//! Request rates per API key and per wallet (issue 7): at most N requests a second per
//! subject across every replica, `429 rate_limited` with `Retry-After` beyond.
//!
//! Exact upper bound without a database write per request: a replica leases a chunk of
//! the subject's current one-second window from `request_rate_windows` (one short
//! transaction of its own, never inside a payment's) and spends it from memory. The sum
//! leased in a window never passes the limit, so no replica mix can exceed it; the cost
//! is that tokens one replica leased and did not use are lost to the others for the
//! rest of that second (at most one chunk per replica).

use crate::error::{ApiError, ApiResult};
use std::{
    collections::HashMap,
    sync::Mutex,
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

/// This replica's unspent leases, by subject.
pub struct RequestRates {
    leases: Mutex<HashMap<String, Lease>>,
    subjects_max: usize,
}

struct Lease {
    remaining: u32,
    /// When the database's window ends, on this replica's monotonic clock.
    ends: Instant,
    /// The last lease got less than it asked: the window is used up on every replica,
    /// so further requests are refused here without asking the database again.
    window_spent: bool,
}

/// A tenth of the limit per lease: ten lease statements per subject, replica and second
/// at most when busy, and at most a tenth of the limit stranded per replica.
fn chunk(limit_per_second: u32) -> u32 {
    (limit_per_second / 10).max(1)
}

impl RequestRates {
    pub fn new(subjects_max: usize) -> Self {
        RequestRates {
            leases: Mutex::new(HashMap::new()),
            subjects_max,
        }
    }

    /// Admits one request of `subject`, or answers `rate_limited`. Takes the caller's
    /// connection: a request never holds one pool connection while waiting for another.
    pub async fn admit(
        &self,
        client: &deadpool_postgres::Client,
        subject: RateSubject<'_>,
        limit_per_second: u32,
    ) -> ApiResult<()> {
        let key = subject.key();
        match self.take_leased(&key) {
            Some(true) => return Ok(()),
            Some(false) => return Err(limited(subject, limit_per_second)),
            None => {}
        }
        let stmt = client
            .prepare_cached("SELECT leased, window_left_ms FROM request_rate_lease($1, $2, $3)")
            .await?;
        let limit = i32::try_from(limit_per_second).unwrap_or(i32::MAX);
        let chunk = i32::try_from(chunk(limit_per_second)).unwrap_or(i32::MAX);
        let row = client.query_one(&stmt, &[&key, &chunk, &limit]).await?;
        let leased = u32::try_from(row.get::<_, i32>(0)).unwrap_or(0);
        let window_left = Duration::from_millis(u64::try_from(row.get::<_, i32>(1)).unwrap_or(1));
        self.store(
            key,
            Lease {
                remaining: leased.saturating_sub(1),
                ends: Instant::now() + window_left,
                window_spent: i64::from(leased) < i64::from(chunk),
            },
        );
        if leased == 0 {
            return Err(limited(subject, limit_per_second));
        }
        Ok(())
    }

    /// Spends one leased request: `Some(true)` when there was one, `Some(false)` when
    /// this window is used up (known without asking the database again), `None` when
    /// a new lease is needed.
    fn take_leased(&self, key: &str) -> Option<bool> {
        let mut leases = self.leases.lock().expect("request rate map poisoned");
        let lease = leases.get_mut(key)?;
        if Instant::now() >= lease.ends {
            return None;
        }
        if lease.remaining > 0 {
            lease.remaining -= 1;
            return Some(true);
        }
        (lease.window_spent).then_some(false)
    }

    fn store(&self, key: String, lease: Lease) {
        let mut leases = self.leases.lock().expect("request rate map poisoned");
        if leases.len() >= self.subjects_max && !leases.contains_key(&key) {
            let now = Instant::now();
            leases.retain(|_, lease| now < lease.ends);
            if leases.len() >= self.subjects_max {
                // Unstored, the next request leases again: correct, only slower.
                return;
            }
        }
        leases.insert(key, lease);
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
