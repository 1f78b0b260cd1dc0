//! What a wallet's events say (`data` of a delivery to a wallet provider): its
//! customer's refund, points earned, redeemed or clawed back, a referral bonus, a payout
//! received. Queued in the same commit as the change (`wallet_event` in
//! `migrations/functions/webhooks.sql`); rendered here, as the objects are, when
//! delivered by the one outbox worker (`webhooks`).

use anyhow::Context;
use qrgate_domain::{money::format_minor, Currency};
use serde_json::{json, Value};

/// The event's object as it is now. `kind` names it: a refund (`refund.succeeded`,
/// `points.clawed_back`), a payment (`points.earned`, `points.redeemed`, and a reward
/// redemption for `points.redeemed` too,
/// `referral.rewarded` for the payment that completed the referral), or a payout
/// (`payout.received`).
pub async fn render(
    client: &deadpool_postgres::Client,
    kind: &str,
    object_id: &str,
) -> anyhow::Result<Value> {
    match kind {
        "refund.succeeded" => refund(client, object_id).await,
        "points.redeemed" if object_id.starts_with("rdm_") => reward(client, object_id).await,
        "points.earned" | "points.redeemed" => points_of_payment(client, kind, object_id).await,
        "points.clawed_back" => clawback(client, object_id).await,
        "referral.rewarded" => referral(client, object_id).await,
        "payout.received" => payout(client, object_id).await,
        _ => anyhow::bail!("no wallet event of type {kind}"),
    }
}

fn money(minor: i64, currency: &str) -> anyhow::Result<String> {
    Ok(format_minor(minor, Currency::parse(currency)?))
}

/// What the customer got back, in the currency they were charged in.
async fn refund(client: &deadpool_postgres::Client, refund_id: &str) -> anyhow::Result<Value> {
    let r = client
        .query_one(
            "SELECT r.id, r.order_id, p.id, p.customer_account_id, r.customer_returned_minor, p.charged_currency,
                    r.created_at
             FROM refunds r JOIN payments p ON p.order_id = r.order_id WHERE r.id = $1",
            &[&refund_id],
        )
        .await
        .context("rendering refund.succeeded")?;
    Ok(json!({
        "refund_id": r.get::<_, &str>(0),
        "order_id": r.get::<_, &str>(1),
        "payment_id": r.get::<_, &str>(2),
        "customer_account_id": r.get::<_, &str>(3),
        "amount": money(r.get(4), r.get(5))?,
        "currency": r.get::<_, &str>(5),
        "created_at": crate::http::timestamp(r.get(6)),
    }))
}

/// The customer's points account (opened with their first account).
const POINTS_ACCOUNT_SQL: &str = "(SELECT pts.id FROM accounts c JOIN accounts pts ON pts.kind = 'customer'
     AND pts.wallet_id = c.wallet_id AND pts.customer_reference = c.customer_reference AND pts.currency = 'PTS'
     WHERE c.id = p.customer_account_id)";

async fn points_of_payment(
    client: &deadpool_postgres::Client,
    kind: &str,
    payment_id: &str,
) -> anyhow::Result<Value> {
    let sql = format!(
        "SELECT p.id, p.order_id, p.customer_account_id, {POINTS_ACCOUNT_SQL}, p.points_earned, p.points_used,
                p.points_value_minor, p.currency, p.paid_at
         FROM payments p WHERE p.id = $1"
    );
    let p = client
        .query_one(&sql, &[&payment_id])
        .await
        .with_context(|| format!("rendering {kind}"))?;
    let mut data = json!({
        "payment_id": p.get::<_, &str>(0),
        "order_id": p.get::<_, &str>(1),
        "customer_account_id": p.get::<_, &str>(2),
        "points_account_id": p.get::<_, Option<&str>>(3),
        "created_at": crate::http::timestamp(p.get(8)),
    });
    if kind == "points.earned" {
        data["points"] = json!(p.get::<_, i64>(4).to_string());
    } else {
        data["points"] = json!(p.get::<_, i64>(5).to_string());
        // What the points paid, in the order's currency.
        data["value"] = json!(money(p.get(6), p.get(7))?);
        data["currency"] = json!(p.get::<_, &str>(7));
    }
    Ok(data)
}

