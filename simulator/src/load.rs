//! The load test: open-loop arrivals at a target rate, each a full cashier → wallet →
//! cashier flow with its expected answer checked; then proof that nothing was lost.

use crate::{
    report::{Latencies, Report, ScenarioCounts},
    scenario::{Arrival, Mix, Plan, Scenario},
    setup::{self, Admin, Customer, World},
};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use merchant_sdk::{ErrorKind, NewOrder, OrderStatus, TipPolicy};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::Semaphore;

/// Bounds that keep a run finite whatever it is asked.
pub const RATE_MAX: f64 = 20_000.0;
pub const DURATION_SECONDS_MAX: u64 = 3_600;
pub const MERCHANTS_MAX: usize = 1_000;
pub const CUSTOMERS_MAX: usize = 100_000;
/// Flows in flight at once; an arrival waits for a slot (its latency still counts
/// from its intended start, so a slow gateway cannot hide behind the limit).
pub const IN_FLIGHT_MAX: usize = 2_048;
/// After the last arrival, how long outstanding flows get (the expire scenario needs
/// the shortest order expiry, 30 s, and then some).
pub const DRAIN_SECONDS_MAX: u64 = 45;
/// Unexpected outcomes quoted in the report (all are counted).
const UNEXPECTED_SAMPLES_MAX: usize = 20;
/// Payment ids checked per reconciliation request.
const RECONCILE_BATCH: usize = 10_000;

#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadConfig {
    pub gateway: String,
    #[serde(skip)]
    pub admin_token: String,
    pub merchants: usize,
    pub customers: usize,
    /// Arrivals per second.
    pub rate: f64,
    pub duration_seconds: f64,
    pub seed: u64,
    pub hot_merchant: bool,
    pub mix: Mix,
    /// Offered past what the gateway sustains: a `503 unavailable` (with `Retry-After`)
    /// is the gateway shedding work, counted as `shed`, not a defect; the order stays
    /// unpaid.
    pub overload: bool,
    #[serde(skip)]
    pub show_progress: bool,
}

impl LoadConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if !is_loopback_url(&self.gateway) {
            bail!("the simulator only loads a gateway on this machine (127.0.0.0/8, localhost, [::1]); got {}", self.gateway);
        }
        if !(self.rate > 0.0 && self.rate <= RATE_MAX) {
            bail!("--rate must be in (0, {RATE_MAX}]");
        }
        if !(self.duration_seconds > 0.0 && self.duration_seconds <= DURATION_SECONDS_MAX as f64) {
            bail!("--duration-seconds must be in (0, {DURATION_SECONDS_MAX}]");
        }
        if !(1..=MERCHANTS_MAX).contains(&self.merchants) {
            bail!("--merchants must be 1..={MERCHANTS_MAX}");
        }
        if !(2..=CUSTOMERS_MAX).contains(&self.customers) {
            bail!("--customers must be 2..={CUSTOMERS_MAX}");
        }
        Ok(())
    }
}

/// Whether `url` points at this machine.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What one flow observed.
#[derive(Default)]
struct Observed {
    ok: bool,
    /// Answered `503 unavailable` under `--overload`.
    shed: bool,
    unexpected: Option<String>,
    settled_payment_ids: Vec<String>,
    create_order: Option<Duration>,
    pay: Option<Duration>,
    pay_to_cashier_paid: Option<Duration>,
}

impl Observed {
    fn shed() -> Self {
        Observed {
            shed: true,
            ..Default::default()
        }
    }

    fn unexpected(what: impl Into<String>) -> Self {
        Observed {
            unexpected: Some(what.into()),
            ..Default::default()
        }
    }
}

/// Everything the flows share.
struct Ctx {
    world: World,
    overload: bool,
    stats: Mutex<Stats>,
}

#[derive(Default)]
struct Stats {
    latencies: Latencies,
    scenarios: BTreeMap<Scenario, ScenarioCounts>,
    unexpected: u64,
    unexpected_samples: Vec<String>,
    shed: u64,
    acknowledged: Vec<String>,
    /// (seconds since start, pay latency) for the plot.
    pay_timeline: Vec<(f64, f64)>,
}

