//! The load test's report: counts, latency percentiles, the ledger's verdict; as JSON
//! and, on request, a latency plot (SVG).

use crate::{load::LoadConfig, scenario::Scenario};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;
use std::{collections::BTreeMap, time::Duration};

/// The slowest latency a histogram keeps exactly (longer ones are clamped to it).
const LATENCY_MICROS_MAX: u64 = 120_000_000;

/// One latency distribution, in microseconds, 3 significant digits.
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(
            Histogram::new_with_bounds(1, LATENCY_MICROS_MAX, 3).expect("valid histogram bounds"),
        )
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let micros = (d.as_micros() as u64).clamp(1, LATENCY_MICROS_MAX);
        self.0.record(micros).expect("clamped into bounds");
    }

    pub fn summary(&self) -> Percentiles {
        let ms = |q: f64| self.0.value_at_quantile(q) as f64 / 1e3;
        Percentiles {
            count: self.0.len(),
            p50: ms(0.50),
            p90: ms(0.90),
            p99: ms(0.99),
            p99_9: ms(0.999),
            max: self.0.max() as f64 / 1e3,
        }
    }
}

/// Percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Default)]
pub struct Latencies {
    /// Intended arrival → order created (queueing included: open loop).
    pub create_order: Latency,
    /// Payment sent → its answer.
    pub pay: Latency,
    /// Payment sent → the cashier's long-poll returns `paid`.
    pub pay_to_cashier_paid: Latency,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioCounts {
    pub count: u64,
    /// Flows whose every answer was the expected one.
    pub ok: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Reconciliation {
    /// Payments the simulator saw acknowledged (200).
    pub acknowledged: u64,
    /// The same payment id acknowledged for two different flows (must be 0).
    pub duplicates_acknowledged: u64,
    /// Of the distinct acknowledged payments, those the ledger holds exactly once.
    pub settled_once: u64,
    pub problems: Vec<Value>,
}

/// What the run's flows gathered.
pub struct Parts {
    pub latencies: Latencies,
    pub scenarios: BTreeMap<Scenario, ScenarioCounts>,
    pub unexpected: u64,
    pub unexpected_samples: Vec<String>,
    pub shed: u64,
    pub settled: u64,
    pub pay_timeline: Vec<(f64, f64)>,
}

#[derive(Serialize)]
pub struct Report {
    pub seed: u64,
    pub parameters: LoadConfig,
    pub arrivals: u64,
    pub setup_seconds: f64,
    pub arrivals_seconds: f64,
    pub settled: u64,
    pub settled_per_second: f64,
    pub unexpected_outcomes: u64,
    pub unexpected_samples: Vec<String>,
    /// Flows the gateway shed with `503 unavailable` (counted only under `--overload`).
    pub shed: u64,
    pub scenarios: BTreeMap<Scenario, ScenarioCounts>,
    pub latency_ms: BTreeMap<&'static str, Percentiles>,
    pub invariants_ok: bool,
    pub invariant_violations: Vec<Value>,
    pub reconciliation: Reconciliation,
    /// Whether the run proved the ledger whole and saw only expected answers.
    pub passed: bool,
    #[serde(skip)]
    pay_timeline: Vec<(f64, f64)>,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &LoadConfig,
        arrivals: u64,
        setup_seconds: f64,
        arrivals_seconds: f64,
        parts: Parts,
        invariants_ok: bool,
        invariant_violations: Vec<Value>,
        reconciliation: Reconciliation,
    ) -> Self {
        let latency_ms = BTreeMap::from([
            ("create_order", parts.latencies.create_order.summary()),
            ("pay", parts.latencies.pay.summary()),
            (
                "pay_to_cashier_paid",
                parts.latencies.pay_to_cashier_paid.summary(),
            ),
        ]);
        let reconciled = reconciliation.duplicates_acknowledged == 0
            && reconciliation.settled_once == reconciliation.acknowledged
            && reconciliation.problems.is_empty();
        Report {
            seed: config.seed,
            parameters: config.clone(),
            arrivals,
            setup_seconds,
            arrivals_seconds,
            settled: parts.settled,
            settled_per_second: parts.settled as f64 / arrivals_seconds.max(1e-9),
            unexpected_outcomes: parts.unexpected,
            unexpected_samples: parts.unexpected_samples,
            shed: parts.shed,
            scenarios: parts.scenarios,
            latency_ms,
            passed: invariants_ok && reconciled && parts.unexpected == 0,
            invariants_ok,
            invariant_violations,
            reconciliation,
            pay_timeline: parts.pay_timeline,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// Pay latency over the run: every payment as a dot, and the p99 of each second.
    pub fn plot_svg(&self) -> String {
        let (width, height, pad) = (900.0, 400.0, 50.0);
        let t_max = self.pay_timeline.iter().map(|p| p.0).fold(1.0, f64::max);
        let ms_max = self.pay_timeline.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;
        let x = |t: f64| pad + t / t_max * (width - 2.0 * pad);
        let y = |ms: f64| height - pad - ms / ms_max * (height - 2.0 * pad);
        let mut dots = String::new();
        for (t, ms) in self.pay_timeline.iter().take(50_000) {
            dots.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"1.2\"/>",
                x(*t),
                y(*ms)
            ));
        }
        let mut per_second: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for (t, ms) in &self.pay_timeline {
            per_second.entry(*t as u64).or_default().push(*ms);
        }
        let p99_line: Vec<String> = per_second
            .iter_mut()
            .map(|(second, values)| {
                values.sort_by(|a, b| a.total_cmp(b));
                let p99 = values[((values.len() as f64 * 0.99).ceil() as usize).saturating_sub(1)];
                format!("{:.1},{:.1}", x(*second as f64 + 0.5), y(p99))
            })
            .collect();
        format!(
            concat!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">",
                "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                "<text x=\"{pad}\" y=\"20\">pay latency (ms) over the run — seed {seed}, {rate}/s, {settled} settled; line: p99 per second</text>",
                "<line x1=\"{pad}\" y1=\"{yb}\" x2=\"{xr}\" y2=\"{yb}\" stroke=\"black\"/>",
                "<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{yb}\" stroke=\"black\"/>",
                "<text x=\"5\" y=\"{pad}\">{ms_max:.1}</text><text x=\"5\" y=\"{yb}\">0</text>",
                "<text x=\"{xr}\" y=\"{yl}\" text-anchor=\"end\">{t_max:.1} s</text>",
                "<g fill=\"#4a7ebb\" fill-opacity=\"0.5\">{dots}</g>",
                "<polyline fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\" points=\"{line}\"/></svg>\n"
            ),
            w = width,
            h = height,
            pad = pad,
            seed = self.seed,
            rate = self.parameters.rate,
            settled = self.settled,
            yb = height - pad,
            xr = width - pad,
            yl = height - pad + 20.0,
            ms_max = ms_max,
            t_max = t_max,
            dots = dots,
            line = p99_line.join(" "),
        )
    }
}
