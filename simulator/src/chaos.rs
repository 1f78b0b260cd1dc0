//! `simulator chaos`: the gateway under faults. Two (or more) replicas of a given
//! gateway binary on one database, started and restarted by the simulator; sales,
//! double pays, refund races, tampered signatures and broke customers spread across
//! them, retried as wallets and cashiers retry (the same `wallet_txn_id` or
//! `Idempotency-Key`, a new `webhook-id`), preferably on another replica; and, on a
//! schedule drawn from the seed, replicas killed with SIGKILL, every database connection
//! terminated, and (given a command for it) the database restarted. At the end: the six
//! ledger invariants, every acknowledged payment settled exactly once, no payment that
//! was not acknowledged, each double pay paid once, each refund race within the payment,
//! and the time from each fault to the next successful payment. A violation exits
//! non-zero and names the seed that replays the schedule.

use crate::{
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
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::process::{Child, Command};

/// How long one request (with its retries) keeps trying before it counts as lost.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// How long a killed replica stays down before it is started again.
const DOWN_FOR: Duration = Duration::from_millis(500);
/// Payment ids per reconciliation call (the call's body is bounded).
const RECONCILE_BATCH: usize = 2_000;
/// How long a replica may take to answer `/readyz` after a start.
const START_WITHIN: Duration = Duration::from_secs(60);

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
            .env("QRGATE_LISTEN", format!("127.0.0.1:{port}"))
            // Tampered signatures on purpose, and one wallet and key far past the
            // per-subject rates a deployment would allow.
            .env("QRGATE_AUTH_FAILURES_PER_IP_MAX", "1000000")
            .env("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "1000000")
            .env("QRGATE_WALLET_REQUESTS_PER_SECOND_MAX", "1000000")
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
    /// Double pays: how many of the two were paid (must be exactly 1).
    double_pays: Vec<usize>,
    /// Requests that never got a final answer within RETRY_FOR.
    lost: usize,
    /// Answers no scenario expects.
    unexpected: Vec<String>,
    counts: std::collections::BTreeMap<&'static str, u64>,
}

struct Shop {
    key: String,
}

struct Run {
    fleet: Fleet,
    http: reqwest::Client,
    shops: Vec<Shop>,
    /// wallets[replica][wallet]
    wallets: Vec<Vec<WalletClient>>,
    customers: Vec<(usize, String)>,
    broke: Vec<(usize, String)>,
    ledger: Mutex<Ledger>,
}

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
    let mut shops = Vec::new();
    for i in 0..3 {
        let merchant = admin
            .post("/v1/admin/merchants", &json!({"name": format!("Chaos Shop {i}"), "city": "Shanghai",
                                                 "country": "CN", "mcc": "5812", "currency": "CNY"}))
            .await?;
        let id = text(&merchant, "id")?;
        let key = admin
            .post(
                &format!("/v1/admin/merchants/{id}/api-keys"),
                &json!({"scopes": ["orders", "refunds"]}),
            )
            .await?;
        shops.push(Shop {
            key: text(&key, "key")?,
        });
    }
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
    let mut customers = Vec::new();
    for i in 0..40 {
        let account = open_customer(&wallets[0][0], &format!("chaos-{i}")).await?;
        top_up(&wallets[0][0], &account, "100000.00").await?;
        customers.push((0, account));
    }
    let broke = vec![(0, open_customer(&wallets[0][0], "chaos-broke").await?)];
    Ok(Run {
        fleet,
        http,
        shops,
        wallets,
        customers,
        broke,
        ledger: Mutex::default(),
    })
}

/// The faults, as (seconds after the start, what): replica kills spread over the run,
/// connection kills and one database restart in between.
#[derive(Clone, Debug)]
enum Fault {
    KillReplica(usize),
    KillConnections,
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
            0..=69 => self.sale(n, replica).await,
            70..=79 => self.double_pay(n).await,
            80..=87 => self.refund_race(n).await,
            88..=93 => self.tampered(replica).await,
            _ => self.broke(n, replica).await,
        }
    }

    /// Tries `send(replica)` on each replica in turn from `first` until a final answer
    /// (anything but no answer, 5xx or 429), for at most RETRY_FOR.
    async fn retried<F, Fut>(&self, first: usize, send: F) -> Answer
    where
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
    {
        let deadline = Instant::now() + RETRY_FOR;
        let mut attempt = 0;
        while Instant::now() < deadline {
            let replica = (first + attempt) % self.wallets.len();
            if let Ok(response) = send(replica).await {
                let status = response.status();
                if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS {
                    let body = response.json().await.unwrap_or(Value::Null);
                    return Some((status, body));
                }
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis((25 * attempt as u64).min(500))).await;
        }
        self.ledger.lock().unwrap().lost += 1;
        None
    }

    async fn create_order(&self, n: u64, replica: usize, amount: &str) -> Option<Value> {
        let shop = &self.shops[n as usize % self.shops.len()];
        let body =
            json!({"amount": amount, "currency": "CNY", "merchant_reference": format!("C{n}")});
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
        self.retried(replica, |r| self.wallets[r][0].post("payments", body))
            .await
    }

    fn paid(&self, answer: &Value) {
        let mut ledger = self.ledger.lock().unwrap();
        ledger
            .acknowledged
            .push(answer["payment_id"].as_str().unwrap_or_default().to_owned());
        ledger.paid_at.push(Instant::now());
    }

    async fn sale(&self, n: u64, replica: usize) {
        self.count("sale");
        let Some(order) = self
            .create_order(n, replica, &format!("{}.{:02}", 1 + n % 50, n % 100))
            .await
        else {
            return;
        };
        let customer = &self.customers[n as usize % self.customers.len()].1;
        let body = self.pay_body(&order, n, customer);
        // The wallet retries on the other replica first.
        match self.pay(replica + 1, &body).await {
            Some((StatusCode::OK, answer)) => self.paid(&answer),
            Some((status, body)) => self.unexpected(format!("sale {n}: {status} {body}")),
            None => {}
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
    if payments != ledger.acknowledged.len() as i64 {
        violations.push(format!(
            "{payments} payments in the ledger, {} acknowledged",
            ledger.acknowledged.len()
        ));
    }
    if let Some(bad) = ledger.double_pays.iter().find(|&&p| p != 1) {
        violations.push(format!("a double pay paid {bad} times"));
    }
    violations.extend(ledger.unexpected.iter().cloned());
    if ledger.lost > 0 {
        violations.push(format!(
            "{} requests got no final answer within {RETRY_FOR:?}",
            ledger.lost
        ));
    }
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
        "scenarios": ledger.counts,
        "faults": recovery,
        "replicas": config.replicas,
        "duration_seconds": config.duration_seconds,
    }))
}