/// Runs the whole load test and returns its report.
pub async fn run(config: LoadConfig) -> anyhow::Result<Report> {
    config.check()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT_MAX)
        .timeout(Duration::from_secs(60))
        .build()?;
    let admin = Admin::new(&config.gateway, &config.admin_token, http.clone());
    let setup_started = Instant::now();
    let world = setup::build(&admin, &http, config.merchants, config.customers)
        .await
        .context("setting up the world")?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let ctx = Arc::new(Ctx {
        world,
        overload: config.overload,
        stats: Mutex::new(Stats::default()),
    });

    let planned = (config.rate * config.duration_seconds).round().max(1.0) as u64;
    let progress = progress_bar(config.show_progress, planned);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
    let plan = Plan::new(
        config.seed,
        config.mix.clone(),
        config.merchants,
        config.customers,
        config.hot_merchant,
    );
    let started = Instant::now();
    let mut flows = tokio::task::JoinSet::new();
    for (i, arrival) in plan.take(planned as usize).enumerate() {
        let intended = started + Duration::from_secs_f64(i as f64 / config.rate);
        tokio::time::sleep_until(intended.into()).await;
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let ctx = ctx.clone();
        let progress = progress.clone();
        flows.spawn(async move {
            let scenario = arrival.scenario;
            let observed = run_flow(&ctx, &arrival, intended).await;
            record(
                &ctx,
                scenario,
                observed,
                intended.duration_since(started).as_secs_f64(),
            );
            progress.inc(1);
            let stats = ctx.stats.lock().unwrap();
            progress.set_message(format!(
                "{} settled, {} unexpected",
                stats.acknowledged.len(),
                stats.unexpected
            ));
            drop(permit);
        });
        while flows.try_join_next().is_some() {}
    }
    let arrivals_seconds = started.elapsed().as_secs_f64();
    let drained = tokio::time::timeout(Duration::from_secs(DRAIN_SECONDS_MAX), async {
        while flows.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        flows.abort_all();
        let mut stats = ctx.stats.lock().unwrap();
        stats.unexpected += 1;
        stats.unexpected_samples.push(format!(
            "flows still running {DRAIN_SECONDS_MAX} s after the last arrival"
        ));
    }
    progress.finish_and_clear();

    let stats = std::mem::take(&mut *ctx.stats.lock().unwrap());
    let (invariants_ok, invariant_violations) = check_invariants(&admin).await?;
    let reconciliation = reconcile(&admin, &stats.acknowledged).await?;
    Ok(Report::new(
        &config,
        planned,
        setup_seconds,
        arrivals_seconds,
        stats.into_parts(),
        invariants_ok,
        invariant_violations,
        reconciliation,
    ))
}

