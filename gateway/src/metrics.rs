//! Prometheus metrics (`GET /metrics`, behind `QRGATE_METRICS_TOKEN`), kept in process:
//! each replica reports its own. Labels are routes, statuses and outcome codes — finite
//! sets — never a merchant, customer, order or account id.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS_SECONDS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let seconds = d.as_secs_f64();
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS_SECONDS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(BUCKETS_SECONDS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braced} {}", self.sum_seconds);
        let _ = writeln!(out, "{name}_count{braced} {}", self.count);
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (method, route pattern, status) → count and latency.
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// Payment outcome ("succeeded" or an error code) → count.
    payments: Mutex<BTreeMap<String, u64>>,
    /// How long the settlement call (`pay_order`) took.
    settlement: Mutex<Histogram>,
    /// Webhook attempt result ("delivered", "failed", "gone") → count.
    webhook_attempts: Mutex<BTreeMap<&'static str, u64>>,
    orders_expired: AtomicU64,
}

/// What a scrape reads from elsewhere at that moment.
pub struct Gauges {
    pub pool_size: usize,
    pub pool_available: usize,
    pub pool_waiting: usize,
    pub webhook_outbox_depth: i64,
    pub credential_cache_listening: bool,
    pub credential_cache_hits: u64,
    pub requests_in_flight: usize,
    pub requests_shed: u64,
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let mut requests = self.requests.lock().expect("metrics lock");
        requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default()
            .observe(elapsed);
    }

    pub fn payment(&self, outcome: &str, settlement: Duration) {
        *self
            .payments
            .lock()
            .expect("metrics lock")
            .entry(outcome.to_owned())
            .or_default() += 1;
        self.settlement
            .lock()
            .expect("metrics lock")
            .observe(settlement);
    }

    pub fn webhook_attempt(&self, result: &'static str) {
        *self
            .webhook_attempts
            .lock()
            .expect("metrics lock")
            .entry(result)
            .or_default() += 1;
    }

    pub fn orders_expired(&self, n: u64) {
        self.orders_expired.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP qrgate_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE qrgate_http_requests_total counter\n");
        let requests = self.requests.lock().expect("metrics lock").clone();
        for ((method, route, status), h) in &requests {
            let _ = writeln!(out, "qrgate_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}", h.count);
        }
        out.push_str("# HELP qrgate_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE qrgate_http_request_duration_seconds histogram\n");
        for ((method, route, status), h) in &requests {
            h.render(
                &mut out,
                "qrgate_http_request_duration_seconds",
                &format!("method=\"{method}\",route=\"{route}\",status=\"{status}\""),
            );
        }
        out.push_str("# HELP qrgate_payments_total Wallet payments by outcome (succeeded or the error code).\n");
        out.push_str("# TYPE qrgate_payments_total counter\n");
        for (outcome, n) in self.payments.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "qrgate_payments_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP qrgate_settlement_duration_seconds Time of the settlement call (one database round trip).\n");
        out.push_str("# TYPE qrgate_settlement_duration_seconds histogram\n");
        self.settlement.lock().expect("metrics lock").render(
            &mut out,
            "qrgate_settlement_duration_seconds",
            "",
        );
        out.push_str(
            "# HELP qrgate_webhook_delivery_attempts_total Webhook delivery attempts by result.\n",
        );
        out.push_str("# TYPE qrgate_webhook_delivery_attempts_total counter\n");
        for (result, n) in self.webhook_attempts.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "qrgate_webhook_delivery_attempts_total{{result=\"{result}\"}} {n}"
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "qrgate_webhook_outbox_depth",
            "Webhook events waiting for delivery.",
            gauges.webhook_outbox_depth.to_string(),
        );
        gauge(
            &mut out,
            "qrgate_db_pool_size",
            "Database connections open.",
            gauges.pool_size.to_string(),
        );
        gauge(
            &mut out,
            "qrgate_db_pool_available",
            "Database connections idle.",
            gauges.pool_available.to_string(),
        );
        gauge(
            &mut out,
            "qrgate_db_pool_waiting",
            "Requests waiting for a database connection.",
            gauges.pool_waiting.to_string(),
        );
        out.push_str("# HELP qrgate_credential_cache_listening 1 while the credential cache hears changes (entries are used only then).\n# TYPE qrgate_credential_cache_listening gauge\n");
        let _ = writeln!(
            out,
            "qrgate_credential_cache_listening {}",
            u8::from(gauges.credential_cache_listening)
        );
        out.push_str("# HELP qrgate_credential_cache_hits_total Authentications answered from memory.\n# TYPE qrgate_credential_cache_hits_total counter\n");
        let _ = writeln!(
            out,
            "qrgate_credential_cache_hits_total {}",
            gauges.credential_cache_hits
        );
        out.push_str("# HELP qrgate_requests_in_flight Requests this replica is working on (admission counts these).\n# TYPE qrgate_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "qrgate_requests_in_flight {}",
            gauges.requests_in_flight
        );
        out.push_str("# HELP qrgate_requests_shed_total Requests refused at admission with 503: the replica was at capacity.\n# TYPE qrgate_requests_shed_total counter\n");
        let _ = writeln!(out, "qrgate_requests_shed_total {}", gauges.requests_shed);
        out.push_str("# HELP qrgate_orders_expired_total Orders the sweeper moved to expired.\n# TYPE qrgate_orders_expired_total counter\n");
        let _ = writeln!(
            out,
            "qrgate_orders_expired_total {}",
            self.orders_expired.load(Ordering::Relaxed)
        );
        out.push_str("# HELP qrgate_http_malformed_connections_total Connections the HTTP layer closed on a malformed or unreadable request (process-wide).\n# TYPE qrgate_http_malformed_connections_total counter\n");
        let _ = writeln!(
            out,
            "qrgate_http_malformed_connections_total {}",
            MALFORMED_CONNECTIONS.load(Ordering::Relaxed)
        );
        out.push_str("# HELP qrgate_http_slow_request_heads_total Connections whose first request head did not arrive in time (answered 408; process-wide).\n# TYPE qrgate_http_slow_request_heads_total counter\n");
        let _ = writeln!(
            out,
            "qrgate_http_slow_request_heads_total {}",
            SLOW_REQUEST_HEADS.load(Ordering::Relaxed)
        );
        out
    }
}

