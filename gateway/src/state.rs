//! What every handler shares: the pool, the settings, and this replica's long-poll
//! waiters (a shortcut; other replicas' payments are seen by re-reading the database).

use crate::{config::Settings, metrics::Metrics, waiters::OrderWaiters};
use deadpool_postgres::Pool;

pub struct AppState {
    pub pool: Pool,
    pub settings: Settings,
    pub order_waiters: OrderWaiters,
    pub metrics: Metrics,
    pub auth_failures: crate::auth_failures::AuthFailures,
    pub request_rates: crate::request_rates::RequestRates,
    pub credentials: crate::credentials::Credentials,
    pub open_streams: crate::streams::OpenStreams,
    pub admission: crate::admission::Admission,
    /// Payment answers still to drop after their commit (`Faults`; tests only).
    payment_answers_to_drop: std::sync::atomic::AtomicU32,
    admin_token_sha256: [u8; 32],
}

impl AppState {
    pub fn new(pool: Pool, settings: Settings) -> Self {
        let auth_failures = crate::auth_failures::AuthFailures::new(&settings.limits);
        let request_rates =
            crate::request_rates::RequestRates::new(settings.limits.rate_subjects_tracked_max);
        let credentials = crate::credentials::Credentials::new(
            settings.limits.credential_cache_ms,
            settings.limits.credential_cache_entries_max,
        );
        let admission = crate::admission::Admission::new(
            settings.limits.requests_in_flight_max(),
            settings.limits.pool_wait_timeout(),
        );
        let payment_answers_to_drop = settings.faults.payment_answers_dropped;
        let admin_token_sha256 = crate::auth::sha256_32(settings.admin_token.expose().as_bytes());
        AppState {
            pool,
            settings,
            order_waiters: OrderWaiters::default(),
            open_streams: Default::default(),
            admission,
            payment_answers_to_drop: payment_answers_to_drop.into(),
            metrics: Metrics::default(),
            auth_failures,
            request_rates,
            credentials,
            admin_token_sha256,
        }
    }

    pub fn admin_token_sha256(&self) -> &[u8; 32] {
        &self.admin_token_sha256
    }
}

impl AppState {
    /// Whether to drop this committed payment's answer (`Faults`: tests only; always
    /// false in a gateway built without `fault-injection`).
    pub fn drop_payment_answer(&self) -> bool {
        use std::sync::atomic::Ordering;
        cfg!(feature = "fault-injection")
            && self
                .payment_answers_to_drop
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
    }
}
