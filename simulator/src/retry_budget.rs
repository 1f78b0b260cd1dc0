//! A retry budget, as gRPC's retry throttling and Finagle's `RetryBudget` keep one: a
//! client's retries are at most a share of its first tries (plus a small reserve), so
//! that when the service is overloaded its clients do not multiply the load and keep it
//! there. Each first try earns `share` of a retry; each retry spends one; the reserve
//! is what is held at most (and at the start). As Finagle's, it also earns a few retries
//! a second whatever the traffic (`per_second`), so that a quiet client can still retry
//! a burst of failures. A retry that finds the budget empty waits for it, as a wallet
//! defers a check of an uncertain payment.

use std::{sync::Mutex, time::Instant};

pub struct RetryBudget {
    share: f64,
    reserve: f64,
    per_second: f64,
    /// Retries held, and when the time-earned part was last added.
    tokens: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    pub fn new(share: f64, reserve: f64) -> Self {
        Self::with_per_second(share, reserve, 0.0)
    }

    pub fn with_per_second(share: f64, reserve: f64, per_second: f64) -> Self {
        RetryBudget {
            share,
            reserve,
            per_second,
            tokens: Mutex::new((reserve, Instant::now())),
        }
    }

    /// A first try: earns part of a retry.
    pub fn first_try(&self) {
        let mut tokens = self.tokens.lock().unwrap();
        tokens.0 = (tokens.0 + self.share).min(self.reserve);
    }

    /// Whether a retry may be sent now (and, if so, spends it).
    pub fn try_retry(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap();
        let now = Instant::now();
        let earned = now.duration_since(tokens.1).as_secs_f64() * self.per_second;
        *tokens = ((tokens.0 + earned).min(self.reserve), now);
        if tokens.0 >= 1.0 {
            tokens.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_at_most_the_reserve_plus_a_share_of_first_tries() {
        let budget = RetryBudget::new(0.2, 10.0);
        let mut retried = 0;
        for _ in 0..1_000 {
            budget.first_try();
            while budget.try_retry() {
                retried += 1;
            }
        }
        // The reserve (10), then one retry per five first tries.
        assert!((200..=210).contains(&retried), "{retried}");
    }

    #[test]
    fn an_empty_budget_refuses_until_first_tries_refill_it() {
        let budget = RetryBudget::new(0.5, 1.0);
        assert!(budget.try_retry());
        assert!(!budget.try_retry());
        budget.first_try();
        assert!(!budget.try_retry());
        budget.first_try();
        assert!(budget.try_retry());
    }

    #[test]
    fn a_quiet_client_earns_retries_with_time_too() {
        let budget = RetryBudget::with_per_second(0.2, 5.0, 1_000.0);
        while budget.try_retry() {}
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(budget.try_retry());
    }
}
