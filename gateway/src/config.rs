//! Configuration from the environment (and an optional `KEY=VALUE` file named by
//! `QRGATE_CONFIG_FILE`; the environment wins). Every limit the gateway enforces is
//! in [`Limits`], with its default, and is passed explicitly to the libraries.

use crate::sealed::{Keyring, SecretsKey};
use anyhow::{bail, Context};
use std::{collections::HashMap, fmt, net::SocketAddr, time::Duration};

/// A secret from the configuration. Never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: Secret,
    pub admin_token: Secret,
    pub listen: SocketAddr,
    pub metrics_token: Option<Secret>,
    pub allow_private_webhooks: bool,
    /// EMV template 26, sub-field 00.
    pub gateway_guid: String,
    /// `json` for production log lines, `text` for people.
    pub log_format: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`QRGATE_TRUSTED_PROXIES`,
    /// comma-separated addresses). Empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// HTTPS: the certificate chain and key files (`QRGATE_TLS_CERT_FILE`,
    /// `QRGATE_TLS_KEY_FILE`, both or neither). None: plain HTTP, for a reverse proxy.
    pub tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Validate every JSON request and response against `/openapi.json` and keep the
    /// mismatches (`QRGATE_OPENAPI_CHECK=1`; the integration tests set it).
    pub openapi_check: bool,
    /// Faults injected on purpose, for tests (a gateway built with `fault-injection` only).
    pub faults: Faults,
    /// The key that seals wallet and webhook secrets at rest (and, during a change of
    /// key, the previous one): see `sealed`.
    pub secrets: Keyring,
    /// `QRGATE_DEVELOPMENT=1` (`./dev start`): without a secrets key, a public
    /// development key seals the secrets, with a warning at start. Never for real money.
    pub development: bool,
    pub limits: Limits,
}

/// Faults a test asks for (`QRGATE_FAULT_*`); all zero in production, where a gateway
/// built without the `fault-injection` feature refuses to start with any of them set.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// This many successful payments are committed and then answered 503, as if the
    /// gateway died between the commit and the answer (`QRGATE_FAULT_PAYMENT_ANSWERS_DROPPED`).
    pub payment_answers_dropped: u32,
}

