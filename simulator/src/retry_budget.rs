//! A retry budget, as gRPC's retry throttling and Finagle's `RetryBudget` keep one: a
//! client's retries are at most a share of its first tries (plus a reserve for a burst),
//! so that when the service is overloaded its clients do not multiply the load and keep
//! it there. Each first try earns `share` of a retry; each retry spends one; the reserve
//! is what is held at most (and at the start). A retry that finds the budget empty waits
//! its turn — first come, first served, so none starves — as a wallet defers a check of
//! an uncertain payment.

use std::sync::Mutex;
use tokio::{sync::Semaphore, time::Instant};

pub struct RetryBudget {
    share: f64,
    reserve: usize,
    retries: Semaphore,
    /// Part of a retry earned, not yet a whole one.
    earned: Mutex<f64>,
}

impl RetryBudget {
    pub fn new(share: f64, reserve: usize) -> Self {
        RetryBudget {
            share,
            reserve,
            retries: Semaphore::new(reserve),
            earned: Mutex::new(0.0),
        }
    }

    /// A first try: earns part of a retry.
    pub fn first_try(&self) {
        let mut earned = self.earned.lock().unwrap();
        *earned += self.share;
        while *earned >= 1.0 {
            *earned -= 1.0;
            if self.retries.available_permits() < self.reserve {
                self.retries.add_permits(1);
            }
        }
    }

    /// Waits for a retry, in turn, until `deadline`; whether one was given (and spent).
    pub async fn retry(&self, deadline: Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.retries.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                true
            }
            _ => false,
        }
    }

    /// A retry now, if the budget has one.
    pub fn try_retry(&self) -> bool {
        self.retries.try_acquire().map(|p| p.forget()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_at_most_the_reserve_plus_a_share_of_first_tries() {
        let budget = RetryBudget::new(0.2, 10);
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

    #[tokio::test]
    async fn an_empty_budget_makes_retries_wait_in_turn_until_first_tries_refill_it() {
        let budget = std::sync::Arc::new(RetryBudget::new(0.5, 1));
        assert!(budget.try_retry());
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.retry(deadline).await })
        };
        tokio::task::yield_now().await;
        assert!(!budget.try_retry(), "the waiting retry is first in line");
        budget.first_try();
        budget.first_try();
        assert!(waiting.await.unwrap());
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        assert!(
            !budget.retry(soon).await,
            "nothing earned: the wait ends at the deadline"
        );
    }
}
