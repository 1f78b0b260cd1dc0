//! The money formulas have one meaning in two languages (issue 12): the same table of
//! inputs, and seeded random ones, through the SQL the ledger runs and through
//! `domain::pricing`, to the minor unit.

use crate::helpers::spawn_app;
use qrgate_domain::pricing::{self, CampaignKind};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rust_decimal::Decimal;

const RANDOM_CASES: usize = 300;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// A decimal with up to `scale` places, from a random mantissa.
fn random_decimal(rng: &mut StdRng, max: i64, scale: u32) -> Decimal {
    Decimal::new(rng.gen_range(1..=max), rng.gen_range(0..=scale))
}

#[tokio::test]
async fn fees_points_fx_and_refund_shares_agree_in_sql_and_rust() {
    let app = spawn_app().await;
    let db = app.db().await;
    let mut rng = StdRng::seed_from_u64(12);

    // Fees.
    let mut fees: Vec<(i64, i32)> = vec![
        (10_000, 38),
        (1234, 38),
        (1316, 38),
        (1250, 4),
        (1249, 4),
        (1, 0),
        (9_999_999_999_999, 10_000),
    ];
    fees.extend(
        (0..RANDOM_CASES).map(|_| (rng.gen_range(1..10_000_000_000), rng.gen_range(0..=10_000))),
    );
    for (credited, bps) in fees {
        let sql: i64 = db
            .query_one("SELECT fee_for($1, $2)", &[&credited, &bps])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            sql,
            pricing::fee_minor(credited, bps),
            "fee on {credited} at {bps} bps"
        );
    }

    // Tip caps.
    let mut caps: Vec<(i64, i32)> = vec![
        (1999, 25),
        (1, 99),
        (100, 0),
        (9_999_999_999_999, 100),
        (7, 33),
    ];
    caps.extend(
        (0..RANDOM_CASES).map(|_| (rng.gen_range(1..10_000_000_000), rng.gen_range(0..=100))),
    );
    for (amount, percent) in caps {
        let sql: i64 = db
            .query_one("SELECT tip_cap_for($1, $2)", &[&amount, &percent])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            sql,
            qrgate_domain::tips::tip_cap_minor(amount, percent),
            "tip cap on {amount} at {percent}%"
        );
    }

    // Refund shares.
    let mut shares: Vec<(i64, i64, i64)> =
        vec![(19, 2000, 5000), (1, 1, 2), (1, 1, 3), (1000, 1000, 1000)];
    shares.extend((0..RANDOM_CASES).map(|_| {
        let amount = rng.gen_range(1..10_000_000_000_i64);
        (rng.gen_range(0..=amount), rng.gen_range(1..=amount), amount)
    }));
    for (leg, refunded, amount) in shares {
        let sql: i64 = db
            .query_one(
                "SELECT refund_share($1, $2, $3)",
                &[&leg, &refunded, &amount],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            sql,
            pricing::refund_share(leg, refunded, amount),
            "share of {leg} for {refunded}/{amount}"
        );
    }

    // Points, in currencies of 0, 2 and 3 decimals.
    for currency in ["JPY", "CNY", "KWD"] {
        let units = qrgate_domain::Currency::parse(currency)
            .unwrap()
            .minor_units();
        for _ in 0..RANDOM_CASES / 3 {
            let (points, due) = (
                rng.gen_range(0..1_000_000_i64),
                rng.gen_range(1..100_000_000_i64),
            );
            let row = db
                .query_one("SELECT (r).points, (r).value_minor FROM (SELECT points_redemption($1, $2, $3) r) x", &[&points, &currency, &due])
                .await
                .unwrap();
            assert_eq!(
                (row.get::<_, i64>(0), row.get::<_, i64>(1)),
                pricing::points_redemption(points, units, due),
                "{points} points against {due} {currency}"
            );
            let (charged, per_unit) = (
                rng.gen_range(1..10_000_000_000_i64),
                random_decimal(&mut rng, 10_000_000, 4),
            );
            let sql: i64 = db
                .query_one(
                    "SELECT points_earned($1, $2, $3::text::numeric)",
                    &[&charged, &currency, &per_unit.to_string()],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                sql,
                pricing::points_earned(charged, units, per_unit),
                "points for {charged} {currency} at {per_unit}"
            );
        }
    }

    // FX between currencies of every scale, rates up to 8 decimals, spreads up to 100%.
    let mut fx: Vec<(i64, &str, &str, Decimal, i32)> = vec![
        (10_000, "HKD", "CNY", dec("0.92"), 50),
        (1, "JPY", "KWD", dec("0.00000001"), 0),
        (999, "KWD", "JPY", dec("480.12345678"), 10_000),
    ];
    let currencies = ["JPY", "CNY", "KWD", "USD"];
    fx.extend((0..RANDOM_CASES).map(|_| {
        let from = currencies[rng.gen_range(0..currencies.len())];
        let to = currencies[rng.gen_range(0..currencies.len())];
        (
            rng.gen_range(1..10_000_000_000_i64),
            from,
            to,
            random_decimal(&mut rng, 1_000_000_000_000, 8),
            rng.gen_range(0..=10_000),
        )
    }));
    for (due, from, to, rate, spread) in fx {
        let units = |c: &str| qrgate_domain::Currency::parse(c).unwrap().minor_units();
        let Some(rust) = pricing::fx_charge(due, units(from), units(to), rate, spread) else {
            continue; // beyond 128-bit arithmetic: the gateway refuses such rates long before
        };
        let sql: i64 = db
            .query_one(
                "SELECT fx_charge($1, $2, $3, $4::text::numeric, $5)",
                &[&due, &from, &to, &rate.to_string(), &spread],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(sql, rust, "{due} {from}→{to} at {rate} + {spread} bps");
    }

    // Campaign discounts, through the campaigns table the payment reads.
    let merchant = app.create_merchant().await;
    for i in 0..RANDOM_CASES / 3 {
        let percent = Decimal::new(rng.gen_range(1..1_000_000), 4).min(dec("99.9999"));
        let cap: Option<i64> = rng.gen_bool(0.5).then(|| rng.gen_range(1..100_000));
        let (off, min) = (
            rng.gen_range(1..50_000_i64),
            rng.gen_range(50_000..200_000_i64),
        );
        let amount = rng.gen_range(1..300_000_i64);
        for (kind, rust_kind) in [
            (
                "percent_off",
                CampaignKind::PercentOff {
                    percent,
                    max_discount_minor: cap,
                },
            ),
            (
                "amount_off_over",
                CampaignKind::AmountOffOver {
                    amount_off_minor: off,
                    min_amount_minor: min,
                },
            ),
        ] {
            let id = format!("cmp_f{i}_{kind}");
            db.execute(
                "INSERT INTO campaigns (id, kind, percent_off, max_discount_minor, amount_off_minor, min_amount_minor, currency, budget_minor, funded_by, merchant_id)
                 VALUES ($1, $2, CASE WHEN $2 = 'percent_off' THEN $3::text::numeric END, CASE WHEN $2 = 'percent_off' THEN $4::bigint END,
                         CASE WHEN $2 = 'amount_off_over' THEN $5::bigint END, CASE WHEN $2 = 'amount_off_over' THEN $6::bigint END,
                         'CNY', 1000000, 'merchant', $7)",
                &[&id, &kind, &percent.to_string(), &cap, &off, &min, &merchant.id],
            )
            .await
            .unwrap();
            let sql: i64 = db
                .query_one(
                    "SELECT campaign_discount(c, $2) FROM campaigns c WHERE id = $1",
                    &[&id, &amount],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(
                sql,
                pricing::campaign_discount(rust_kind, amount),
                "{kind} {percent}% cap {cap:?} off {off} over {min} on {amount}"
            );
        }
    }
}
