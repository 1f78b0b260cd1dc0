//! `simulator chaos`: the gateway under faults. Two (or more) replicas of a given
//! gateway binary on one database, started and restarted by the simulator; sales (some
//! tipped, some paying with points, some under a campaign with a small budget, some through a shop's
//! printed static code), double pays, refund races, transfers, payouts, replayed
//! messages, tampered signatures and broke customers spread across them, retried as
//! wallets and cashiers retry (the same `wallet_txn_id` or `Idempotency-Key`, a new
//! `webhook-id`), preferably on another replica; and, on a schedule drawn from the
//! seed, replicas killed with SIGKILL, every database connection terminated, herds of
//! more concurrent sales than a replica has connections, and (given a command for it)
//! the database restarted or failed over.
//! At the end: the six ledger invariants, every acknowledged payment, transfer and
//! payout in the ledger exactly once and nothing else but movements a client gave up on
//! (no final answer within its 30 s: it may or may not have happened, as with any
//! timeout), each double pay both of whose requests were answered paid once, each
//! refund race within the payment, the campaign within its budget and equal to its
//! discounts, every `order.paid` in the outbox (and the wallet's events of points
//! earned, refunds and payouts), every event delivered (signed) or
//! still queued, no request left without a final answer unless its 30 s spanned an
//! outage (2 s or more with no payment acknowledged), and the time from each fault to
//! the next successful payment. A violation exits non-zero and names the seed that
//! replays the schedule.

