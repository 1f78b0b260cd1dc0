//! PostgreSQL: the connection pool, the migrations, and the retry of transactions
//! that lost a race.

use crate::config::Settings;
use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::{error::SqlState, NoTls};

/// `(version, SQL)` of each named file of `migrations/`.
macro_rules! migrations {
    ($($version:literal),* $(,)?) => {
        &[$(($version, include_str!(concat!("../../migrations/", $version, ".sql")))),*]
    };
}

/// The migrations, in order. Each is applied once, in its own transaction, and
/// recorded with its checksum; a changed applied migration stops the start. A test
/// checks that every file of `migrations/` is listed.
const MIGRATIONS: &[(&str, &str)] = migrations![
    "0001_core",
    "0002_ledger",
    "0003_ledger_post_one_lookup",
    "0004_refunds",
    "0005_transfers_payouts_statements",
    "0006_webhooks",
    "0007_webhooks_off_the_hot_path",
    "0008_cross_border",
    "0009_promotions",
    "0010_points",
    "0011_order_shows_its_charge",
    "0012_points_in_the_payment",
    "0013_admin_tokens_and_audit",
    "0014_blocked_accounts",
    "0015_blocked_merchants",
];

pub fn pool(settings: &Settings) -> anyhow::Result<Pool> {
    let mut config: tokio_postgres::Config = settings
        .database_url
        .expose()
        .parse()
        .context("DATABASE_URL is not a PostgreSQL URL")?;
    let limits = &settings.limits;
    config.connect_timeout(Duration::from_millis(limits.db_connect_timeout_ms));
    config.options(format!(
        "-c statement_timeout={}",
        limits.statement_timeout_ms
    ));
    config.application_name("qrgate-gateway");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(limits.pool_size_max)
        .wait_timeout(Some(limits.pool_wait_timeout()))
        .create_timeout(Some(Duration::from_millis(limits.db_connect_timeout_ms)))
        .recycle_timeout(Some(Duration::from_millis(limits.db_connect_timeout_ms)))
        .runtime(Runtime::Tokio1)
        .build()
        .context("building the database pool")
}

/// Applies pending migrations. Safe to run from several replicas at once: an
/// advisory lock lets one apply while the others wait.
pub async fn migrate(pool: &Pool) -> anyhow::Result<Vec<&'static str>> {
    let mut client = pool
        .get()
        .await
        .context("connecting to PostgreSQL to migrate")?;
    let tx = client.transaction().await?;
    tx.batch_execute(
        "SELECT pg_advisory_xact_lock(7242501);
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        let checksum = checksum(sql);
        let row = tx
            .query_opt(
                "SELECT checksum FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await?;
        match row {
            Some(row) if row.get::<_, String>(0) == checksum => continue,
            Some(_) => anyhow::bail!("migration {version} was changed after it was applied"),
            None => {
                tx.batch_execute(sql)
                    .await
                    .with_context(|| format!("applying migration {version}"))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    &[version, &checksum],
                )
                .await?;
                applied.push(*version);
            }
        }
    }
    // SQL converts between currencies with their minor units: mirror the domain's table.
    let (codes, units): (Vec<&str>, Vec<i32>) = qrgate_domain::Currency::all()
        .map(|c| (c.code(), c.minor_units() as i32))
        .unzip();
    tx.execute(
        "INSERT INTO currencies (code, minor_units) SELECT * FROM unnest($1::text[], $2::int[])
         ON CONFLICT (code) DO UPDATE SET minor_units = EXCLUDED.minor_units",
        &[&codes, &units],
    )
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// Puts the operator's settings the ledger functions read into the database.
pub async fn apply_settings(pool: &Pool, limits: &crate::config::Limits) -> anyhow::Result<()> {
    let client = pool.get().await.context("connecting to PostgreSQL")?;
    client
        .execute(
            "UPDATE referral_settings SET bonus_points = $1, min_payment_units = $2, rewards_per_referrer_max = $3",
            &[&limits.referral_bonus_points, &limits.referral_min_payment_units, &limits.referral_rewards_per_referrer_max],
        )
        .await
        .context("storing the referral settings")?;
    Ok(())
}

fn checksum(sql: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(sql.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a failed transaction may simply be run again: it lost a race (a
/// serialization failure, a deadlock, or a concurrent insert of the same key).
pub fn is_retryable(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ]
        .contains(c)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_applied_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        let registered: Vec<&str> = super::MIGRATIONS
            .iter()
            .map(|(version, _)| *version)
            .collect();
        assert_eq!(
            registered, files,
            "register each file of migrations/ in MIGRATIONS, in order"
        );
    }
}
