//! PostgreSQL: the connection pool, the migrations, and the retry of transactions
//! that lost a race.

use crate::config::Settings;
use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// `(name, SQL)` of each named file of `migrations/` (or of a folder under it).
macro_rules! sql_files {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../migrations/", $dir, $name, ".sql")))),*]
    };
}

/// The versioned migrations, in order: tables, indexes, types and data. Each is
/// applied once, in its own transaction, and recorded with its checksum; a changed
/// applied migration stops the start. A test checks that every file is listed.
const MIGRATIONS: &[(&str, &str)] = sql_files![
    "":
    "0001_core",
    "0002_ledger",
    "0003_refunds",
    "0004_transfers_payouts_statements",
    "0005_webhooks",
    "0006_cross_border",
    "0007_promotions",
    "0008_points",
    "0009_order_shows_its_charge",
    "0010_admin_tokens_and_audit",
    "0011_blocked_accounts",
    "0012_blocked_merchants",
    "0013_risk",
    "0014_request_rates",
    "0015_referral_plan",
    "0016_one_home_per_rule",
    "0017_order_price",
    "0018_payment_steps",
    "0019_tills_and_checkout",
    "0020_operator_roles",
    "0021_service_desk",
    "0022_audit_body_digest",
    "0023_second_factors",
    "0024_static_codes",
    "0025_managing_what_exists",
    "0026_tips",
    "0027_wallet_events",
    "0028_rewards",
    "0029_wallet_webhook_rotation",
    "0030_keys_by_merchant",
    "0031_live_campaigns",
    "0032_balances_at",
    "0033_campaign_pages",
    "0034_webhook_events_by_age",
    "0035_quotes_by_age",
    "0036_accounts_by_merchant",
];

/// Every function and trigger, as it is now: one definition of each, edited in place.
/// Applied after the versioned migrations whenever their text changes: all of this
/// schema's functions and triggers are dropped and these created, in one transaction.
const FUNCTIONS: &[(&str, &str)] = sql_files![
    "functions/":
    "orders",
    "ledger",
    "balances_at",
    "wallet_calls",
    "merchant_calls",
    "risk",
    "payments",
    "refunds",
    "rewards",
    "transfers",
    "webhooks",
    "request_rates",
    "credentials",
    "audit",
];

/// The row of `schema_migrations` that records which `FUNCTIONS` are applied.
const FUNCTIONS_VERSION: &str = "functions";

