//! What every handler shares: the pool, the settings, and the in-process signal that
//! an order was just settled here (a shortcut for long-polls on this replica; other
//! replicas' payments are seen by re-reading the database).

use crate::config::Settings;
use deadpool_postgres::Pool;
use tokio::sync::broadcast;

/// Capacity of the settled-order signal; a waiter that lags simply re-reads.
const SETTLED_SIGNAL_CAPACITY: usize = 1024;

pub struct AppState {
    pub pool: Pool,
    pub settings: Settings,
    pub order_settled: broadcast::Sender<String>,
    admin_token_sha256: [u8; 32],
}

impl AppState {
    pub fn new(pool: Pool, settings: Settings) -> Self {
        let admin_token_sha256 = crate::auth::sha256_32(settings.admin_token.expose().as_bytes());
        AppState {
            pool,
            settings,
            order_settled: broadcast::channel(SETTLED_SIGNAL_CAPACITY).0,
            admin_token_sha256,
        }
    }

    pub fn admin_token_sha256(&self) -> &[u8; 32] {
        &self.admin_token_sha256
    }
}
