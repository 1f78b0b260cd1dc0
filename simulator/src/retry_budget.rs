//! A retry budget, as gRPC's retry throttling and Finagle's `RetryBudget` keep one: a
//! client's retries are at most a share of its first tries (plus a small reserve), so
//! that when the service is overloaded its clients do not multiply the load and keep it
//! there. Each first try earns `share` of a retry; each retry spends one; the reserve
//! is what is held at most (and at the start). A retry that finds the budget empty
//! waits for it, as a wallet defers a check of an uncertain payment.

use std::sync::Mutex;

pub struct RetryBudget {
    share: f64,
    reserve: f64,
    tokens: Mutex<f64>,
}

impl RetryBudget {
    pub fn new(share: f64, reserve: f64) -> Self {
        RetryBudget {
            share,
            reserve,
            tokens: Mutex::new(reserve),
        }
    }

    /// A first try: earns part of a retry.
    pub fn first_try(&self) {
        let mut tokens = self.tokens.lock().unwrap();
        *tokens = (*tokens + self.share).min(self.reserve);
    }

    /// Whether a retry may be sent now (and, if so, spends it).
    pub fn try_retry(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
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
}
