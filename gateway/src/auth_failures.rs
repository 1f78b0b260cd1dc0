//! Failed authentications per source IP (issue 7). A guesser of API keys, admin tokens
//! or wallet signatures gets `429 rate_limited` after `auth_failures_per_ip_max` 401s
//! in a window, for the rest of that window, before its next guess is even checked.
//!
//! Per replica, in memory: the one limit where an approximation is acceptable (N
//! replicas allow N× the guesses), and it keeps the database out of an attack's path.
//! The source is the TCP peer, or behind a listed reverse proxy the address that proxy
//! saw (`http::client_ip`); an `X-Forwarded-For` from anyone else is ignored, or an
//! attacker would name a new address for every guess.

use crate::config::Limits;
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct AuthFailures {
    windows: Mutex<HashMap<IpAddr, Window>>,
    failures_max: u32,
    window: Duration,
    ips_tracked_max: usize,
}

struct Window {
    started: Instant,
    failures: u32,
}

impl AuthFailures {
    pub fn new(limits: &Limits) -> Self {
        AuthFailures {
            windows: Mutex::new(HashMap::new()),
            failures_max: limits.auth_failures_per_ip_max,
            window: Duration::from_secs(limits.auth_failure_window_seconds),
            ips_tracked_max: limits.auth_failure_ips_tracked_max,
        }
    }

    /// How long `ip` must wait, when it has used up its failures in the current window.
    pub fn retry_after(&self, ip: IpAddr) -> Option<Duration> {
        let windows = self.windows.lock().expect("auth failure map poisoned");
        let w = windows.get(&ip)?;
        let ends = w.started + self.window;
        let now = Instant::now();
        (w.failures >= self.failures_max && now < ends).then(|| ends - now)
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("auth failure map poisoned");
        if windows.len() >= self.ips_tracked_max && !windows.contains_key(&ip) {
            windows.retain(|_, w| now < w.started + self.window);
            if windows.len() >= self.ips_tracked_max {
                tracing::warn!(
                    tracked = windows.len(),
                    "auth failure tracking is full: this source is not limited"
                );
                return;
            }
        }
        let w = windows.entry(ip).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: u32, tracked: usize) -> AuthFailures {
        AuthFailures::new(&Limits {
            auth_failures_per_ip_max: max,
            auth_failure_window_seconds: 60,
            auth_failure_ips_tracked_max: tracked,
            ..Limits::default()
        })
    }

    #[test]
    fn a_source_is_limited_after_its_failures_and_others_are_not() {
        let limiter = limiter(3, 10);
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            limiter.record_failure(guesser);
        }
        assert!(limiter.retry_after(guesser).is_none());
        limiter.record_failure(guesser);
        let wait = limiter.retry_after(guesser).expect("limited");
        assert!(wait <= Duration::from_secs(60));
        assert!(limiter.retry_after(other).is_none());
    }

    #[test]
    fn tracking_is_bounded() {
        let limiter = limiter(1, 2);
        for last in 1..=3u8 {
            limiter.record_failure(IpAddr::from([192, 0, 2, last]));
        }
        assert_eq!(limiter.windows.lock().unwrap().len(), 2);
        assert!(limiter.retry_after(IpAddr::from([192, 0, 2, 3])).is_none());
    }
}
