//! Merchant API keys (with the merchant's profile) and wallets' signing secrets, held in
//! memory so that most requests authenticate without a database round trip (issue 12).
//!
//! Bounded in time and dropped at once on every replica when what they hold changes:
//! triggers on `api_keys`, `merchants` and `wallet_secrets` send `NOTIFY
//! qrgate_credentials` with what changed, and each replica's listener (its own
//! connection, not the pool's) forgets it. An entry is used only while that listener is
//! connected, and never older than `QRGATE_CREDENTIAL_CACHE_MS`; so a revocation, a
//! block or a retired secret takes effect on every replica within the notification's
//! delay, and within that bound even if a notification were lost. A value read from the
//! database is kept only if no notification arrived while it was being read (the
//! generation check), so a stale read cannot outlive the change it raced with. Unknown
//! keys and wallets are never cached: guesses always reach the database.

use qrgate_domain::signing::SigningSecret;
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// The channel the triggers notify (`migrations/functions/credentials.sql`).
pub const CHANNEL: &str = "qrgate_credentials";

/// A merchant API key as the database holds it, with its merchant's profile.
pub struct KeyRecord {
    pub merchant_id: String,
    pub secret_sha256: Vec<u8>,
    pub scopes: Vec<String>,
    pub profile: crate::auth::MerchantProfile,
}

struct Entry<T> {
    value: Arc<T>,
    fetched: Instant,
}

pub struct Credentials {
    keys: Mutex<HashMap<String, Entry<KeyRecord>>>,
    wallets: Mutex<HashMap<String, Entry<Vec<SigningSecret>>>>,
    /// Bumped by every notification (and by losing the listener).
    generation: AtomicU64,
    listening: AtomicBool,
    /// Authentications answered from memory, for /metrics.
    hits: AtomicU64,
    ttl: Duration,
    entries_max: usize,
}

impl Credentials {
    pub fn new(ttl_ms: u64, entries_max: usize) -> Self {
        Credentials {
            keys: Mutex::default(),
            wallets: Mutex::default(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            ttl: Duration::from_millis(ttl_ms),
            entries_max,
        }
    }

    /// Taken before reading the database; `put_*` keeps the value only if unchanged.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn key(&self, key_id: &str) -> Option<Arc<KeyRecord>> {
        self.get(&self.keys, key_id)
    }

    pub fn put_key(&self, key_id: &str, record: Arc<KeyRecord>, generation: u64) {
        self.put(&self.keys, key_id, record, generation);
    }

    pub fn wallet(&self, wallet_id: &str) -> Option<Arc<Vec<SigningSecret>>> {
        self.get(&self.wallets, wallet_id)
    }

    pub fn put_wallet(&self, wallet_id: &str, secrets: Arc<Vec<SigningSecret>>, generation: u64) {
        self.put(&self.wallets, wallet_id, secrets, generation);
    }

    /// This replica's own change to a key (the other replicas hear of it by notification).
    pub fn forget_key(&self, key_id: &str) {
        self.forget(&format!("key:{key_id}"));
    }

    /// This replica's own change to a merchant's profile.
    pub fn forget_merchant(&self, merchant_id: &str) {
        self.forget(&format!("merchant:{merchant_id}"));
    }

    /// This replica's own change to a wallet's secrets.
    pub fn forget_wallet(&self, wallet_id: &str) {
        self.forget(&format!("wallet:{wallet_id}"));
    }

    /// What a notification says changed: `key:<id>`, `merchant:<id>` or `wallet:<id>`.
    pub fn forget(&self, changed: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match changed.split_once(':') {
            Some(("key", id)) => {
                self.keys.lock().expect("key cache poisoned").remove(id);
            }
            Some(("merchant", id)) => {
                (self.keys.lock().expect("key cache poisoned"))
                    .retain(|_, e| e.value.merchant_id != id);
            }
            Some(("wallet", id)) => {
                self.wallets
                    .lock()
                    .expect("wallet cache poisoned")
                    .remove(id);
            }
            _ => self.forget_all(),
        }
    }

    /// Whether the listener is connected (entries are used only then).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Authentications answered from memory since the start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The listener connected (true) or was lost (false: nothing cached is trusted).
    pub fn set_listening(&self, listening: bool) {
        if !listening {
            self.forget_all();
        }
        self.listening.store(listening, Ordering::SeqCst);
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.lock().expect("key cache poisoned").clear();
        self.wallets.lock().expect("wallet cache poisoned").clear();
    }

    fn get<T>(&self, map: &Mutex<HashMap<String, Entry<T>>>, id: &str) -> Option<Arc<T>> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        let map = map.lock().expect("credential cache poisoned");
        let hit = map
            .get(id)
            .filter(|e| e.fetched.elapsed() < self.ttl)
            .map(|e| e.value.clone());
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    fn put<T>(
        &self,
        map: &Mutex<HashMap<String, Entry<T>>>,
        id: &str,
        value: Arc<T>,
        generation: u64,
    ) {
        if self.ttl.is_zero() || !self.listening.load(Ordering::SeqCst) {
            return;
        }
        let mut map = map.lock().expect("credential cache poisoned");
        // Checked under the map's lock: `forget` bumps the generation before it takes it.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if map.len() >= self.entries_max {
            let ttl = self.ttl;
            map.retain(|_, e| e.fetched.elapsed() < ttl);
            if map.len() >= self.entries_max {
                return;
            }
        }
        map.insert(
            id.to_owned(),
            Entry {
                value,
                fetched: Instant::now(),
            },
        );
    }
}

/// Listens for changes on its own connection for as long as the gateway runs,
/// reconnecting after a second when the connection is lost.
pub async fn listen(state: Arc<crate::state::AppState>) {
    use futures_util::StreamExt;
    loop {
        let connected = match crate::pg_tls::target(state.settings.database_url.expose()) {
            Ok(target) => target.config.connect(target.tls).await,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "credential change listener: DATABASE_URL");
                return;
            }
        };
        match connected {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let tokio_postgres::AsyncMessage::Notification(n) = message {
                            let _ = tx.send(n.payload().to_owned());
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    state.credentials.set_listening(true);
                    while let Some(changed) = rx.recv().await {
                        state.credentials.forget(&changed);
                    }
                }
                state.credentials.set_listening(false);
                driver.abort();
                tracing::warn!("the credential cache's listener lost its connection; reconnecting");
            }
            Err(e) => {
                state.credentials.set_listening(false);
                tracing::warn!(error = %e, "the credential cache's listener cannot connect; retrying");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