macro_rules! limits {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;)*) => {
        /// Every bound the gateway enforces. Each may be set as `QRGATE_<NAME>`
        /// (upper case), e.g. `QRGATE_BODY_BYTES_MAX=65536`.
        #[derive(Clone, Debug)]
        pub struct Limits { $($(#[doc = $doc])* pub $name: $ty,)* }

        impl Default for Limits {
            fn default() -> Self { Limits { $($name: $default,)* } }
        }

        impl Limits {
            fn from_vars(vars: &HashMap<String, String>) -> anyhow::Result<Self> {
                let mut limits = Limits::default();
                $(
                    let key = concat!("QRGATE_", stringify!($name)).to_uppercase();
                    if let Some(v) = vars.get(&key) {
                        limits.$name = v.parse().with_context(|| format!("{key}={v} is not a valid number"))?;
                    }
                )*
                Ok(limits)
            }

            /// `(name, value)` of every limit, for docs and start-up logs.
            pub fn describe(&self) -> Vec<(&'static str, String)> {
                vec![$((stringify!($name), self.$name.to_string()),)*]
            }
        }
    };
}

/// The shortest head timeout a deployment may set.
const REQUEST_HEAD_TIMEOUT_MS_MIN: u64 = 100;

limits! {
    /// Largest request body accepted (413 above).
    body_bytes_max: usize = 64 * 1024;
    /// The whole request body must arrive within this (slow clients get 400).
    body_read_timeout_ms: u64 = 10_000;
    /// A new connection's first request head must arrive within this (else 408).
    request_head_timeout_ms: u64 = 5_000;
    /// How long an API key or a wallet's secrets may be used from memory (0: never);
    /// changes are dropped sooner, at once, by notification.
    credential_cache_ms: u64 = 5_000;
    /// API keys, and wallets, each, held in memory at most.
    credential_cache_entries_max: usize = 100_000;
    /// Largest page a list or statement returns.
    page_size_max: i64 = 200;
    /// Page size when the caller gives none.
    page_size_default: i64 = 50;
    /// Database connections per gateway process.
    pool_size_max: usize = 16;
    /// Requests one replica works on at once, per pool connection; the others wait their
    /// turn before any work — a burst up to the pool wait, during an overload 20 ms —
    /// and are then refused with 503 and Retry-After (gateway/src/admission.rs). Event
    /// streams, the long-poll and health checks are not counted.
    requests_in_flight_per_connection_max: usize = 2;
    /// How long a request waits for a pool connection before 503.
    pool_wait_timeout_ms: u64 = 2_000;
    /// Connecting to PostgreSQL.
    db_connect_timeout_ms: u64 = 5_000;
    /// PostgreSQL statement_timeout on every connection.
    statement_timeout_ms: u64 = 5_000;
    /// Largest `wait_seconds` of the order long-poll.
    long_poll_seconds_max: u64 = 30;
    /// Open event streams (`/v1/orders/{id}/stream`, `/pay/{token}/stream`) per merchant.
    order_streams_per_merchant_max: usize = 50;
    /// Open event streams per gateway process, all merchants.
    order_streams_max: usize = 2_000;
    /// An event stream ends after this long; the page reconnects (with Last-Event-ID).
    order_stream_seconds_max: u64 = 300;
    /// A quiet event stream sends a comment this often: proxies keep it open, and a page
    /// that went away is noticed (its place freed) at the next write that fails.
    order_stream_keepalive_ms: u64 = 5_000;
    /// Checkout sessions may return to http:// URLs on a loopback host (tests, local shops' dev
    /// servers); otherwise only https://.
    checkout_http_loopback_allowed: bool = false;
    /// How often a long-poll re-reads an order settled by another replica.
    long_poll_recheck_ms: u64 = 200;
    /// Failed payment attempts kept on one order's timeline.
    timeline_entries_per_order_max: i32 = 100;
    /// Retries of a transaction after a serialization failure, deadlock or lost race.
    db_retry_max: u32 = 3;
    /// PostgreSQL lock_timeout on every connection: no request waits longer for a row
    /// lock (a duplicate Idempotency-Key waits this long for the first, then gets
    /// idempotency_in_progress; elsewhere the answer is 503 unavailable).
    lock_timeout_ms: u64 = 2_000;
    /// At start-up, how long to wait for the database to answer (retrying with backoff)
    /// before giving up: replicas started with or before their database come up by themselves.
    db_startup_wait_seconds: u64 = 60;
    /// How often the sweeper expires due orders and prunes old records.
    sweeper_interval_ms: u64 = 1_000;
    /// Orders expired per sweeper round (the rest wait for the next round).
    sweeper_batch_max: i32 = 1_000;
    /// Balance shards of each merchant settlement account (hot merchants).
    merchant_balance_shards: i16 = 8;
    /// Balance shards of each platform fee account (credited by every payment).
    fee_balance_shards: i16 = 32;
    /// How long a wallet webhook-id is remembered (at least 600).
    wallet_message_retention_seconds: i64 = 3_600;
    /// How long a merchant Idempotency-Key answer is kept.
    idempotency_retention_seconds: i64 = 24 * 3_600;
    /// In-flight requests get this long to finish on shutdown.
    shutdown_grace_seconds: u64 = 10;
    /// How often each replica looks for webhook events due for delivery.
    webhook_poll_interval_ms: u64 = 500;
    /// Events one replica leases per look.
    webhook_batch_max: i32 = 32;
    /// Deliveries in flight at once per replica.
    webhook_concurrency_max: usize = 8;
    /// One delivery attempt, connect to last byte.
    webhook_timeout_ms: u64 = 10_000;
    /// Backoff before the first retry; doubles (with jitter) up to webhook_retry_max_ms.
    webhook_retry_initial_ms: u64 = 1_000;
    webhook_retry_max_ms: u64 = 3_600_000;
    /// Attempts before an event is given up (with the doubling, about a day).
    webhook_attempts_max: i32 = 40;
    /// An event older than this is given up whatever its attempts.
    webhook_give_up_after_seconds: i64 = 86_400;
    /// Points each side of a rewarded referral gets.
    referral_bonus_points: i64 = 500;
    /// A referred customer's payment must be at least this many whole units of its currency.
    referral_min_payment_units: i32 = 10;
    /// Referrals one customer is rewarded for, at most.
    referral_rewards_per_referrer_max: i32 = 10;
    /// Failed authentications (401s) one source IP may make per window on one replica;
    /// beyond, every authenticated call from it is 429 rate_limited until the window ends.
    auth_failures_per_ip_max: u32 = 20;
    auth_failure_window_seconds: u64 = 60;
    /// Source IPs tracked at once (bounded memory under a spray of addresses).
    auth_failure_ips_tracked_max: usize = 100_000;
    /// Requests one merchant API key may make per second, across all replicas (429 beyond).
    api_key_requests_per_second_max: u32 = 200;
    /// Signed requests one wallet may make per second, across all replicas (429 beyond).
    wallet_requests_per_second_max: u32 = 1_000;
    /// API keys and wallets whose leases one replica keeps at once (bounded memory).
    rate_subjects_tracked_max: usize = 100_000;
    /// Delivered and given-up events are kept this long for the deliveries list.
    webhook_event_retention_seconds: i64 = 30 * 86_400;
}

impl Limits {
    /// The admission bound: requests in flight on this replica at most.
    pub fn requests_in_flight_max(&self) -> usize {
        self.pool_size_max
            .saturating_mul(self.requests_in_flight_per_connection_max)
            .max(1)
    }

    pub fn pool_wait_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_wait_timeout_ms)
    }
}