fn progress_bar(show: bool, planned: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(planned);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} arrivals ({per_sec}) {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn record(ctx: &Ctx, scenario: Scenario, observed: Observed, at_seconds: f64) {
    let mut stats = ctx.stats.lock().unwrap();
    let counts = stats.scenarios.entry(scenario).or_default();
    counts.count += 1;
    if observed.ok {
        counts.ok += 1;
    }
    stats.shed += u64::from(observed.shed);
    if let Some(what) = observed.unexpected {
        stats.unexpected += 1;
        if stats.unexpected_samples.len() < UNEXPECTED_SAMPLES_MAX {
            stats.unexpected_samples.push(format!("{scenario}: {what}"));
        }
    }
    stats.acknowledged.extend(observed.settled_payment_ids);
    let l = &mut stats.latencies;
    if let Some(d) = observed.create_order {
        l.create_order.record(d);
    }
    if let Some(d) = observed.pay {
        l.pay.record(d);
        stats.pay_timeline.push((at_seconds, d.as_secs_f64() * 1e3));
    }
    if let Some(d) = observed.pay_to_cashier_paid {
        stats.latencies.pay_to_cashier_paid.record(d);
    }
}

impl Stats {
    fn into_parts(self) -> crate::report::Parts {
        crate::report::Parts {
            latencies: self.latencies,
            scenarios: self.scenarios,
            unexpected: self.unexpected,
            unexpected_samples: self.unexpected_samples,
            shed: self.shed,
            settled: self.acknowledged.len() as u64,
            pay_timeline: self.pay_timeline,
        }
    }
}

/// One visit: the cashier creates an order, the wallet does what the scenario says,
/// and every answer is compared with the one the contract promises.
async fn run_flow(ctx: &Ctx, a: &Arrival, intended: Instant) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    if a.scenario == Scenario::StaticCode {
        return static_code_payment(ctx, a).await;
    }
    let mut order = NewOrder::new(
        Decimal::new(a.amount_minor, 2),
        "CNY".parse().expect("CNY"),
        reference(),
    );
    if a.scenario == Scenario::Expire {
        order.expires_in_seconds = Some(30);
    }
    if a.scenario == Scenario::Tip {
        order.tip_policy = Some(TipPolicy::Prompt);
    }
    let order = match merchant.cashier.create_order(&order).await {
        Ok(o) => o,
        Err(e) if ctx.overload && e.kind() == Some(&ErrorKind::Unavailable) => {
            return Observed::shed()
        }
        Err(e) => return Observed::unexpected(format!("create order: {e}")),
    };
    let create_order = intended.elapsed();
    let mut observed = match a.scenario {
        Scenario::Pay => pay_and_watch(ctx, a, &order, false).await,
        Scenario::Replay => pay_and_watch(ctx, a, &order, true).await,
        Scenario::Insufficient => {
            let broke = &ctx.world.broke[ctx.world.customers[a.customer].wallet];
            refused(
                ctx,
                a,
                &order,
                broke,
                None,
                (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_funds"),
            )
            .await
        }
        Scenario::Tamper => {
            let customer = &ctx.world.customers[a.customer];
            refused(
                ctx,
                a,
                &order,
                customer,
                Some(a.amount_minor),
                (StatusCode::UNAUTHORIZED, "invalid_signature"),
            )
            .await
        }
        Scenario::Expire => expire(&ctx.world.merchants[a.merchant], &order).await,
        Scenario::DoublePay => double_pay(ctx, a, &order).await,
        Scenario::StaticCode => unreachable!("a static code's payment makes its own order"),
        Scenario::Refund => pay_and_refund(ctx, a, &order).await,
        Scenario::Tip => pay_with_tip(ctx, a, &order).await,
        Scenario::Voucher => pay_with_voucher(ctx, a, &order).await,
    };
    observed.create_order = Some(create_order);
    observed
}

/// The customer scans the shop's printed code and pays the amount they entered; the
/// payment's answer names the order it made, which the shop then reads as paid for that
/// amount, through that code.
async fn static_code_payment(ctx: &Ctx, a: &Arrival) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    let customer = &ctx.world.customers[a.customer];
    let code = &merchant.static_code;
    let amount = Decimal::new(a.amount_minor, 2);
    let body = json!({
        "wallet_txn_id": qrgate_domain::ids::mint("stx"),
        "qr_payload": code.qr_payload,
        "customer_account_id": customer.account_id,
        "amount": amount.to_string(),
        "currency": code.currency,
    });
    let (status, answer, pay) = match timed_payment(ctx, customer, &body).await {
        Ok(sent) => sent,
        Err(observed) => return observed,
    };
    if status != StatusCode::OK || answer["status"] != "succeeded" {
        return Observed::unexpected(format!(
            "static code: expected 200 succeeded, got {status}: {answer}"
        ));
    }
    let (Some(payment_id), Some(order_id)) =
        (answer["payment_id"].as_str(), answer["order_id"].as_str())
    else {
        return Observed::unexpected(format!("static code: an answer without ids: {answer}"));
    };
    match merchant.cashier.get_order(order_id).await {
        Ok(o)
            if o.status == OrderStatus::Paid
                && o.amount == amount
                && o.static_code_id.as_deref() == Some(code.id.as_str()) =>
        {
            Observed {
                ok: true,
                settled_payment_ids: vec![payment_id.to_owned()],
                pay: Some(pay),
                ..Default::default()
            }
        }
        Ok(o) => Observed::unexpected(format!(
            "static code: order {order_id} reads {} {} from {:?}",
            o.status, o.amount, o.static_code_id
        )),
        Err(e) => Observed::unexpected(format!("static code: read order: {e}")),
    }
}

