//! qrgate's gateway: the HTTP API (`api`), its authentication (`auth`), and the
//! PostgreSQL ledger it drives (`db`, and the SQL functions in `migrations/`).
//! See ARCHITECTURE.md for the map.

pub mod admission;
pub mod api;
pub mod auth;
pub mod auth_failures;
pub mod config;
pub mod connection;
pub mod credentials;
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod pg_tls;
pub mod qr_image;
pub mod request_rates;
pub mod roles;
pub mod sealed;
pub mod second_factor;
pub mod startup;
pub mod state;
pub mod streams;
pub mod sweeper;
pub mod waiters;
pub mod wallet_events;
pub mod webhooks;

pub use config::Settings;
pub use startup::Application;

/// Logs to stderr: JSON lines in production (`QRGATE_LOG_FORMAT=json`), text otherwise,
/// coloured only on a terminal. `RUST_LOG` filters (default `info`). actix-http's
/// connection errors (malformed request heads: anyone can send them) are counted in
/// `/metrics` and logged only when `RUST_LOG` asks for that target at debug. Libraries
/// that log through the `log` crate instead of `tracing` (tokio-postgres, which prints a
/// statement's parameters at debug) are not bridged: nothing of theirs is logged, at any
/// `RUST_LOG` (tests/tests/api/secrets.rs runs a whole sale at `trace` and finds no secret).
pub fn init_logging(format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, EnvFilter, Layer};
    let explicit = std::env::var("RUST_LOG").ok();
    let dispatcher = metrics::HTTP_DISPATCHER_TARGET;
    let directives = match &explicit {
        Some(d) if d.contains(dispatcher) => d.clone(),
        Some(d) => format!("{d},{dispatcher}=off"),
        None => format!("info,{dispatcher}=off"),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let text = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let output = if format == "json" {
        text.json().with_filter(filter).boxed()
    } else {
        text.with_filter(filter).boxed()
    };
    let counter = metrics::MalformedConnectionCounter
        .with_filter(Targets::new().with_target(dispatcher, tracing::Level::ERROR));
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(output).with(counter),
    );
}