impl Settings {
    /// Reads the process environment (and `QRGATE_CONFIG_FILE`).
    pub fn from_env() -> anyhow::Result<Self> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(path) = std::env::var("QRGATE_CONFIG_FILE") {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                let (k, v) = line
                    .split_once('=')
                    .with_context(|| format!("{path}: `{line}` is not KEY=VALUE"))?;
                vars.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        vars.extend(
            std::env::vars().filter(|(k, _)| k.starts_with("QRGATE_") || k == "DATABASE_URL"),
        );
        Self::from_vars(&vars)
    }

    pub fn from_vars(vars: &HashMap<String, String>) -> anyhow::Result<Self> {
        let get = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let database_url = get("DATABASE_URL").context("DATABASE_URL is required")?;
        let admin_token = get("QRGATE_ADMIN_TOKEN").context("QRGATE_ADMIN_TOKEN is required")?;
        if admin_token.len() < 16 {
            bail!("QRGATE_ADMIN_TOKEN must be at least 16 characters");
        }
        let listen = get("QRGATE_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let limits = Limits::from_vars(vars)?;
        if limits.wallet_message_retention_seconds < 600 {
            bail!("QRGATE_WALLET_MESSAGE_RETENTION_SECONDS must be at least 600");
        }
        if limits.api_key_requests_per_second_max < 1 || limits.wallet_requests_per_second_max < 1 {
            bail!("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX and QRGATE_WALLET_REQUESTS_PER_SECOND_MAX must be at least 1");
        }
        if limits.request_head_timeout_ms < REQUEST_HEAD_TIMEOUT_MS_MIN {
            // 0 would answer every connection 408 before its client could say a word.
            bail!("QRGATE_REQUEST_HEAD_TIMEOUT_MS must be at least {REQUEST_HEAD_TIMEOUT_MS_MIN}");
        }
        if limits.page_size_default > limits.page_size_max || limits.page_size_max < 1 {
            bail!("page sizes: need 1 <= QRGATE_PAGE_SIZE_DEFAULT <= QRGATE_PAGE_SIZE_MAX");
        }
        let development = get("QRGATE_DEVELOPMENT").as_deref() == Some("1");
        let gateway_guid = get("QRGATE_GATEWAY_GUID").unwrap_or_else(|| "com.qrgate".into());
        if gateway_guid.len() > qrgate_domain::emv::GATEWAY_GUID_CHARS_MAX {
            bail!("QRGATE_GATEWAY_GUID is too long for EMV template 26");
        }
        Ok(Settings {
            database_url: Secret(database_url),
            admin_token: Secret(admin_token),
            listen: listen
                .parse()
                .with_context(|| format!("QRGATE_LISTEN={listen} is not host:port"))?,
            metrics_token: get("QRGATE_METRICS_TOKEN").map(Secret),
            allow_private_webhooks: get("QRGATE_ALLOW_PRIVATE_WEBHOOKS").as_deref() == Some("1"),
            gateway_guid,
            log_format: get("QRGATE_LOG_FORMAT").unwrap_or_else(|| "text".into()),
            trusted_proxies: get("QRGATE_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse().with_context(|| {
                        format!("QRGATE_TRUSTED_PROXIES: {a} is not an IP address")
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            tls_files: match (get("QRGATE_TLS_CERT_FILE"), get("QRGATE_TLS_KEY_FILE")) {
                (Some(cert), Some(key)) => Some((cert.into(), key.into())),
                (None, None) => None,
                _ => bail!("QRGATE_TLS_CERT_FILE and QRGATE_TLS_KEY_FILE go together"),
            },
            openapi_check: get("QRGATE_OPENAPI_CHECK").as_deref() == Some("1"),
            faults: faults(&get)?,
            secrets: keyring(&get, development)?,
            development,
            limits,
        })
    }
}

/// The secrets key (`QRGATE_SECRETS_KEY`, or a file holding it, `QRGATE_SECRETS_KEY_FILE`)
/// and, during a change of key, the previous one (`QRGATE_SECRETS_KEY_PREVIOUS[_FILE]`).
fn keyring(get: &impl Fn(&str) -> Option<String>, development: bool) -> anyhow::Result<Keyring> {
    let current = match (secrets_key(get, "QRGATE_SECRETS_KEY")?, development) {
        (Some(key), _) => key,
        (None, true) => development_key(),
        (None, false) => bail!(
            "QRGATE_SECRETS_KEY or QRGATE_SECRETS_KEY_FILE is required: 32 random bytes in \
             standard base64 (`gateway new-secrets-key`), kept apart from the database and its \
             backups; without it the wallets' and merchants' secrets cannot be read. \
             (QRGATE_DEVELOPMENT=1, as ./dev start sets, uses a public development key.)"
        ),
    };
    let previous = secrets_key(get, "QRGATE_SECRETS_KEY_PREVIOUS")?;
    if previous.as_ref().is_some_and(|p| p.id() == current.id()) {
        bail!("QRGATE_SECRETS_KEY_PREVIOUS is the same key as QRGATE_SECRETS_KEY");
    }
    Ok(Keyring::new(current, previous))
}

/// `NAME` (the key itself) or `NAME_FILE` (a file holding it), not both.
fn secrets_key(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> anyhow::Result<Option<SecretsKey>> {
    let file = format!("{name}_FILE");
    let text = match (get(name), get(&file)) {
        (Some(_), Some(_)) => bail!("set {name} or {file}, not both"),
        (Some(text), None) => text,
        (None, Some(path)) => {
            std::fs::read_to_string(&path).with_context(|| format!("{file}: reading {path}"))?
        }
        (None, None) => return Ok(None),
    };
    SecretsKey::from_base64(&text)
        .map(Some)
        .with_context(|| format!("{name}: the key"))
}

/// Public by design (its derivation is here): development mode's key when none is set.
pub fn development_key() -> SecretsKey {
    use sha2::Digest;
    let bytes =
        sha2::Sha256::digest(b"qrgate development secrets key: public, never for real money");
    SecretsKey::from_bytes(&bytes).expect("32 bytes")
}

fn faults(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Faults> {
    let Some(dropped) = get("QRGATE_FAULT_PAYMENT_ANSWERS_DROPPED") else {
        return Ok(Faults::default());
    };
    if !cfg!(feature = "fault-injection") {
        bail!("QRGATE_FAULT_PAYMENT_ANSWERS_DROPPED needs a gateway built with the fault-injection feature");
    }
    Ok(Faults {
        payment_answers_dropped: dropped
            .parse()
            .context("QRGATE_FAULT_PAYMENT_ANSWERS_DROPPED is not a number")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    /// `pairs`, in development mode (no secrets key needed) unless they say otherwise.
    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars = raw(pairs);
        vars.entry("QRGATE_DEVELOPMENT".into())
            .or_insert("1".into());
        vars
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let key = SecretsKey::generate_base64();
        let settings = Settings::from_vars(&vars(&[
            (
                "DATABASE_URL",
                "postgres://app:db-password-123@127.0.0.1/qrgate",
            ),
            ("QRGATE_ADMIN_TOKEN", "admin-token-abcdefghijkl"),
            ("QRGATE_METRICS_TOKEN", "metrics-token-xyz"),
            ("QRGATE_SECRETS_KEY", &key),
        ]))
        .unwrap();
        let printed = format!("{settings:?}");
        for secret in [
            "db-password-123",
            "admin-token-abcdefghijkl",
            "metrics-token-xyz",
            &key,
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
    }

    #[test]
    fn a_secrets_key_is_required_outside_development_mode() {
        let base = [
            ("DATABASE_URL", "postgres://localhost/q"),
            ("QRGATE_ADMIN_TOKEN", "0123456789abcdef"),
        ];
        let production =
            |extra: &[(&str, &str)]| Settings::from_vars(&raw(&[base.as_slice(), extra].concat()));
        let refused = production(&[]).unwrap_err();
        assert!(
            format!("{refused:#}").contains("QRGATE_SECRETS_KEY"),
            "{refused:#}"
        );
        let development = production(&[("QRGATE_DEVELOPMENT", "1")]).unwrap();
        assert!(development.development);
        assert_eq!(development.secrets.current_id(), development_key().id());
        let key = SecretsKey::generate_base64();
        let dir = std::env::temp_dir().join(format!("qrgate-key-{}", std::process::id()));
        std::fs::write(&dir, format!("{key}\n")).unwrap();
        let from_file = production(&[("QRGATE_SECRETS_KEY_FILE", dir.to_str().unwrap())]).unwrap();
        let from_env = production(&[("QRGATE_SECRETS_KEY", &key)]).unwrap();
        assert_eq!(
            from_file.secrets.current_id(),
            from_env.secrets.current_id()
        );
        let _ = std::fs::remove_file(&dir);
        for bad in [
            vec![("QRGATE_SECRETS_KEY", "c2hvcnQ=")],
            vec![
                ("QRGATE_SECRETS_KEY", key.as_str()),
                ("QRGATE_SECRETS_KEY_FILE", "/x"),
            ],
            vec![
                ("QRGATE_SECRETS_KEY", key.as_str()),
                ("QRGATE_SECRETS_KEY_PREVIOUS", key.as_str()),
            ],
            vec![("QRGATE_SECRETS_KEY_FILE", "/nonexistent/qrgate-key")],
        ] {
            assert!(production(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_come_from_the_environment_with_defaults() {
        let settings = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://localhost/q"),
            ("QRGATE_ADMIN_TOKEN", "0123456789abcdef"),
            ("QRGATE_BODY_BYTES_MAX", "1024"),
        ]))
        .unwrap();
        assert_eq!(settings.limits.body_bytes_max, 1024);
        assert_eq!(settings.limits.page_size_max, 200);
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        let bad = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://localhost/q"),
            ("QRGATE_ADMIN_TOKEN", "0123456789abcdef"),
            ("QRGATE_POOL_SIZE_MAX", "lots"),
        ]));
        assert!(bad.is_err());
        let short_token = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://localhost/q"),
            ("QRGATE_ADMIN_TOKEN", "short"),
        ]));
        assert!(short_token.is_err());
        for (name, value) in [
            ("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "0"),
            ("QRGATE_TRUSTED_PROXIES", "10.0.0.1, proxy.local"),
            ("QRGATE_REQUEST_HEAD_TIMEOUT_MS", "0"),
            ("QRGATE_REQUEST_HEAD_TIMEOUT_MS", "-1"),
            ("QRGATE_CREDENTIAL_CACHE_MS", "99999999999999999999"),
            ("QRGATE_CREDENTIAL_CACHE_ENTRIES_MAX", "many"),
        ] {
            let refused = Settings::from_vars(&vars(&[
                ("DATABASE_URL", "postgres://localhost/q"),
                ("QRGATE_ADMIN_TOKEN", "0123456789abcdef"),
                (name, value),
            ]));
            assert!(refused.is_err(), "{name}={value}");
        }
        let proxies = Settings::from_vars(&vars(&[
            ("DATABASE_URL", "postgres://localhost/q"),
            ("QRGATE_ADMIN_TOKEN", "0123456789abcdef"),
            ("QRGATE_TRUSTED_PROXIES", " 10.0.0.1, ::1 "),
        ]))
        .unwrap();
        assert_eq!(proxies.trusted_proxies.len(), 2);
    }
}