/// The wallet sees the QR ask for a tip and adds about a tenth of the amount (under
/// the shop's cap); the answer and the shop's order must carry that tip, and the charge
/// the amount plus it.
async fn pay_with_tip(ctx: &Ctx, a: &Arrival, order: &merchant_sdk::Order) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    let customer = &ctx.world.customers[a.customer];
    match merchant_sdk::OrderQr::parse(&order.qr_payload) {
        Ok(qr) if qr.tip == TipPolicy::Prompt => {}
        other => {
            return Observed::unexpected(format!("tip: the QR does not ask for a tip: {other:?}"))
        }
    }
    let tip = Decimal::new(a.amount_minor / 10, 2);
    let mut body = pay_body(order, customer);
    body["tip"] = json!(tip.to_string());
    let (status, answer, pay) = match timed_payment(ctx, customer, &body).await {
        Ok(sent) => sent,
        Err(observed) => return observed,
    };
    let charged = (order.amount + tip).to_string();
    if status != StatusCode::OK || answer["tip"] != tip.to_string() || answer["charged"] != charged
    {
        return Observed::unexpected(format!(
            "tip {tip}: expected 200 charging {charged}, got {status}: {answer}"
        ));
    }
    match merchant.cashier.get_order(&order.id).await {
        Ok(o) if o.status == OrderStatus::Paid && o.tip == Some(tip) => Observed {
            ok: true,
            settled_payment_ids: vec![answer["payment_id"].as_str().unwrap_or_default().to_owned()],
            pay: Some(pay),
            ..Default::default()
        },
        Ok(o) => Observed::unexpected(format!(
            "tip: order {} reads {} with tip {:?}",
            o.id, o.status, o.tip
        )),
        Err(e) => Observed::unexpected(format!("tip: read order: {e}")),
    }
}