pub fn pool(settings: &Settings) -> anyhow::Result<Pool> {
    let crate::pg_tls::Target {
        mut config,
        tls,
        verified,
    } = crate::pg_tls::target(settings.database_url.expose())?;
    if !verified && config.get_hosts().iter().any(off_this_machine) {
        tracing::warn!(
            "the database is on another machine and its connection is not verified TLS: \
             use sslmode=verify-full with sslrootcert (docs/operations.md)"
        );
    }
    let limits = &settings.limits;
    config.connect_timeout(Duration::from_millis(limits.db_connect_timeout_ms));
    // Both per connection, so no statement of the hot path spends a round trip on them.
    config.options(format!(
        "-c statement_timeout={} -c lock_timeout={}",
        limits.statement_timeout_ms, limits.lock_timeout_ms
    ));
    config.application_name("qrgate-gateway");
    let manager = Manager::from_config(
        config,
        tls,
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

fn off_this_machine(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Tcp(name) => {
            name != "localhost"
                && !name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => false,
    }
}

/// Applies pending migrations once the database answers: a database that cannot be
/// reached yet (refused, starting up, not created yet, or the pool timed out) is tried
/// again with backoff (200 ms doubling to 2 s) for at most `wait`, so a replica started
/// with or before its database comes up by itself. Any other failure stops at once.
pub async fn migrate_when_reachable(
    pool: &Pool,
    wait: std::time::Duration,
) -> anyhow::Result<Vec<&'static str>> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match migrate(pool).await {
            Ok(applied) => return Ok(applied),
            Err(e) if unreachable(&e) && tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %format!("{e:#}"), retry_in_ms = pause.as_millis() as u64,
                               "the database does not answer yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a failure means "the database is not there (yet)", not "something is wrong".
fn unreachable(e: &anyhow::Error) -> bool {
    // A certificate that does not check out will not check out later either.
    if e.chain()
        .any(|cause| cause.is::<crate::pg_tls::HandshakeFailed>())
    {
        return false;
    }
    // The server's own answer decides: refused, starting up, shutting down, or the
    // database not created yet are worth waiting for; a role or hba refusal is not.
    if let Some(pg) = e
        .chain()
        .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
    {
        return pg.is_closed()
            || pg.code().is_none_or(|c| {
                let code = c.code();
                code.starts_with("08") || code.starts_with("57") || code == "3D000"
            });
    }
    // No answer at all: the pool timed out.
    e.chain().any(|c| c.is::<deadpool_postgres::PoolError>())
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
         SET LOCAL client_min_messages = warning; -- no NOTICE that the table already exists
         CREATE TABLE IF NOT EXISTS schema_migrations (
             version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    // A version this binary does not know: a newer binary migrated this database, or
    // it predates the squash of 2026-11-26 (nothing was deployed then). Either way,
    // applying our files on top would be wrong.
    let known: Vec<&str> = MIGRATIONS
        .iter()
        .map(|(v, _)| *v)
        .chain([FUNCTIONS_VERSION])
        .collect();
    let unknown: Vec<String> = tx
        .query(
            "SELECT version FROM schema_migrations WHERE version <> ALL($1) ORDER BY version",
            &[&known],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !unknown.is_empty() {
        anyhow::bail!(
            "the database has migrations this gateway does not know ({}): it was migrated by a newer \
             gateway, or by one from before migrations were squashed on 2026-11-26 (recreate such a database)",
            unknown.join(", ")
        );
    }
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
    if apply_functions(&tx).await? {
        applied.push(FUNCTIONS_VERSION);
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

/// Replaces every function and trigger of this schema with `FUNCTIONS` when their
/// text changed since they were applied. Dropping first means a function removed or
/// re-declared with other arguments leaves no stale overload behind; a table default
/// or check that used a function would stop the drop (no CASCADE) rather than vanish.
async fn apply_functions(tx: &deadpool_postgres::Transaction<'_>) -> anyhow::Result<bool> {
    let text: String = FUNCTIONS.iter().map(|(_, sql)| *sql).collect();
    let checksum = checksum(&text);
    let applied = tx
        .query_opt(
            "SELECT checksum FROM schema_migrations WHERE version = $1",
            &[&FUNCTIONS_VERSION],
        )
        .await?;
    if applied.is_some_and(|row| row.get::<_, String>(0) == checksum) {
        return Ok(false);
    }
    tx.batch_execute(
        "DO $$
         DECLARE r record;
         BEGIN
             FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel
                      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                      WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
             LOOP
                 EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
             END LOOP;
             FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                      WHERE p.pronamespace = current_schema()::regnamespace
                        AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
             LOOP
                 EXECUTE format('DROP FUNCTION %s', r.f);
             END LOOP;
         END $$;
         SET LOCAL check_function_bodies = off;",
    )
    .await
    .context("dropping the previous functions")?;
    for (name, sql) in FUNCTIONS {
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("applying functions/{name}.sql"))?;
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)
         ON CONFLICT (version) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
        &[&FUNCTIONS_VERSION, &checksum],
    )
    .await?;
    Ok(true)
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

/// One snapshot for several reads (repeatable read): what reads the ledger through the
/// xid clock sees the same lines in every part, while payments land.
pub async fn one_snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .start()
        .await
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
        assert_eq!(
            registered(super::MIGRATIONS),
            files_in("migrations"),
            "register each file of migrations/ in MIGRATIONS, in order"
        );
    }

    #[test]
    fn every_function_file_is_applied() {
        let mut registered = registered(super::FUNCTIONS);
        registered.sort();
        assert_eq!(
            registered,
            files_in("migrations/functions"),
            "register each file of migrations/functions/ in FUNCTIONS"
        );
    }

    /// Every error code the ledger functions answer with is in the catalogue the gateway
    /// and the SDK share: codes beside their HTTP status (`'invalid_qr', 422`), codes
    /// assigned (`code := 'limit_exceeded'`), and the order-state CASEs.
    #[test]
    fn every_code_the_sql_answers_with_is_in_the_catalogue() {
        let codes = found_in_every_function(|sql| {
            let mut found = Vec::new();
            for (at, _) in sql.match_indices("', ") {
                let status = &sql[at + 3..];
                if status.len() >= 3
                    && ["4", "5"].iter().any(|d| status.starts_with(d))
                    && status[..3].bytes().all(|b| b.is_ascii_digit())
                {
                    found.push(literal_before(sql, at));
                }
            }
            for marker in ["code := '", "v_code := '"] {
                for (at, _) in sql.match_indices(marker) {
                    let rest = &sql[at + marker.len()..];
                    found.push(rest[..rest.find('\'').unwrap()].to_owned());
                }
            }
            for line in sql
                .lines()
                .filter(|l| l.contains("CASE") && l.contains("order.status"))
            {
                for part in line
                    .split("THEN '")
                    .skip(1)
                    .chain(line.split("ELSE '").skip(1))
                {
                    found.push(part[..part.find('\'').unwrap()].to_owned());
                }
            }
            found
        });
        let mut unknown: Vec<&String> = codes
            .iter()
            .filter(|c| *c != "succeeded" && crate::error::ErrorCode::parse(c).is_none())
            .collect();
        unknown.dedup();
        assert!(codes.len() > 20, "found only {codes:?}");
        assert!(
            unknown.is_empty(),
            "codes the SQL answers with that the catalogue lacks: {unknown:?}"
        );
    }

    /// Each ledger function has one job and reads on one screen: at most 60 lines from
    /// `CREATE` to its closing `$$;`. (A longer one is split into named steps.)
    #[test]
    fn every_function_fits_on_one_screen() {
        const LINES_MAX: usize = 60;
        let mut long = Vec::new();
        for (file, sql) in super::FUNCTIONS {
            let mut open: Option<(&str, usize)> = None;
            for (at, line) in sql.lines().enumerate() {
                if let Some(rest) = line.strip_prefix("CREATE OR REPLACE FUNCTION ") {
                    open = Some((rest.split('(').next().unwrap_or(rest), at));
                } else if line.starts_with("END $$;") || line.ends_with("$$;") {
                    if let Some((name, start)) = open.take() {
                        if at - start + 1 > LINES_MAX {
                            long.push(format!("{file}.sql: {name} ({} lines)", at - start + 1));
                        }
                    }
                }
            }
        }
        assert!(
            long.is_empty(),
            "functions over {LINES_MAX} lines: {long:?}"
        );
    }

    /// A SQL-language function that reads or writes a table is parsed and planned again
    /// on every call (PL/pgSQL keeps its plans): on a payment's path that cost 0.15 ms a
    /// call (`wallet_event`). Such functions are PL/pgSQL, except these, each called
    /// once per batch, per repeated request or per refusal.
    #[test]
    fn no_sql_language_function_on_a_hot_path_reads_a_table() {
        const OFF_THE_HOT_PATH: [&str; 10] = [
            "expire_due_orders",           // a sweeper's batch
            "expire_due_vouchers",         // a sweeper's batch
            "webhook_lease",               // a delivery worker's batch
            "ledger_invariant_violations", // tests and the operator's check
            "balances_at_violations",      // tests
            "xid_clock_low",               // a report's balance
            "xid_clock_high",              // a report's balance
            "ledger_open_account",         // once per account
            "refund_fail",                 // a refused refund
            "wallet_txn_answer",           // a repeated wallet call
        ];
        let mut planned_each_call = Vec::new();
        for (file, sql) in super::FUNCTIONS {
            for function in sql.split("CREATE OR REPLACE FUNCTION ").skip(1) {
                let name = function.split('(').next().unwrap_or(function);
                let body = function.split("$$").nth(1).unwrap_or("");
                let head = function.split("$$").next().unwrap_or("");
                let reads = [" FROM ", "INSERT INTO ", "UPDATE "]
                    .iter()
                    .any(|k| body.contains(k));
                if head.contains("LANGUAGE sql") && reads && !OFF_THE_HOT_PATH.contains(&name) {
                    planned_each_call.push(format!("{file}.sql: {name}"));
                }
            }
        }
        assert!(
            planned_each_call.is_empty(),
            "SQL-language functions that read a table (make them PL/pgSQL): {planned_each_call:?}"
        );
    }

    /// The string literal that ends just before byte `end` of `sql`.
    fn literal_before(sql: &str, end: usize) -> String {
        let start = sql[..end].rfind('\'').map_or(end, |q| q + 1);
        sql[start..end].to_owned()
    }

    fn found_in_every_function(find: impl Fn(&str) -> Vec<String>) -> Vec<String> {
        super::FUNCTIONS
            .iter()
            .flat_map(|(_, sql)| find(sql))
            .collect()
    }

    fn registered(files: &[(&'static str, &str)]) -> Vec<&'static str> {
        files.iter().map(|(name, _)| *name).collect()
    }

    fn files_in(folder: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(folder);
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| name.trim_end_matches(".sql").to_owned())
            .collect();
        files.sort();
        files
    }
}