use crate::{
    hook_sink::HookSink,
    retry_budget::RetryBudget,
    scenario::SplitMix64,
    setup::{open_customer, text, top_up, Admin},
    wallet::WalletClient,
};
use anyhow::{bail, Context};
use futures_util::future::join_all;
use qrgate_domain::signing::SigningSecret;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::{
    collections::BTreeSet,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// How long one request (with its retries) keeps trying before it counts as lost.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// The clients' retry budget (retry_budget.rs): retries at most a fifth as many as first
/// tries, beyond a reserve for a burst. Half was too many, and serving waiting retries
/// first come first served made every one of them wait past its deadline under a long
/// deficit: each retry that finds the budget empty looks again every RETRY_BUDGET_WAIT,
/// in no order (docs/reliability.md has the runs).
const RETRY_SHARE: f64 = 0.2;
const RETRY_RESERVE: f64 = 100.0;
/// Retries earned each second whatever the traffic (Finagle's minimum): a short, quiet
/// run still retries the burst of failures a fault causes.
const RETRIES_PER_SECOND: f64 = 10.0;
/// No payment acknowledged for this long, at the rates a chaos run offers (payments
/// settle tens of times a second): the gateway is out, not slow.
const OUTAGE_GAP: Duration = Duration::from_secs(2);
/// How long a retry that found the budget empty waits before it looks again.
const RETRY_BUDGET_WAIT: Duration = Duration::from_millis(100);
/// How long a killed replica stays down before it is started again.
const DOWN_FOR: Duration = Duration::from_millis(500);
/// Payment ids per reconciliation call (the call's body is bounded).
const RECONCILE_BATCH: usize = 2_000;
/// How long a replica may take to answer `/readyz` after a start.
const START_WITHIN: Duration = Duration::from_secs(60);
/// A herd is this many sales per connection of a replica's pool, sent at once.
const HERD_PER_CONNECTION: usize = 10;
/// How long the end of a run waits for the outbox to empty: past the gateway's lease
/// (30 s), after which an event a killed replica held is delivered again.
const OUTBOX_DRAIN_WITHIN: Duration = Duration::from_secs(40);
/// The campaign's budget: spent early in a run, so most of it runs past the budget.
const CAMPAIGN_BUDGET: &str = "40.00";

pub struct ChaosConfig {
    pub gateway_binary: std::path::PathBuf,
    pub database_url: String,
    pub admin_token: String,
    pub replicas: usize,
    pub duration_seconds: f64,
    pub rate: f64,
    pub seed: u64,
    pub replica_kills: usize,
    pub connection_kills: usize,
    /// Herds: pool_size × HERD_PER_CONNECTION sales sent to one replica at once.
    pub herds: usize,
    /// Each replica's database connections (`QRGATE_POOL_SIZE_MAX`) and how long a
    /// request waits for one (`QRGATE_POOL_WAIT_TIMEOUT_MS`): a small pool and a short
    /// wait make a herd shed with 503.
    pub pool_size: usize,
    pub pool_wait_timeout_ms: u64,
    /// Faults of the database, each `(name, shell command)` run once mid-run: a restart
    /// (`pg_ctl restart -m fast …`), a failover (`pg_autoctl perform failover …`), a
    /// SIGKILL of the primary's postmaster.
    pub db_faults: Vec<(String, String)>,
}

/// A gateway process the simulator owns.
struct Replica {
    port: u16,
    child: Option<Child>,
}

struct Fleet {
    config_binary: std::path::PathBuf,
    database_url: String,
    admin_token: String,
    /// The replicas' QRGATE_SECRETS_KEY: this run's own.
    secrets_key: String,
    pool_size: usize,
    pool_wait_timeout_ms: u64,
    replicas: Vec<Mutex<Replica>>,
}

impl Fleet {
    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.replicas[i].lock().unwrap().port)
    }

    async fn start(&self, i: usize, http: &reqwest::Client) -> anyhow::Result<()> {
        let port = self.replicas[i].lock().unwrap().port;
        let child = Command::new(&self.config_binary)
            .arg("serve")
            .env("DATABASE_URL", &self.database_url)
            .env("QRGATE_ADMIN_TOKEN", &self.admin_token)
            .env("QRGATE_SECRETS_KEY", &self.secrets_key)
            .env("QRGATE_LISTEN", format!("127.0.0.1:{port}"))
            // Tampered signatures on purpose, and one wallet and key far past the
            // per-subject rates a deployment would allow.
            .env("QRGATE_AUTH_FAILURES_PER_IP_MAX", "1000000")
            .env("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "1000000")
            .env("QRGATE_WALLET_REQUESTS_PER_SECOND_MAX", "1000000")
            .env("QRGATE_POOL_SIZE_MAX", self.pool_size.to_string())
            .env(
                "QRGATE_POOL_WAIT_TIMEOUT_MS",
                self.pool_wait_timeout_ms.to_string(),
            )
            // The shops' webhook endpoint is the simulator's, on 127.0.0.1.
            .env("QRGATE_ALLOW_PRIVATE_WEBHOOKS", "1")
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.config_binary.display()))?;
        self.replicas[i].lock().unwrap().child = Some(child);
        let deadline = Instant::now() + START_WITHIN;
        while Instant::now() < deadline {
            let ready = http.get(format!("{}/readyz", self.url(i))).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("replica {i} was not ready within {START_WITHIN:?}")
    }

    /// SIGKILL: no graceful anything.
    async fn kill(&self, i: usize) {
        let child = self.replicas[i].lock().unwrap().child.take();
        if let Some(mut child) = child {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// What happened, for the checks and the report.
#[derive(Default)]
struct Ledger {
    /// Payment ids acknowledged with 200.
    acknowledged: Vec<String>,
    /// When each acknowledged payment was answered (for recovery times).
    paid_at: Vec<Instant>,
    /// Transfers acknowledged with 200, by `wallet_txn_id`.
    transfers: Vec<String>,
    /// Payouts acknowledged with 201, by reference.
    payouts: Vec<String>,
    /// Double pays: how many of the two were paid (must be exactly 1).
    double_pays: Vec<usize>,
    /// Requests that never got a final answer within RETRY_FOR: when each began, and
    /// how it ended.
    lost: Vec<(Instant, String)>,
    /// The client's key (`wallet_txn_id`, payout reference) of each payment, transfer
    /// and payout whose request got no final answer: it may or may not have happened.
    given_up: BTreeSet<String>,
    /// Answers no scenario expects.
    unexpected: Vec<String>,
    counts: std::collections::BTreeMap<&'static str, u64>,
}

struct Shop {
    key: String,
    /// A customer account the shop may pay out to.
    payee: String,
    /// The shop's printed code (a static QR), paid with the customer's amount.
    static_qr_payload: String,
}

struct Run {
    fleet: Fleet,
    http: reqwest::Client,
    shops: Vec<Shop>,
    /// wallets[replica][wallet]
    wallets: Vec<Vec<WalletClient>>,
    customers: Vec<(usize, String)>,
    broke: Vec<(usize, String)>,
    campaign_id: String,
    hooks: HookSink,
    herds_sent: AtomicU64,
    retry_budget: RetryBudget,
    ledger: Mutex<Ledger>,
}

/// Herd sales are numbered from here, apart from the arrivals' numbers.
const HERD_FIRST_N: u64 = 1 << 40;

pub async fn run(config: ChaosConfig) -> anyhow::Result<Value> {
    if config.replicas < 2 {
        bail!("--replicas must be at least 2");
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let fleet = Fleet {
        config_binary: config.gateway_binary.clone(),
        database_url: config.database_url.clone(),
        admin_token: config.admin_token.clone(),
        secrets_key: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            rand::random::<[u8; 32]>(),
        ),
        pool_size: config.pool_size,
        pool_wait_timeout_ms: config.pool_wait_timeout_ms,
        replicas: (0..config.replicas)
            .map(|_| {
                Ok(Mutex::new(Replica {
                    port: free_port()?,
                    child: None,
                }))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    for i in 0..config.replicas {
        fleet.start(i, &http).await?;
    }
    let run = Arc::new(world(fleet, http, config.replicas).await?);
    let started = Instant::now();
    let faults = schedule(&config);
    let fault_log: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let injecting = {
        let (run, fault_log) = (run.clone(), fault_log.clone());
        let config_db = config.database_url.clone();
        let db_faults = config.db_faults.clone();
        tokio::spawn(async move { inject(&run, faults, &config_db, &db_faults, &fault_log).await })
    };
    let arrivals = (config.rate * config.duration_seconds).round() as u64;
    let mut rng = SplitMix64::new(config.seed);
    let mut flows = Vec::new();
    for n in 0..arrivals {
        let at = started + Duration::from_secs_f64(n as f64 / config.rate);
        tokio::time::sleep_until(at.into()).await;
        let (run, pick) = (run.clone(), rng.next_u64());
        flows.push(tokio::spawn(async move { run.flow(n, pick).await }));
    }
    join_all(flows).await;
    injecting.await??;
    let faults_injected = fault_log.lock().unwrap().clone();
    let report = check(&run, &config, started, &faults_injected).await?;
    for i in 0..config.replicas {
        run.fleet.kill(i).await;
    }
    Ok(report)
}

async fn world(fleet: Fleet, http: reqwest::Client, replicas: usize) -> anyhow::Result<Run> {
    let admin = Admin::new(&fleet.url(0), &fleet.admin_token, http.clone());
    let hooks = HookSink::start().await?;
    let wallet = admin
        .post("/v1/admin/wallets", &json!({"name": "Chaos Wallet"}))
        .await?;
    let wallet_id = text(&wallet, "id")?;
    admin
        .post(
            &format!("/v1/admin/wallets/{wallet_id}/funding-limits"),
            &json!({"currency": "CNY", "limit": "9999999999.99"}),
        )
        .await?;
    // The wallet hears of its customers (refunds, points, referrals, payouts) at the
    // simulator's endpoint too, each event checked against the wallet's own secret.
    let hook = admin
        .request(
            reqwest::Method::PUT,
            &format!("/v1/admin/wallets/{wallet_id}/webhook"),
            Some(&json!({"url": hooks.url("wallet")})),
        )
        .await?;
    hooks.expect_secret(
        "wallet",
        SigningSecret::parse(&text(&hook, "webhook_secret")?)
            .map_err(|e| anyhow::anyhow!("wallet webhook secret: {e}"))?,
    );
    let secret = text(&wallet, "secret")?;
    let wallets: Vec<Vec<WalletClient>> = (0..replicas)
        .map(|r| {
            let secret =
                SigningSecret::parse(&secret).map_err(|e| anyhow::anyhow!("wallet secret: {e}"))?;
            Ok(vec![WalletClient::new(
                &fleet.url(r),
                &wallet_id,
                secret,
                http.clone(),
            )])
        })
        .collect::<anyhow::Result<_>>()?;
    let mut shops = Vec::new();
    for i in 0..3 {
        shops.push(open_shop(&admin, &hooks, &wallets[0][0], i).await?);
    }
    let mut customers = Vec::new();
    for i in 0..40 {
        let account = open_customer(&wallets[0][0], &format!("chaos-{i}")).await?;
        top_up(&wallets[0][0], &account, "100000.00").await?;
        customers.push((0, account));
    }
    let broke = vec![(0, open_customer(&wallets[0][0], "chaos-broke").await?)];
    // Platform-funded, every shop: each discounted sale locks its row until it is spent.
    let campaign = admin
        .post(
            "/v1/admin/campaigns",
            &json!({"kind": "percent_off", "percent_off": "5", "max_discount": "1.50",
                    "currency": "CNY", "budget": CAMPAIGN_BUDGET, "funded_by": "platform"}),
        )
        .await?;
    Ok(Run {
        fleet,
        http,
        shops,
        wallets,
        customers,
        broke,
        campaign_id: text(&campaign, "id")?,
        hooks,
        herds_sent: AtomicU64::new(0),
        retry_budget: RetryBudget::with_per_second(RETRY_SHARE, RETRY_RESERVE, RETRIES_PER_SECOND),
        ledger: Mutex::default(),
    })
}

/// A shop whose webhooks go to the simulator's endpoint, with a key for orders and
/// refunds and one customer account it may pay out to.
async fn open_shop(
    admin: &Admin,
    hooks: &HookSink,
    wallet: &WalletClient,
    i: usize,
) -> anyhow::Result<Shop> {
    let name = format!("shop{i}");
    let merchant = admin
        .post(
            "/v1/admin/merchants",
            &json!({"name": format!("Chaos Shop {i}"), "city": "Shanghai", "country": "CN",
                    "mcc": "5812", "currency": "CNY", "webhook_url": hooks.url(&name)}),
        )
        .await?;
    let id = text(&merchant, "id")?;
    let secret = SigningSecret::parse(&text(&merchant, "webhook_secret")?)
        .map_err(|e| anyhow::anyhow!("webhook secret: {e}"))?;
    hooks.expect_secret(&name, secret);
    let key = admin
        .post(
            &format!("/v1/admin/merchants/{id}/api-keys"),
            &json!({"scopes": ["orders", "refunds"]}),
        )
        .await?;
    let payee = open_customer(wallet, &format!("chaos-payee-{i}")).await?;
    admin
        .post(
            &format!("/v1/admin/merchants/{id}/payout-accounts"),
            &json!({"account_id": payee}),
        )
        .await?;
    let key = text(&key, "key")?;
    let code = admin
        .http()
        .post(format!("{}/v1/static-codes", admin.base_url))
        .bearer_auth(&key)
        .json(&json!({"name": "Counter"}))
        .send()
        .await?
        .error_for_status()?
        .json::<Value>()
        .await?;
    Ok(Shop {
        key,
        payee,
        static_qr_payload: text(&code, "qr_payload")?,
    })
}

/// The faults, as (seconds after the start, what): replica kills spread over the run,
/// connection kills and one database restart in between.
#[derive(Clone, Debug)]
enum Fault {
    KillReplica(usize),
    KillConnections,
    /// More concurrent sales on one replica than it has connections.
    Herd(usize),
    /// The `n`th of `db_faults`.
    Database(usize),
}

fn schedule(config: &ChaosConfig) -> Vec<(f64, Fault)> {
    let mut rng = SplitMix64::new(config.seed ^ 0xC4A0_5EED);
    let span = config.duration_seconds * 0.8;
    let mut at =
        |i: usize, n: usize| span * (i as f64 + 0.3 + (rng.below(400) as f64) / 1000.0) / n as f64;
    let mut faults = Vec::new();
    for i in 0..config.replica_kills {
        faults.push((
            at(i, config.replica_kills),
            Fault::KillReplica(i % config.replicas),
        ));
    }
    for i in 0..config.connection_kills {
        faults.push((at(i, config.connection_kills) + 0.1, Fault::KillConnections));
    }
    for i in 0..config.herds {
        faults.push((at(i, config.herds) + 0.2, Fault::Herd(i % config.replicas)));
    }
    let n = config.db_faults.len();
    for i in 0..n {
        faults.push((
            span * (0.35 + 0.5 * i as f64 / n as f64),
            Fault::Database(i),
        ));
    }
    faults.sort_by(|a, b| a.0.total_cmp(&b.0));
    faults
}

async fn inject(
    run: &Run,
    faults: Vec<(f64, Fault)>,
    database_url: &str,
    db_faults: &[(String, String)],
    log: &Mutex<Vec<(String, Instant)>>,
) -> anyhow::Result<()> {
    let start = Instant::now();
    for (at, fault) in faults {
        tokio::time::sleep_until((start + Duration::from_secs_f64(at)).into()).await;
        if !matches!(fault, Fault::Database(_)) {
            log.lock()
                .unwrap()
                .push((format!("{fault:?}"), Instant::now()));
        }
        match fault {
            Fault::KillReplica(i) => {
                run.fleet.kill(i).await;
                tokio::time::sleep(DOWN_FOR).await;
                run.fleet.start(i, &run.http).await?;
            }
            Fault::KillConnections => {
                let (client, connection) = tokio_postgres_connect(database_url).await?;
                let conn = tokio::spawn(connection);
                client
                    .simple_query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    )
                    .await?;
                drop(client);
                let _ = conn.await;
            }
            Fault::Herd(replica) => run.herd(replica).await,
            Fault::Database(i) => {
                let (name, command) = &db_faults[i];
                let status = Command::new("sh").args(["-c", command]).status().await?;
                if !status.success() {
                    bail!("the database fault {name} failed: {command}");
                }
                // Recovery is timed from when the command returned (the database is back,
                // or failing over).
                log.lock()
                    .unwrap()
                    .push((format!("{name} (done)"), Instant::now()));
            }
        }
    }
    Ok(())
}

async fn tokio_postgres_connect(
    url: &str,
) -> anyhow::Result<(
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
)> {
    Ok(tokio_postgres::connect(url, tokio_postgres::NoTls).await?)
}

/// A final answer: a status and its body. None: no final answer within RETRY_FOR.
type Answer = Option<(StatusCode, Value)>;

impl Run {
    fn count(&self, what: &'static str) {
        *self.ledger.lock().unwrap().counts.entry(what).or_default() += 1;
    }

    fn unexpected(&self, what: String) {
        self.ledger.lock().unwrap().unexpected.push(what);
    }

    /// One arrival: a scenario drawn from `pick`.
    async fn flow(&self, n: u64, pick: u64) {
        let replica = (n as usize) % self.wallets.len();
        match pick % 100 {
            0..=46 => self.sale(n, replica).await,
            47..=51 => self.static_code_sale(n, replica).await,
            52..=56 => self.points_sale(n, replica).await,
            57..=64 => self.double_pay(n).await,
            65..=71 => self.refund_race(n).await,
            72..=78 => self.transfer(n, replica).await,
            79..=82 => self.payout(n, replica).await,
            83..=88 => self.replay(n, replica).await,
            89..=93 => self.tampered(replica).await,
            _ => self.broke(n, replica).await,
        }
    }

    /// pool_size × HERD_PER_CONNECTION sales at once on one replica: more than its pool
    /// holds, so some wait and some are shed (503, retried elsewhere); none is lost.
    async fn herd(&self, replica: usize) {
        let first = HERD_FIRST_N + 10_000 * self.herds_sent.fetch_add(1, Ordering::Relaxed);
        let herd = (0..(self.fleet.pool_size * HERD_PER_CONNECTION) as u64)
            .map(|k| self.sale(first + k, replica));
        join_all(herd).await;
    }

    /// Tries `send(replica)` on each replica in turn from `first` until a final answer
    /// (anything but no answer, 5xx, 429 or 408), for at most RETRY_FOR, as a careful client
    /// does: the next try after the answer's `Retry-After` when it gives one, otherwise
    /// after a doubling backoff (50 ms to 2 s), each with jitter so that retries spread,
    /// and each within the clients' retry budget (a fifth of first tries), so that an
    /// overloaded gateway is not kept overloaded by its clients' retries.
    async fn retried<F, Fut>(&self, first: usize, send: F) -> Answer
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let began = Instant::now();
        let deadline = began + RETRY_FOR;
        let mut attempt = 0u32;
        let mut last = String::new();
        self.retry_budget.first_try();
        while Instant::now() < deadline {
            if attempt > 0 && !self.within_retry_budget(deadline).await {
                break;
            }
            let replica = (first + attempt as usize) % self.wallets.len();
            let mut told_to_wait = None;
            let sent = send(replica).await;
            last = match &sent {
                Ok(r) => format!("{} {}", r.status(), r.url().path()),
                Err(e) => format!("{e}"),
            };
            if let Ok(response) = sent {
                let status = response.status();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    self.count("answered_503");
                }
                // 408: the request never reached a handler (its head came too late), so
                // it is safe to send again, as 429 and 5xx are.
                let retryable = status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT;
                if !retryable {
                    let body = response.json().await.unwrap_or(Value::Null);
                    return Some((status, body));
                }
                told_to_wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map(Duration::from_secs);
            }
            attempt += 1;
            let backoff = Duration::from_millis(50 << attempt.min(6)).min(Duration::from_secs(2));
            let wait = told_to_wait.unwrap_or(backoff);
            // Jitter: between half and all of the wait.
            let jittered = wait.mul_f64(0.5 + 0.5 * rand::random::<f64>());
            tokio::time::sleep(jittered.min(deadline.saturating_duration_since(Instant::now())))
                .await;
        }
        self.ledger
            .lock()
            .unwrap()
            .lost
            .push((began, format!("{attempt} tries, the last: {last}")));
        None
    }

    /// Waits until the retry budget allows a retry (true) or the deadline passes.
    async fn within_retry_budget(&self, deadline: Instant) -> bool {
        let mut deferred = false;
        while !self.retry_budget.try_retry() {
            if !deferred {
                self.count("retries_deferred_by_budget");
                deferred = true;
            }
            if Instant::now() + RETRY_BUDGET_WAIT >= deadline {
                return false;
            }
            tokio::time::sleep(RETRY_BUDGET_WAIT).await;
        }
        true
    }

    async fn create_order(&self, n: u64, replica: usize, amount: &str) -> Option<Value> {
        self.create_order_with(n, replica, amount, json!({})).await
    }

    /// An order with more fields (a tip policy).
    async fn create_order_with(
        &self,
        n: u64,
        replica: usize,
        amount: &str,
        more: Value,
    ) -> Option<Value> {
        let shop = &self.shops[n as usize % self.shops.len()];
        let mut body =
            json!({"amount": amount, "currency": "CNY", "merchant_reference": format!("C{n}")});
        for (k, v) in more.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let key = format!("chaos-order-{n}");
        let answer = self
            .retried(replica, |r| {
                self.http
                    .post(format!("{}/v1/orders", self.fleet.url(r)))
                    .bearer_auth(&shop.key)
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
            })
            .await?;
        match answer {
            (StatusCode::CREATED, order) => Some(order),
            (status, body) => {
                self.unexpected(format!("order {n}: {status} {body}"));
                None
            }
        }
    }

    fn pay_body(&self, order: &Value, n: u64, customer: &str) -> Value {
        json!({
            "wallet_txn_id": format!("chaos-txn-{n}-{}", qrgate_domain::ids::random_base32(6)),
            "qr_payload": order["qr_payload"], "customer_account_id": customer,
            "amount": order["amount"], "currency": "CNY",
        })
    }

    async fn pay(&self, replica: usize, body: &Value) -> Answer {
        let answer = self
            .retried(replica, |r| self.wallets[r][0].post("payments", body))
            .await;
        if answer.is_none() {
            self.gave_up(body["wallet_txn_id"].as_str().unwrap_or_default());
        }
        answer
    }

    /// A movement whose request got no final answer: the end of the run accepts it in
    /// the ledger or not.
    fn gave_up(&self, key: &str) {
        self.ledger.lock().unwrap().given_up.insert(key.to_owned());
    }

    fn paid(&self, answer: &Value) {
        let mut ledger = self.ledger.lock().unwrap();
        ledger
            .acknowledged
            .push(answer["payment_id"].as_str().unwrap_or_default().to_owned());
        ledger.paid_at.push(Instant::now());
    }

    /// A sale; one in ten asks for a tip (EMV 55=01) and the customer adds a tenth of
    /// the amount (within the shop's cap), which the answer must carry, whatever the
    /// faults.
    async fn sale(&self, n: u64, replica: usize) {
        let tipped = n.is_multiple_of(10);
        self.count(if tipped { "tipped_sale" } else { "sale" });
        let more = if tipped {
            json!({"tip_policy": "prompt"})
        } else {
            json!({})
        };
        let amount_minor = (1 + n % 50) * 100 + n % 100;
        let amount = format!("{}.{:02}", amount_minor / 100, amount_minor % 100);
        let tip = format!("{}.{:02}", amount_minor / 10 / 100, amount_minor / 10 % 100);
        let Some(order) = self.create_order_with(n, replica, &amount, more).await else {
            return;
        };
        let customer = &self.customers[n as usize % self.customers.len()].1;
        let mut body = self.pay_body(&order, n, customer);
        if tipped {
            body["tip"] = json!(tip);
        }
        // The wallet retries on the other replica first.
        match self.pay(replica + 1, &body).await {
            Some((StatusCode::OK, answer)) if !tipped || answer["tip"] == tip.as_str() => {
                self.paid(&answer)
            }
            Some((status, body)) => self.unexpected(format!("sale {n}: {status} {body}")),
            None => {}
        }
    }

    /// A sale paying 20 points off: paid, or refused when the customer has not earned
    /// that many yet (points are earned by the sales before).
    async fn points_sale(&self, n: u64, replica: usize) {
        self.count("points_sale");
        let Some(order) = self.create_order(n, replica, "5.00").await else {
            return;
        };
        let customer = &self.customers[n as usize % self.customers.len()].1;
        let mut body = self.pay_body(&order, n, customer);
        body["use_points"] = json!(20);
        match self.pay(replica + 1, &body).await {
            Some((StatusCode::OK, answer)) => self.paid(&answer),
            Some((StatusCode::UNPROCESSABLE_ENTITY, b))
                if b["error"]["code"] == "insufficient_funds" => {}
            Some((status, body)) => self.unexpected(format!("points sale {n}: {status} {body}")),
            None => {}
        }
    }

    /// A customer pays a shop's printed code the amount they entered, retried (the same
    /// `wallet_txn_id`) on the other replica first: one order, one payment, whatever
    /// the faults.
    async fn static_code_sale(&self, n: u64, replica: usize) {
        self.count("static_code_sale");
        let shop = &self.shops[n as usize % self.shops.len()];
        let customer = &self.customers[n as usize % self.customers.len()].1;
        let body = json!({
            "wallet_txn_id": format!("chaos-static-{n}-{}", qrgate_domain::ids::random_base32(6)),
            "qr_payload": shop.static_qr_payload, "customer_account_id": customer,
            "amount": format!("{}.{:02}", 1 + n % 30, n % 100), "currency": "CNY",
        });
        match self.pay(replica + 1, &body).await {
            Some((StatusCode::OK, answer)) => self.paid(&answer),
            Some((status, body)) => {
                self.unexpected(format!("static code sale {n}: {status} {body}"))
            }
            None => {}
        }
    }

    /// One customer pays another through the wallet; retried with the same
    /// `wallet_txn_id`.
    async fn transfer(&self, n: u64, replica: usize) {
        self.count("transfer");
        let from = &self.customers[n as usize % self.customers.len()].1;
        let to = &self.customers[(n as usize + 1) % self.customers.len()].1;
        let txn = format!("chaos-transfer-{n}");
        let body = json!({"wallet_txn_id": txn, "from_account_id": from, "to_account_id": to,
                          "amount": format!("{}.25", 1 + n % 9), "currency": "CNY"});
        match self
            .retried(replica, |r| self.wallets[r][0].post("transfers", &body))
            .await
        {
            Some((StatusCode::OK, _)) => self.ledger.lock().unwrap().transfers.push(txn),
            Some((status, body)) => self.unexpected(format!("transfer {n}: {status} {body}")),
            None => self.gave_up(&txn),
        }
    }

    /// A shop pays out to its allowed account; retried with the same reference. A shop
    /// that has not taken enough yet is refused and moves nothing.
    async fn payout(&self, n: u64, replica: usize) {
        self.count("payout");
        let shop = &self.shops[n as usize % self.shops.len()];
        let reference = format!("chaos-payout-{n}");
        let body = json!({"to_account_id": shop.payee, "amount": "1.00", "currency": "CNY",
                          "payout_reference": reference});
        let answer = self
            .retried(replica, |r| {
                self.http
                    .post(format!("{}/v1/payouts", self.fleet.url(r)))
                    .bearer_auth(&shop.key)
                    .json(&body)
                    .send()
            })
            .await;
        match answer {
            Some((StatusCode::CREATED, _)) => self.ledger.lock().unwrap().payouts.push(reference),
            Some((StatusCode::UNPROCESSABLE_ENTITY, b))
                if b["error"]["code"] == "merchant_insufficient_funds" => {}
            Some((status, body)) => self.unexpected(format!("payout {n}: {status} {body}")),
            None => self.gave_up(&reference),
        }
    }

    /// A payment signed once and sent, the very same message, until it is answered; then
    /// replayed on the other replica: the same answer, and no second payment.
    async fn replay(&self, n: u64, replica: usize) {
        self.count("replay");
        let Some(order) = self.create_order(n, replica, "7.77").await else {
            return;
        };
        let customer = &self.customers[n as usize % self.customers.len()].1;
        let bytes = serde_json::to_vec(&self.pay_body(&order, n, customer)).expect("JSON");
        let signature = self.wallets[0][0].sign(&bytes);
        let send = |r: usize| {
            let (wallet, bytes, signature) = (&self.wallets[r][0], bytes.clone(), &signature);
            async move {
                let path = wallet.path("payments");
                wallet
                    .send(reqwest::Method::POST, &path, Some(bytes), signature)
                    .await
            }
        };
        let Some(first) = self.retried(replica, send).await else {
            return;
        };
        let Some(again) = self.retried(replica + 1, send).await else {
            return;
        };
        if first.0 == StatusCode::OK {
            self.paid(&first.1);
        }
        if (first.0, &first.1["payment_id"]) != (again.0, &again.1["payment_id"])
            || first.0 != StatusCode::OK
        {
            self.unexpected(format!(
                "replay {n}: first {} {}, replayed {} {}",
                first.0, first.1, again.0, again.1
            ));
        }
    }

    /// Two wallets' payments of one order at once, on two replicas: exactly one is paid.
    async fn double_pay(&self, n: u64) {
        self.count("double_pay");
        let Some(order) = self.create_order(n, 0, "9.99").await else {
            return;
        };
        let bodies: Vec<Value> = (0..2)
            .map(|k| {
                self.pay_body(
                    &order,
                    n * 10 + k,
                    &self.customers[(n as usize + k as usize) % self.customers.len()].1,
                )
            })
            .collect();
        let answers = join_all(bodies.iter().enumerate().map(|(k, b)| self.pay(k, b))).await;
        if answers.iter().any(Option::is_none) {
            // Either may have paid: the ledger's own checks (one payment an order, every
            // unacknowledged payment one a client gave up on) judge it.
            self.count("double_pay_undecided");
            return;
        }
        let mut paid = 0;
        for answer in answers.into_iter().flatten() {
            match answer {
                (StatusCode::OK, body) => {
                    paid += 1;
                    self.paid(&body);
                }
                (StatusCode::CONFLICT, body) if body["error"]["code"] == "already_paid" => {}
                (status, body) => self.unexpected(format!("double pay {n}: {status} {body}")),
            }
        }
        self.ledger.lock().unwrap().double_pays.push(paid);
    }

    /// A paid order, then two refunds of 60% each at once on two replicas: one passes.
    async fn refund_race(&self, n: u64) {
        self.count("refund_race");
        let Some(order) = self.create_order(n, 1, "20.00").await else {
            return;
        };
        let customer = &self.customers[n as usize % self.customers.len()].1;
        match self.pay(0, &self.pay_body(&order, n, customer)).await {
            Some((StatusCode::OK, answer)) => self.paid(&answer),
            _ => return,
        }
        let shop = &self.shops[n as usize % self.shops.len()];
        let order_id = order["id"].as_str().unwrap_or_default();
        let refunds = join_all((0..2).map(|k| {
            let body =
                json!({"amount": "12.00", "refund_reference": format!("chaos-refund-{n}-{k}")});
            self.retried(k, move |r| {
                self.http
                    .post(format!(
                        "{}/v1/orders/{order_id}/refunds",
                        self.fleet.url(r)
                    ))
                    .bearer_auth(&shop.key)
                    .json(&body)
                    .send()
            })
        }))
        .await;
        let succeeded = refunds
            .iter()
            .flatten()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        for (status, body) in refunds.into_iter().flatten() {
            let exceeded = status == StatusCode::UNPROCESSABLE_ENTITY
                && body["error"]["code"] == "refund_exceeds_payment";
            if status != StatusCode::CREATED && !exceeded {
                self.unexpected(format!("refund race {n}: {status} {body}"));
            }
        }
        if succeeded > 1 {
            self.unexpected(format!(
                "refund race {n}: {succeeded} refunds of 60% each passed"
            ));
        }
    }

    /// A payment signed with the wrong secret: 401, and nothing moves.
    async fn tampered(&self, replica: usize) {
        self.count("tampered");
        let wallet = &self.wallets[replica][0];
        let forged = WalletClient::new(
            &self.fleet.url(replica),
            &wallet.wallet_id,
            SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .expect("a secret"),
            self.http.clone(),
        );
        let body = json!({"wallet_txn_id": "forged", "qr_payload": "x", "customer_account_id": "acc_x", "amount": "1.00", "currency": "CNY"});
        if let Ok(response) = forged.post("payments", &body).await {
            if response.status() != StatusCode::UNAUTHORIZED && !response.status().is_server_error()
            {
                self.unexpected(format!("tampered: {}", response.status()));
            }
        }
    }

    /// A customer with nothing: 422 insufficient_funds, and nothing moves.
    async fn broke(&self, n: u64, replica: usize) {
        self.count("insufficient_funds");
        let Some(order) = self.create_order(n, replica, "3.00").await else {
            return;
        };
        let body = self.pay_body(&order, n, &self.broke[0].1);
        match self.pay(replica, &body).await {
            Some((StatusCode::UNPROCESSABLE_ENTITY, b))
                if b["error"]["code"] == "insufficient_funds" => {}
            Some((status, body)) => self.unexpected(format!("broke {n}: {status} {body}")),
            None => {}
        }
    }
}

/// The end of a run: what must hold, and how fast the gateway came back from each fault.
async fn check(
    run: &Run,
    config: &ChaosConfig,
    started: Instant,
    faults: &[(String, Instant)],
) -> anyhow::Result<Value> {
    let admin = Admin::new(&run.fleet.url(0), &config.admin_token, run.http.clone());
    let invariants = admin
        .request(reqwest::Method::GET, "/v1/admin/ledger/invariants", None)
        .await?;
    // Every flow has ended: what they recorded is final.
    let ledger = std::mem::take(&mut *run.ledger.lock().unwrap());
    // In batches: the operator's call takes a bounded body and at most 10,000 ids.
    let (mut checked, mut settled_once) = (0u64, 0u64);
    for batch in ledger.acknowledged.chunks(RECONCILE_BATCH) {
        let answer = admin
            .post(
                "/v1/admin/reconciliation/payments",
                &json!({"payment_ids": batch}),
            )
            .await?;
        checked += answer["checked"].as_u64().unwrap_or(0);
        settled_once += answer["settled_once"].as_u64().unwrap_or(0);
    }
    let reconciled = json!({"checked": checked, "settled_once": settled_once});
    let (client, connection) = tokio_postgres_connect(&config.database_url).await?;
    tokio::spawn(connection);
    let payments: i64 = client
        .query_one("SELECT count(*) FROM payments", &[])
        .await?
        .get(0);
    let mut violations: Vec<String> = Vec::new();
    if invariants["violations"]
        .as_array()
        .is_none_or(|v| !v.is_empty())
    {
        violations.push(format!("ledger invariants: {invariants}"));
    }
    if settled_once != checked || checked != ledger.acknowledged.len() as u64 {
        violations.push(format!(
            "acknowledged payments not settled exactly once: {reconciled}"
        ));
    }
    let acknowledged: BTreeSet<&str> = ledger.acknowledged.iter().map(String::as_str).collect();
    let unacknowledged: Vec<String> = client
        .query("SELECT id, wallet_txn_id FROM payments", &[])
        .await?
        .iter()
        .filter(|r| !acknowledged.contains(r.get::<_, &str>(0)))
        .map(|r| r.get::<_, String>(1))
        .collect();
    let unexplained = unacknowledged
        .iter()
        .filter(|txn| !ledger.given_up.contains(*txn))
        .count();
    if unexplained > 0 {
        violations.push(format!(
            "{payments} payments in the ledger, {} acknowledged: {unexplained} of the others had no client give up on them",
            ledger.acknowledged.len()
        ));
    }
    if let Some(bad) = ledger.double_pays.iter().find(|&&p| p != 1) {
        violations.push(format!("a double pay paid {bad} times"));
    }
    violations.extend(
        in_ledger_as_told(
            &client,
            "transfers",
            "SELECT wallet_txn_id FROM transfers",
            &ledger.transfers,
            &ledger.given_up,
        )
        .await?,
    );
    violations.extend(
        in_ledger_as_told(
            &client,
            "payouts",
            "SELECT payout_reference FROM payouts WHERE outcome = 'succeeded'",
            &ledger.payouts,
            &ledger.given_up,
        )
        .await?,
    );
    violations.extend(impossible_orders(&client).await?);
    let campaign = check_campaign(&client, &run.campaign_id, &mut violations).await?;
    let outbox = check_outbox(&client, run, &mut violations).await?;
    violations.extend(ledger.unexpected.iter().cloned());
    let outages = outages(&ledger.paid_at, started);
    let (in_outage, unexcused): (Vec<_>, Vec<_>) = ledger.lost.iter().partition(|(began, _)| {
        let ended = *began + RETRY_FOR;
        outages
            .iter()
            .any(|(from, to)| *began < *to && *from < ended)
    });
    if !unexcused.is_empty() {
        violations.push(format!(
            "{} requests got no final answer within {RETRY_FOR:?} while the gateway was settling payments: {}",
            unexcused.len(),
            unexcused
                .iter()
                .take(10)
                .map(|(_, how)| how.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let unanswered = json!({
        "total": ledger.lost.len(),
        "their_time_spanned_an_outage": in_outage.len(),
        "outages": outages
            .iter()
            .map(|(from, to)| json!({
                "from_ms": from.duration_since(started).as_millis() as u64,
                "to_ms": to.duration_since(started).as_millis() as u64,
            }))
            .collect::<Vec<_>>(),
    });
    let recovery: Vec<Value> = faults
        .iter()
        .map(|(what, at)| {
            let next = ledger.paid_at.iter().filter(|t| *t > at).min();
            json!({"fault": what, "at_ms": at.duration_since(started).as_millis() as u64,
                   "first_payment_after_ms": next.map(|t| t.duration_since(*at).as_millis() as u64)})
        })
        .collect();
    let passed = violations.is_empty();
    Ok(json!({
        "seed": config.seed,
        "passed": passed,
        "violations": violations,
        "payments_acknowledged": ledger.acknowledged.len(),
        "payments_in_ledger": payments,
        "payments_in_ledger_whose_client_gave_up": unacknowledged.len(),
        "transfers_acknowledged": ledger.transfers.len(),
        "payouts_acknowledged": ledger.payouts.len(),
        "campaign": campaign,
        "outbox": outbox,
        "scenarios": ledger.counts,
        "faults": recovery,
        "unanswered": unanswered,
        "replicas": config.replicas,
        "duration_seconds": config.duration_seconds,
    }))
}

/// The stretches in which no payment was acknowledged for OUTAGE_GAP or more: the
/// gateway could not settle (the database failing over or restarting). A request whose
/// whole time to get an answer (RETRY_FOR) missed every such stretch must have had a
/// final answer: the clients' retry budget may hold retries back during an outage, but
/// never while the gateway serves.
fn outages(paid_at: &[Instant], started: Instant) -> Vec<(Instant, Instant)> {
    let mut times: Vec<Instant> = paid_at.to_vec();
    times.sort();
    let mut outages = Vec::new();
    let mut previous = started;
    for t in times {
        if t.duration_since(previous) >= OUTAGE_GAP {
            outages.push((previous, t));
        }
        previous = t;
    }
    outages
}

/// The campaign never spent past its budget, and what it spent is exactly the discounts
/// its payments carry.
async fn check_campaign(
    client: &tokio_postgres::Client,
    campaign_id: &str,
    violations: &mut Vec<String>,
) -> anyhow::Result<Value> {
    let row = client
        .query_one(
            "SELECT c.spent_minor, c.budget_minor,
                    (SELECT coalesce(sum(u.discount_minor), 0)::bigint FROM campaign_uses u WHERE u.campaign_id = c.id),
                    (SELECT coalesce(sum(p.discount_minor), 0)::bigint FROM payments p WHERE p.campaign_id = c.id),
                    (SELECT count(*) FROM payments p WHERE p.campaign_id = c.id)
             FROM campaigns c WHERE c.id = $1",
            &[&campaign_id],
        )
        .await?;
    let (spent, budget, uses, discounts, payments): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if spent > budget || spent != uses || spent != discounts {
        violations.push(format!(
            "campaign: spent {spent} of a budget of {budget}; its uses sum to {uses}, its payments' discounts to {discounts} (minor units)"
        ));
    }
    Ok(json!({"budget_minor": budget, "spent_minor": spent, "payments_discounted": payments}))
}

/// Every paid order wrote its `order.paid`; every event was delivered (and the endpoint
/// saw it, correctly signed) or is still queued; none was given up. Waits a bounded
/// time for the queue to empty first.
async fn check_outbox(
    client: &tokio_postgres::Client,
    run: &Run,
    violations: &mut Vec<String>,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + OUTBOX_DRAIN_WITHIN;
    let pending = loop {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM webhook_events WHERE status = 'pending'",
                &[],
            )
            .await?
            .get(0);
        if pending == 0 || Instant::now() > deadline {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let unannounced: i64 = client
        .query_one(
            "SELECT count(*) FROM orders o
             WHERE o.status IN ('paid', 'partially_refunded', 'refunded')
               AND NOT EXISTS (SELECT 1 FROM webhook_events e
                               WHERE e.type = 'order.paid' AND e.object_id = o.id)",
            &[],
        )
        .await?
        .get(0);
    if unannounced > 0 {
        violations.push(format!(
            "{unannounced} paid orders have no order.paid event"
        ));
    }
    // The wallet's side: every payment that earned points, refund and payout told it.
    let wallet_unannounced: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM payments p WHERE p.points_earned > 0 AND NOT EXISTS
                        (SELECT 1 FROM webhook_events e WHERE e.type = 'points.earned' AND e.object_id = p.id))
                  + (SELECT count(*) FROM refunds r WHERE r.outcome = 'succeeded' AND NOT EXISTS
                        (SELECT 1 FROM webhook_events e WHERE e.wallet_id IS NOT NULL
                           AND e.type = 'refund.succeeded' AND e.object_id = r.id))
                  + (SELECT count(*) FROM payouts po WHERE po.outcome = 'succeeded' AND NOT EXISTS
                        (SELECT 1 FROM webhook_events e WHERE e.type = 'payout.received' AND e.object_id = po.id))",
            &[],
        )
        .await?
        .get(0);
    if wallet_unannounced > 0 {
        violations.push(format!(
            "{wallet_unannounced} points earned, refunds or payouts have no event for the wallet"
        ));
    }
    let settled = client
        .query(
            "SELECT id, status FROM webhook_events WHERE status <> 'pending'",
            &[],
        )
        .await?;
    let received = run.hooks.received.lock().unwrap();
    let mut delivered = 0;
    for row in &settled {
        let (id, status): (String, String) = (row.get(0), row.get(1));
        if status != "delivered" {
            violations.push(format!("webhook event {id} ended {status}"));
        } else if !received.accepted.contains(&id) {
            violations.push(format!(
                "webhook event {id} is marked delivered but never arrived"
            ));
        } else {
            delivered += 1;
        }
    }
    violations.extend(received.bad.iter().cloned());
    Ok(json!({"delivered": delivered, "still_queued": pending,
              "refused_once_on_purpose": received.refused_once.len()}))
}

/// What `query` lists (the client keys of one kind of movement in the ledger) holds
/// every one clients were told succeeded, each once, and otherwise only movements a
/// client gave up on (no final answer: they may have happened); else what differs.
async fn in_ledger_as_told(
    client: &tokio_postgres::Client,
    what: &str,
    query: &str,
    acknowledged: &[String],
    given_up: &BTreeSet<String>,
) -> anyhow::Result<Option<String>> {
    let rows = client.query(query, &[]).await?;
    let stored: BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let told: BTreeSet<String> = acknowledged.iter().cloned().collect();
    let absent = told.difference(&stored).count();
    let unexplained = stored
        .difference(&told)
        .filter(|key| !given_up.contains(*key))
        .count();
    Ok((absent > 0 || unexplained > 0 || told.len() != acknowledged.len()).then(|| {
        format!(
            "{} {what} in the ledger, {} acknowledged ({absent} acknowledged but absent, {unexplained} present that no client was told of or gave up on)",
            stored.len(),
            acknowledged.len(),
        )
    }))
}

/// Orders whose status and payment disagree: paid (or refunded) without a payment, or a
/// payment on an order that says it was never paid; refunds on an unpaid order.
async fn impossible_orders(client: &tokio_postgres::Client) -> anyhow::Result<Option<String>> {
    let rows = client
        .query(
            "SELECT o.id, o.status FROM orders o LEFT JOIN payments p ON p.order_id = o.id
             WHERE (o.status IN ('paid', 'partially_refunded', 'refunded')) <> (p.id IS NOT NULL)
                OR (p.id IS NULL AND EXISTS (SELECT 1 FROM refunds r
                                             WHERE r.order_id = o.id AND r.outcome = 'succeeded'))
                -- An order a static code's payment made is paid, or closed by its refusal.
                OR (o.static_code_id IS NOT NULL AND o.status = 'pending')
             LIMIT 10",
            &[],
        )
        .await?;
    Ok((!rows.is_empty()).then(|| {
        let listed: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        format!("orders in an impossible state: {}", listed.join(", "))
    }))
}