/// Points redeemed for a reward (its object is the redemption).
async fn reward(client: &deadpool_postgres::Client, redemption_id: &str) -> anyhow::Result<Value> {
    let d = client
        .query_one(
            "SELECT d.id, d.reward_id, d.customer_account_id, p.account_id, d.points, d.voucher_code, d.created_at
             FROM reward_redemptions d
             JOIN postings p ON p.ledger_transaction_id = d.ledger_transaction_id AND p.amount_minor < 0
             WHERE d.id = $1",
            &[&redemption_id],
        )
        .await
        .context("rendering points.redeemed for a reward")?;
    Ok(json!({
        "redemption_id": d.get::<_, &str>(0),
        "reward_id": d.get::<_, &str>(1),
        "customer_account_id": d.get::<_, &str>(2),
        "points_account_id": d.get::<_, &str>(3),
        "points": d.get::<_, i64>(4).to_string(),
        "voucher_code": d.get::<_, Option<&str>>(5),
        "created_at": crate::http::timestamp(d.get(6)),
    }))
}

/// The points a refund took back (never below zero: what was spent stays spent).
async fn clawback(client: &deadpool_postgres::Client, refund_id: &str) -> anyhow::Result<Value> {
    let r = client
        .query_one(
            "SELECT r.id, r.order_id, pts.account_id, -pts.amount_minor, t.created_at,
                    (SELECT customer_account_id FROM payments WHERE order_id = r.order_id)
             FROM refunds r
             JOIN ledger_transactions t ON t.kind = 'points' AND t.reference = 'clawback:' || r.id
             JOIN postings pts ON pts.ledger_transaction_id = t.id AND pts.amount_minor < 0
             WHERE r.id = $1",
            &[&refund_id],
        )
        .await
        .context("rendering points.clawed_back")?;
    Ok(json!({
        "refund_id": r.get::<_, &str>(0),
        "order_id": r.get::<_, &str>(1),
        "customer_account_id": r.get::<_, &str>(5),
        "points_account_id": r.get::<_, &str>(2),
        "points": r.get::<_, i64>(3).to_string(),
        "created_at": crate::http::timestamp(r.get(4)),
    }))
}

async fn referral(client: &deadpool_postgres::Client, payment_id: &str) -> anyhow::Result<Value> {
    let r = client
        .query_one(
            "SELECT payment_id, referee_reference, referrer_reference, bonus_points, created_at
             FROM referral_rewards WHERE payment_id = $1",
            &[&payment_id],
        )
        .await
        .context("rendering referral.rewarded")?;
    Ok(json!({
        "payment_id": r.get::<_, &str>(0),
        "referee_reference": r.get::<_, &str>(1),
        "referrer_reference": r.get::<_, &str>(2),
        // Each of the two customers was credited this many points.
        "points_each": r.get::<_, i64>(3).to_string(),
        "created_at": crate::http::timestamp(r.get(4)),
    }))
}

async fn payout(client: &deadpool_postgres::Client, payout_id: &str) -> anyhow::Result<Value> {
    let r = client
        .query_one(
            "SELECT po.id, po.to_account_id, po.amount_minor, po.currency, po.merchant_id, m.name, po.created_at
             FROM payouts po JOIN merchants m ON m.id = po.merchant_id WHERE po.id = $1",
            &[&payout_id],
        )
        .await
        .context("rendering payout.received")?;
    Ok(json!({
        "payout_id": r.get::<_, &str>(0),
        "account_id": r.get::<_, &str>(1),
        "amount": money(r.get(2), r.get(3))?,
        "currency": r.get::<_, &str>(3),
        "merchant_id": r.get::<_, &str>(4),
        "merchant_name": r.get::<_, &str>(5),
        "created_at": crate::http::timestamp(r.get(6)),
    }))
}