/// The customer pays `order` (earning at least a point: every amount is 1.00 or more),
/// redeems a point for the shop's voucher, and pays a second order with it: the answer
/// shows the voucher taken off and the charge the amount less it; the shop's order reads
/// it as its discount.
async fn pay_with_voucher(ctx: &Ctx, a: &Arrival, order: &merchant_sdk::Order) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    let customer = &ctx.world.customers[a.customer];
    let wallet = &ctx.world.wallets[customer.wallet];
    let mut settled = Vec::new();
    let started = Instant::now();
    match send_payment(ctx, customer, &pay_body(order, customer), false).await {
        Ok((StatusCode::OK, answer, _)) => {
            settled.push(answer["payment_id"].as_str().unwrap_or_default().to_owned())
        }
        Ok((StatusCode::SERVICE_UNAVAILABLE, _, _)) if ctx.overload => return Observed::shed(),
        Ok((status, answer, _)) => {
            return Observed::unexpected(format!("voucher: first pay answered {status}: {answer}"))
        }
        Err(e) => return Observed::unexpected(e),
    }
    let redeem = json!({"wallet_txn_id": qrgate_domain::ids::mint("stx"), "customer_account_id": customer.account_id,
                        "reward_id": merchant.voucher_reward_id});
    let redeemed = match wallet.post("rewards/redemptions", &redeem).await {
        Ok(r) if r.status() == StatusCode::CREATED => {
            r.json::<Value>().await.unwrap_or(Value::Null)
        }
        Ok(r) if ctx.overload && r.status() == StatusCode::SERVICE_UNAVAILABLE => {
            return Observed::shed()
        }
        Ok(r) => {
            return Observed::unexpected(format!(
                "voucher: redeem answered {}: {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ))
        }
        Err(e) => return Observed::unexpected(format!("voucher: redeem: {e}")),
    };
    let second = NewOrder::new(
        Decimal::new(a.amount_minor, 2),
        "CNY".parse().expect("CNY"),
        reference(),
    );
    let second = match merchant.cashier.create_order(&second).await {
        Ok(o) => o,
        Err(e) => return Observed::unexpected(format!("voucher: create the second order: {e}")),
    };
    let mut body = pay_body(&second, customer);
    body["voucher_code"] = redeemed["voucher_code"].clone();
    let value: Decimal = crate::setup::VOUCHER_VALUE.parse().expect("a decimal");
    let charged = (second.amount - value).to_string();
    match send_payment(ctx, customer, &body, false).await {
        Ok((StatusCode::OK, answer, _))
            if answer["voucher"] == value.to_string() && answer["charged"] == charged =>
        {
            settled.push(answer["payment_id"].as_str().unwrap_or_default().to_owned())
        }
        Ok((status, answer, _)) => {
            return Observed::unexpected(format!(
                "voucher: expected 200 charging {charged}, got {status}: {answer}"
            ))
        }
        Err(e) => return Observed::unexpected(e),
    }
    let pay = started.elapsed();
    match merchant.cashier.get_order(&second.id).await {
        Ok(o) if o.status == OrderStatus::Paid && o.discount == Some(value) => Observed {
            ok: true,
            settled_payment_ids: settled,
            pay: Some(pay),
            ..Default::default()
        },
        Ok(o) => Observed::unexpected(format!(
            "voucher: order {} reads {} with discount {:?}",
            o.id, o.status, o.discount
        )),
        Err(e) => Observed::unexpected(format!("voucher: read order: {e}")),
    }
}

fn reference() -> String {
    format!("SIM-{}", qrgate_domain::ids::random_base32(12))
}

fn pay_body(order: &merchant_sdk::Order, customer: &Customer) -> Value {
    json!({
        "wallet_txn_id": qrgate_domain::ids::mint("stx"),
        "qr_payload": order.qr_payload,
        "customer_account_id": customer.account_id,
        "amount": order.amount.to_string(),
        "currency": order.currency,
    })
}

/// One payment, timed. `Err` is what the scenario observes at once: the payment could
/// not be sent, or (with `--overload`) the gateway shed it.
async fn timed_payment(
    ctx: &Ctx,
    customer: &Customer,
    body: &Value,
) -> Result<(StatusCode, Value, Duration), Observed> {
    let started = Instant::now();
    let (status, answer, _) = send_payment(ctx, customer, body, false)
        .await
        .map_err(Observed::unexpected)?;
    if ctx.overload && status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(Observed::shed());
    }
    Ok((status, answer, started.elapsed()))
}

