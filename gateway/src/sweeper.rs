//! Background upkeep, safe to run on every replica at once: expires due orders (so
//! nothing reads `pending` past `expires_at` for long) and unused vouchers past theirs
//! (a payment judges a voucher's expiry itself), and prunes webhook-ids,
//! Idempotency-Key answers, quotes and settled webhook events past their retention.
//! Last (so nothing of the above waits on it), it ticks the xid clock that reports read
//! balances at an instant through (migration 0032), and once a day stores each
//! merchant's balance at the day's start.

use crate::state::AppState;
use std::{sync::Arc, time::Duration};

/// Rows pruned per table per round.
const PRUNE_BATCH_MAX: i64 = 5_000;

/// How long a quote is kept: a day past its 60-second life (a payment keeps its own copy
/// of what it used).
const QUOTE_RETENTION_SECONDS: i64 = 86_400;

/// Merchants whose balance at the UTC day's start one round stores at most.
const DAILY_BALANCES_BATCH_MAX: i32 = 500;

/// How often the xid clock ticks, whatever the number of replicas: a report reads
/// about this much of an account's ledger beyond its day at each end.
const XID_CLOCK_TICK_SECONDS: i32 = 60;

pub async fn run(state: Arc<AppState>) {
    let limits = state.settings.limits.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(limits.sweeper_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&state).await {
            tracing::warn!(error = %format!("{e:#}"), "sweeper round failed; will retry");
        }
    }
}

pub async fn sweep_once(state: &AppState) -> anyhow::Result<()> {
    let limits = &state.settings.limits;
    let client = state.pool.get().await?;
    let expired: i32 = client
        .query_one("SELECT expire_due_orders($1)", &[&limits.sweeper_batch_max])
        .await?
        .get(0);
    if expired > 0 {
        state.metrics.orders_expired(expired as u64);
        tracing::info!(expired, "orders expired");
    }
    let vouchers: i32 = client
        .query_one(
            "SELECT expire_due_vouchers($1)",
            &[&limits.sweeper_batch_max],
        )
        .await?
        .get(0);
    if vouchers > 0 {
        tracing::info!(vouchers, "unused vouchers expired");
    }
    prune(
        &client,
        "wallet_messages",
        "true",
        limits.wallet_message_retention_seconds,
    )
    .await?;
    prune(
        &client,
        "merchant_idempotency",
        "true",
        limits.idempotency_retention_seconds,
    )
    .await?;
    prune(&client, "quotes", "true", QUOTE_RETENTION_SECONDS).await?;
    // Settled events only, by their own index (migration 0034).
    prune(
        &client,
        "webhook_events",
        "status <> 'pending'",
        limits.webhook_event_retention_seconds,
    )
    .await?;
    client
        .execute("SELECT xid_clock_tick($1)", &[&XID_CLOCK_TICK_SECONDS])
        .await?;
    let balances: i32 = client
        .query_one(
            "SELECT store_daily_balances($1)",
            &[&DAILY_BALANCES_BATCH_MAX],
        )
        .await?
        .get(0);
    if balances > 0 {
        tracing::info!(balances, "merchants' balances at the day's start stored");
    }
    Ok(())
}

/// Deletes at most `PRUNE_BATCH_MAX` rows of `table` that satisfy `prunable` and are
/// older than `retention_seconds`. Each table's rows are read by an index on their age
/// whose predicate is `prunable`: this runs every second on every replica.
async fn prune(
    client: &deadpool_postgres::Client,
    table: &str,
    prunable: &str,
    retention_seconds: i64,
) -> anyhow::Result<()> {
    let sql = format!(
        "DELETE FROM {table} WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM {table}
             WHERE {prunable} AND created_at < now() - make_interval(secs => $1) LIMIT $2))"
    );
    client
        .execute(&sql, &[&(retention_seconds as f64), &PRUNE_BATCH_MAX])
        .await?;
    Ok(())
}
