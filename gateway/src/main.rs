//! `gateway serve` applies pending migrations and serves; `gateway migrate` only migrates.

use gateway::{db, init_logging, Application, Settings};

const USAGE: &str = "usage: gateway <serve|migrate>\n\
  serve    apply pending migrations, then serve HTTP on QRGATE_LISTEN (default 127.0.0.1:8080)\n\
  migrate  apply pending migrations and exit\n\
Configuration comes from the environment: DATABASE_URL, QRGATE_ADMIN_TOKEN, QRGATE_LISTEN, …\n\
(see docs/api.md, \"Configuration\").";

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    if !matches!(command.as_str(), "serve" | "migrate") {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let settings = Settings::from_env()?;
    init_logging(&settings.log_format);
    if command == "migrate" {
        let pool = db::pool(&settings)?;
        let wait = std::time::Duration::from_secs(settings.limits.db_startup_wait_seconds);
        let applied = db::migrate_when_reachable(&pool, wait).await?;
        tracing::info!(?applied, "migrations up to date");
        return Ok(());
    }
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "qrgate gateway listening");
    app.run_until_stopped().await?;
    Ok(())
}
