//! When and how long to wait before trying a call again.

use std::time::Duration;

/// Retries happen only where repeating cannot do harm: transport failures, 5xx, 429
/// and 409 `idempotency_in_progress` — every mutating call carries the same
/// `Idempotency-Key` on each attempt. Any other 4xx is final.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 4).
    pub attempts_max: u32,
    /// Backoff before the first retry; doubles each time (default 200 ms).
    pub backoff_initial: Duration,
    /// Largest backoff (default 5 s). Each wait is drawn uniformly below the cap ("full jitter").
    pub backoff_max: Duration,
    /// Largest `Retry-After` honoured (default 30 s); a longer one ends the retries.
    pub retry_after_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_max: 4,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            retry_after_max: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            attempts_max: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0-based), with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .backoff_initial
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.backoff_max);
        cap.mul_f64(rand::random::<f64>())
    }

    /// Whether an answer with this status (and error code) may be retried.
    pub fn is_retryable_status(status: u16, code: Option<&str>) -> bool {
        status >= 500 || status == 429 || (status == 409 && code == Some("idempotency_in_progress"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        for retry in 0..20 {
            let wait = policy.backoff(retry);
            assert!(wait <= policy.backoff_max);
            assert!(wait <= policy.backoff_initial * 2u32.saturating_pow(retry));
        }
    }

    #[test]
    fn only_transient_answers_are_retried() {
        assert!(RetryPolicy::is_retryable_status(503, None));
        assert!(RetryPolicy::is_retryable_status(
            500,
            Some("internal_error")
        ));
        assert!(RetryPolicy::is_retryable_status(429, Some("rate_limited")));
        assert!(RetryPolicy::is_retryable_status(
            409,
            Some("idempotency_in_progress")
        ));
        assert!(!RetryPolicy::is_retryable_status(
            409,
            Some("duplicate_reference")
        ));
        assert!(!RetryPolicy::is_retryable_status(
            422,
            Some("insufficient_funds")
        ));
        assert!(!RetryPolicy::is_retryable_status(400, None));
    }
}
