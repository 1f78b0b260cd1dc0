//! Long-polls waiting on this replica for an order, woken the moment this replica
//! settles it. Only a shortcut: waiters also re-read the database every
//! `long_poll_recheck_ms`, which is how payments settled by other replicas are seen.
//! A settlement wakes the waiters of its own order only, and hands them what changed on
//! the order (`settled_with`), so a long-poll on the replica that settled it answers
//! without reading the database again.

use serde_json::Value;
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
    /// The order's fields as its settlement left them (a JSON object to lay over it).
    settlement: Arc<Mutex<Option<Arc<Value>>>>,
}

/// One long-poll's interest in one order; dropping it withdraws the interest.
pub struct Registration<'a> {
    waiters: &'a OrderWaiters,
    order_id: String,
    notify: Arc<Notify>,
    settlement: Arc<Mutex<Option<Arc<Value>>>>,
}

impl OrderWaiters {
    pub fn register(&self, order_id: &str) -> Registration<'_> {
        let mut waiting = self.waiting.lock().expect("waiters lock");
        let (notify, settlement) =
            if waiting.len() >= ORDERS_WAITED_ON_MAX && !waiting.contains_key(order_id) {
                // Untracked: never notified, the re-read finds the outcome.
                (Arc::new(Notify::new()), Arc::default())
            } else {
                let entry = waiting
                    .entry(order_id.to_owned())
                    .or_insert_with(|| Waiting {
                        notify: Arc::new(Notify::new()),
                        waiters: 0,
                        settlement: Arc::default(),
                    });
                entry.waiters += 1;
                (entry.notify.clone(), entry.settlement.clone())
            };
        Registration {
            waiters: self,
            order_id: order_id.to_owned(),
            notify,
            settlement,
        }
    }

    /// Wakes this replica's long-polls of `order_id`.
    pub fn settled(&self, order_id: &str) {
        self.settled_with(order_id, None);
    }

    /// Wakes this replica's long-polls of `order_id`, handing them `changed`: the order's
    /// fields the settlement set, exactly as a re-read would show them.
    pub fn settled_with(&self, order_id: &str, changed: Option<Value>) {
        if let Some(w) = self.waiting.lock().expect("waiters lock").get(order_id) {
            *w.settlement.lock().expect("settlement lock") = changed.map(Arc::new);
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

    /// What the order's settlement on this replica changed, once it has happened.
    pub fn settlement(&self) -> Option<Arc<Value>> {
        self.settlement.lock().expect("settlement lock").clone()
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
