//! qrgate's gateway: the HTTP API (`api`), its authentication (`auth`), and the
//! PostgreSQL ledger it drives (`db`, and the SQL functions in `migrations/`).
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod auth;
pub mod auth_failures;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod openapi;
pub mod qr_image;
pub mod request_rates;
pub mod startup;
pub mod state;
pub mod sweeper;
pub mod waiters;
pub mod webhooks;

pub use config::Settings;
pub use startup::Application;

/// Logs to stderr: JSON lines in production (`QRGATE_LOG_FORMAT=json`), text otherwise.
/// `RUST_LOG` filters (default `info`).
pub fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
