//! `gateway serve` applies pending migrations and serves; `gateway migrate` only
//! migrates; `gateway rotate-secrets-key` re-seals the stored secrets under the current
//! secrets key; `gateway new-secrets-key` prints a new key.

use gateway::{db, init_logging, sealed, Application, Settings};

const USAGE: &str = "usage: gateway <serve|migrate|rotate-secrets-key|new-secrets-key>\n\
  serve               apply pending migrations, then serve HTTP on QRGATE_LISTEN (default 127.0.0.1:8080)\n\
  migrate             apply pending migrations and exit\n\
  rotate-secrets-key  re-seal every stored secret under QRGATE_SECRETS_KEY (the values under\n\
                      QRGATE_SECRETS_KEY_PREVIOUS open with it), while the replicas run with both keys\n\
  new-secrets-key     print 32 random bytes in standard base64: a new QRGATE_SECRETS_KEY\n\
Configuration comes from the environment: DATABASE_URL, QRGATE_ADMIN_TOKEN, QRGATE_SECRETS_KEY, …\n\
(see docs/api.md, \"Configuration\", and docs/operations.md, \"Secrets at rest\").";

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "serve" | "migrate" | "rotate-secrets-key" => {}
        "new-secrets-key" => {
            println!("{}", sealed::SecretsKey::generate_base64());
            return Ok(());
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
    let settings = Settings::from_env()?;
    init_logging(&settings.log_format);
    let pool = db::pool(&settings)?;
    let wait = std::time::Duration::from_secs(settings.limits.db_startup_wait_seconds);
    match command.as_str() {
        "migrate" => {
            let applied = db::migrate_when_reachable(&pool, wait).await?;
            tracing::info!(?applied, "migrations up to date");
        }
        "rotate-secrets-key" => rotate_secrets_key(&pool, &settings, wait).await?,
        _ => {
            drop(pool);
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "qrgate gateway listening");
            app.run_until_stopped().await?;
        }
    }
    Ok(())
}

async fn rotate_secrets_key(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
    wait: std::time::Duration,
) -> anyhow::Result<()> {
    db::migrate_when_reachable(pool, wait).await?;
    let keys = &settings.secrets;
    let count = sealed::reseal(pool, keys, sealed::Reseal::AllButCurrent).await?;
    tracing::info!(
        resealed = count.resealed,
        unopenable = count.unopenable,
        current = keys.current_id(),
        previous = keys.previous_id(),
        "secrets re-sealed under the current key"
    );
    if count.unopenable > 0 {
        anyhow::bail!(
            "{} stored secrets opened under neither key (see the log); they were left as they are",
            count.unopenable
        );
    }
    Ok(())
}