/// First request heads that did not arrive within the head timeout (answered 408).
pub static SLOW_REQUEST_HEADS: AtomicU64 = AtomicU64::new(0);

/// Connections actix-http closed on a stream error (a malformed request head, a
/// broken connection): anyone can cause them, so they are counted here and logged at
/// debug only, never at ERROR (issue 11).
pub static MALFORMED_CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// The log target of actix-http's connection dispatcher.
pub const HTTP_DISPATCHER_TARGET: &str = "actix_http::h1::dispatcher";

/// A tracing layer that counts the dispatcher's error events.
pub struct MalformedConnectionCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for MalformedConnectionCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            MALFORMED_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let m = Metrics::default();
        m.request("POST", "/v1/orders", 201, Duration::from_millis(3));
        m.request("POST", "/v1/orders", 201, Duration::from_millis(30));
        m.payment("succeeded", Duration::from_millis(2));
        m.payment("insufficient_funds", Duration::from_millis(1));
        m.orders_expired(3);
        let text = m.render(&Gauges {
            pool_size: 4,
            pool_available: 3,
            pool_waiting: 0,
            webhook_outbox_depth: 7,
            credential_cache_listening: true,
            credential_cache_hits: 5,
            requests_in_flight: 0,
            requests_shed: 0,
        });
        assert!(
            text.contains(
                "qrgate_http_requests_total{method=\"POST\",route=\"/v1/orders\",status=\"201\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
        assert!(text.contains("qrgate_payments_total{outcome=\"insufficient_funds\"} 1"));
        assert!(text.contains("qrgate_webhook_outbox_depth 7"));
        assert!(text.contains("qrgate_orders_expired_total 3"));
    }
}