/// Sends a signed payment; `twice` sends the very same message again afterwards.
async fn send_payment(
    ctx: &Ctx,
    customer: &Customer,
    body: &Value,
    twice: bool,
) -> Result<(StatusCode, Value, Option<(StatusCode, Value)>), String> {
    let wallet = &ctx.world.wallets[customer.wallet];
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    let sig = wallet.sign(&bytes);
    let path = wallet.path("payments");
    let read = |r: reqwest::Response| async move {
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let first = wallet
        .send(Method::POST, &path, Some(bytes.clone()), &sig)
        .await
        .map_err(|e| format!("pay: {e}"))?;
    let first = read(first).await;
    let second = if twice {
        let again = wallet
            .send(Method::POST, &path, Some(bytes), &sig)
            .await
            .map_err(|e| format!("replay: {e}"))?;
        Some(read(again).await)
    } else {
        None
    };
    Ok((first.0, first.1, second))
}

async fn pay_and_watch(
    ctx: &Ctx,
    a: &Arrival,
    order: &merchant_sdk::Order,
    replay: bool,
) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    let customer = &ctx.world.customers[a.customer];
    let body = pay_body(order, customer);
    let pay_started = Instant::now();
    let watching = merchant
        .cashier
        .wait_for_payment(&order.id, Duration::from_secs(30));
    let paying = async {
        let result = send_payment(ctx, customer, &body, replay).await;
        (result, pay_started.elapsed())
    };
    let mut watching = std::pin::pin!(async {
        let seen = watching.await;
        (seen, pay_started.elapsed())
    });
    let mut paying = std::pin::pin!(paying);
    // The cashier's watch goes on only while the payment may have been paid.
    let mut seen_early = None;
    let (paid, pay_latency) = loop {
        tokio::select! {
            paid = &mut paying => break paid,
            seen = &mut watching, if seen_early.is_none() => seen_early = Some(seen),
        }
    };
    let (status, answer, second) = match paid {
        Ok(p) => p,
        Err(e) => return Observed::unexpected(e),
    };
    if ctx.overload
        && status == StatusCode::SERVICE_UNAVAILABLE
        && answer["error"]["code"] == "unavailable"
    {
        return Observed::shed();
    }
    if status != StatusCode::OK || answer["status"] != "succeeded" {
        return Observed::unexpected(format!("pay answered {status}: {answer}"));
    }
    if let Some((again_status, again)) = second {
        if again_status != StatusCode::OK || again != answer {
            return Observed::unexpected(format!(
                "replay answered {again_status}: {again}, first {answer}"
            ));
        }
    }
    let (seen, seen_after) = match seen_early {
        Some(seen) => seen,
        None => watching.await,
    };
    match seen {
        Ok(o)
            if o.status == OrderStatus::Paid
                && o.payment_id.as_deref() == answer["payment_id"].as_str() =>
        {
            Observed {
                ok: true,
                settled_payment_ids: vec![answer["payment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()],
                pay: Some(pay_latency),
                pay_to_cashier_paid: Some(seen_after),
                ..Default::default()
            }
        }
        Ok(o) => Observed::unexpected(format!(
            "cashier saw {} ({:?}) after pay {answer}",
            o.status, o.payment_id
        )),
        Err(e) => Observed::unexpected(format!("cashier wait: {e}")),
    }
}

/// A payment that must be refused with `expected`; the order stays unpaid and is closed.
async fn refused(
    ctx: &Ctx,
    a: &Arrival,
    order: &merchant_sdk::Order,
    customer: &Customer,
    tamper_amount: Option<i64>,
    expected: (StatusCode, &str),
) -> Observed {
    let wallet = &ctx.world.wallets[customer.wallet];
    let body = pay_body(order, customer);
    let bytes = serde_json::to_vec(&body).expect("JSON serializes");
    let sig = wallet.sign(&bytes);
    let sent = match tamper_amount {
        // Signed for one amount, sent with another: the signature must not verify.
        Some(minor) => {
            let mut tampered = body.clone();
            tampered["amount"] = json!(Decimal::new(minor + 1, 2).to_string());
            serde_json::to_vec(&tampered).expect("JSON serializes")
        }
        None => bytes,
    };
    let started = Instant::now();
    let response = match wallet
        .send(Method::POST, &wallet.path("payments"), Some(sent), &sig)
        .await
    {
        Ok(r) => r,
        Err(e) => return Observed::unexpected(format!("pay: {e}")),
    };
    let pay = started.elapsed();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if status != expected.0 || answer["error"]["code"] != expected.1 {
        return Observed::unexpected(format!(
            "expected {} {}, got {status}: {answer}",
            expected.0, expected.1
        ));
    }
    match ctx.world.merchants[a.merchant]
        .cashier
        .close_order(&order.id)
        .await
    {
        Ok(o) if o.status == OrderStatus::Closed => Observed {
            ok: true,
            pay: Some(pay),
            ..Default::default()
        },
        Ok(o) => Observed::unexpected(format!("closing an unpaid order left it {}", o.status)),
        Err(e) => Observed::unexpected(format!("close: {e}")),
    }
}

async fn expire(merchant: &setup::Merchant, order: &merchant_sdk::Order) -> Observed {
    match merchant
        .cashier
        .wait_for_payment(&order.id, Duration::from_secs(40))
        .await
    {
        Ok(o) if o.status == OrderStatus::Expired => Observed {
            ok: true,
            ..Default::default()
        },
        Ok(o) => Observed::unexpected(format!("an unpaid order was {} after its expiry", o.status)),
        Err(e) => Observed::unexpected(format!("cashier wait: {e}")),
    }
}

async fn double_pay(ctx: &Ctx, a: &Arrival, order: &merchant_sdk::Order) -> Observed {
    let (first, second) = (
        &ctx.world.customers[a.customer],
        &ctx.world.customers[a.other_customer],
    );
    let (first_body, second_body) = (pay_body(order, first), pay_body(order, second));
    let (one, two) = tokio::join!(
        send_payment(ctx, first, &first_body, false),
        send_payment(ctx, second, &second_body, false)
    );
    let answers = match (one, two) {
        (Ok(one), Ok(two)) => [(one.0, one.1), (two.0, two.1)],
        (Err(e), _) | (_, Err(e)) => return Observed::unexpected(e),
    };
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, b)| b)
        .collect();
    let losers = answers
        .iter()
        .filter(|(s, b)| *s == StatusCode::CONFLICT && b["error"]["code"] == "already_paid")
        .count();
    if winners.len() != 1 || losers != 1 {
        return Observed::unexpected(format!(
            "double pay answered {} and {}",
            answers[0].0, answers[1].0
        ));
    }
    Observed {
        ok: true,
        settled_payment_ids: vec![winners[0]["payment_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()],
        ..Default::default()
    }
}

/// The customer pays; the shop refunds a third of it (at least a minor unit): the
/// refund answers that amount, and the order then reads partially refunded by it.
async fn pay_and_refund(ctx: &Ctx, a: &Arrival, order: &merchant_sdk::Order) -> Observed {
    let merchant = &ctx.world.merchants[a.merchant];
    let customer = &ctx.world.customers[a.customer];
    let (status, answer, pay) = match timed_payment(ctx, customer, &pay_body(order, customer)).await
    {
        Ok(sent) => sent,
        Err(observed) => return observed,
    };
    let Some(payment_id) = answer["payment_id"]
        .as_str()
        .filter(|_| status == StatusCode::OK)
    else {
        return Observed::unexpected(format!(
            "refund scenario: paying answered {status}: {answer}"
        ));
    };
    let part = Decimal::new((a.amount_minor / 3).max(1), 2);
    let reference = format!("SIM-R-{}", qrgate_domain::ids::random_base32(10));
    let refunded = match merchant
        .cashier
        .refund(&order.id, part, &reference, None)
        .await
    {
        Ok(r) => r,
        Err(e) => return Observed::unexpected(format!("refund: {e}")),
    };
    match merchant.cashier.get_order(&order.id).await {
        Ok(o)
            if refunded.amount == part
                && o.refunded == part
                && o.status == OrderStatus::PartiallyRefunded =>
        {
            Observed {
                ok: true,
                settled_payment_ids: vec![payment_id.to_owned()],
                pay: Some(pay),
                ..Default::default()
            }
        }
        Ok(o) => Observed::unexpected(format!(
            "refund of {part}: answered {}, the order reads {} refunded, {}",
            refunded.amount, o.refunded, o.status
        )),
        Err(e) => Observed::unexpected(format!("refund: read order: {e}")),
    }
}

async fn check_invariants(admin: &Admin) -> anyhow::Result<(bool, Vec<Value>)> {
    let answer = admin
        .request(Method::GET, "/v1/admin/ledger/invariants", None)
        .await?;
    let violations = answer["violations"].as_array().cloned().unwrap_or_default();
    Ok((answer["ok"] == true, violations))
}

/// Asks the gateway whether every acknowledged payment is settled exactly once.
async fn reconcile(
    admin: &Admin,
    acknowledged: &[String],
) -> anyhow::Result<crate::report::Reconciliation> {
    let mut result = crate::report::Reconciliation {
        acknowledged: acknowledged.len() as u64,
        ..Default::default()
    };
    let mut unique = acknowledged.to_vec();
    unique.sort();
    unique.dedup();
    result.duplicates_acknowledged = (acknowledged.len() - unique.len()) as u64;
    for batch in unique.chunks(RECONCILE_BATCH) {
        let answer = admin
            .post(
                "/v1/admin/reconciliation/payments",
                &json!({"payment_ids": batch}),
            )
            .await?;
        result.settled_once += answer["settled_once"].as_u64().unwrap_or(0);
        for problem in answer["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .take(UNEXPECTED_SAMPLES_MAX)
        {
            result.problems.push(problem.clone());
        }
    }
    Ok(result)
}
