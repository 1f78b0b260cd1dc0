//! Long-polls waiting on this replica for an order, woken the moment this replica
//! settles it. Only a shortcut: waiters also re-read the database every
//! `long_poll_recheck_ms`, which is how payments settled by other replicas are seen.
//! A settlement wakes the waiters of its own order only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::Notify;

/// Orders with waiters tracked at once; past this a long-poll still works, by re-reading.
const ORDERS_WAITED_ON_MAX: usize = 100_000;

#[derive(Default)]
pub struct OrderWaiters {
    waiting: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    notify: Arc<Notify>,
    waiters: usize,
}

/// One long-poll's interest in one order; dropping it withdraws the interest.
pub struct Registration<'a> {
    waiters: &'a OrderWaiters,
    order_id: String,
    notify: Arc<Notify>,
}

impl OrderWaiters {
    pub fn register(&self, order_id: &str) -> Registration<'_> {
        let mut waiting = self.waiting.lock().expect("waiters lock");
        let notify = if waiting.len() >= ORDERS_WAITED_ON_MAX && !waiting.contains_key(order_id) {
            Arc::new(Notify::new()) // untracked: never notified, the re-read finds the outcome
        } else {
            let entry = waiting
                .entry(order_id.to_owned())
                .or_insert_with(|| Waiting {
                    notify: Arc::new(Notify::new()),
                    waiters: 0,
                });
            entry.waiters += 1;
            entry.notify.clone()
        };
        Registration {
            waiters: self,
            order_id: order_id.to_owned(),
            notify,
        }
    }

    /// Wakes this replica's long-polls of `order_id`.
    pub fn settled(&self, order_id: &str) {
        if let Some(w) = self.waiting.lock().expect("waiters lock").get(order_id) {
            w.notify.notify_waiters();
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.waiting.lock().unwrap().len()
    }
}

impl Registration<'_> {
    /// Create the `notified()` future (and `enable` it) before reading the order, so a
    /// settlement between the read and the wait is not missed.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut waiting = self.waiters.waiting.lock().expect("waiters lock");
        if let Some(w) = waiting.get_mut(&self.order_id) {
            if Arc::ptr_eq(&w.notify, &self.notify) {
                w.waiters -= 1;
                if w.waiters == 0 {
                    waiting.remove(&self.order_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_only_the_settled_orders_waiters_and_forgets_them_after() {
        let waiters = OrderWaiters::default();
        let a = waiters.register("ord_a");
        let b = waiters.register("ord_b");
        {
            let woken_a = a.notify().notified();
            let woken_b = b.notify().notified();
            tokio::pin!(woken_a, woken_b);
            woken_a.as_mut().enable();
            woken_b.as_mut().enable();

            waiters.settled("ord_a");

            assert!(tokio::time::timeout(Duration::from_millis(100), woken_a)
                .await
                .is_ok());
            assert!(tokio::time::timeout(Duration::from_millis(50), woken_b)
                .await
                .is_err());
        }
        drop(a);
        assert_eq!(waiters.tracked(), 1);
        drop(b);
        assert_eq!(waiters.tracked(), 0);
    }

    #[tokio::test]
    async fn two_waiters_of_one_order_share_its_entry() {
        let waiters = OrderWaiters::default();
        let first = waiters.register("ord_x");
        let second = waiters.register("ord_x");
        assert_eq!(waiters.tracked(), 1);
        drop(first);
        assert_eq!(waiters.tracked(), 1);
        let woken = second.notify().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        waiters.settled("ord_x");
        assert!(tokio::time::timeout(Duration::from_millis(100), woken)
            .await
            .is_ok());
    }
}
