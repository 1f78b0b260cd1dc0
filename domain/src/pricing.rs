//! The pure formulas of a payment and its refunds, in Rust. The ledger functions compute
//! the same in SQL (`migrations/functions/payments.sql`, `refunds.sql`), where they run
//! inside the payment's transaction; `tests/tests/api/formulas.rs` puts one table of
//! inputs (and seeded random ones) through both and requires the same minor units.
//! Every division rounds as PostgreSQL's `round()` does for non-negative numbers: half up.

use crate::money::div_round_half_up;
use rust_decimal::Decimal;

pub use crate::money::fee_minor;

/// What a campaign takes off, by kind.
#[derive(Clone, Copy, Debug)]
pub enum CampaignKind {
    /// `percent` of the amount, at most `max_discount_minor`.
    PercentOff {
        percent: Decimal,
        max_discount_minor: Option<i64>,
    },
    /// `amount_off_minor` from orders of at least `min_amount_minor`.
    AmountOffOver {
        amount_off_minor: i64,
        min_amount_minor: i64,
    },
}

/// A campaign's discount on an order of `amount_minor`: 0 when it does not apply, and
/// never the whole amount (at least one minor unit is charged).
pub fn campaign_discount(kind: CampaignKind, amount_minor: i64) -> i64 {
    match kind {
        CampaignKind::PercentOff {
            percent,
            max_discount_minor,
        } => {
            let off =
                decimal_round_half_up(Decimal::from(amount_minor) * percent / Decimal::from(100));
            off.min(max_discount_minor.unwrap_or(amount_minor))
                .min(amount_minor - 1)
        }
        CampaignKind::AmountOffOver {
            amount_off_minor,
            min_amount_minor,
        } => {
            if amount_minor >= min_amount_minor {
                amount_off_minor
            } else {
                0
            }
        }
    }
}

/// Points a customer may redeem against `due_minor`: up to `points`, worth 1/100 of a
/// unit of a currency with `minor_units` each, the value rounded down to a minor unit
/// and at most what is due. Returns (points used, value in minor units).
pub fn points_redemption(points: i64, minor_units: u32, due_minor: i64) -> (i64, i64) {
    let per_unit = 10_i128.pow(minor_units);
    let value = (i128::from(points) * per_unit / 100).min(i128::from(due_minor));
    let used = (value * 100 + per_unit - 1) / per_unit; // ceil
    (used as i64, value as i64)
}

/// Points earned by charging `charged_minor` of a currency with `minor_units`, at
/// `points_per_unit` per whole unit, rounded down.
pub fn points_earned(charged_minor: i64, minor_units: u32, points_per_unit: Decimal) -> i64 {
    let units = Decimal::from(charged_minor) / Decimal::from(10_i64.pow(minor_units));
    i64::try_from((units * points_per_unit).floor().mantissa()).unwrap_or(i64::MAX)
}

/// What `due_minor` in a currency with `from_units` decimals costs in one with
/// `to_units`: due × rate × (1 + spread_bps / 10000), computed exactly and rounded half
/// up once, at least one minor unit. `None` if it does not fit 128-bit arithmetic.
pub fn fx_charge(
    due_minor: i64,
    from_units: u32,
    to_units: u32,
    rate: Decimal,
    spread_bps: i32,
) -> Option<i64> {
    let mut numerator = i128::from(due_minor)
        .checked_mul(rate.mantissa())?
        .checked_mul(i128::from(10_000 + spread_bps))?;
    let mut denominator = 10_i128.checked_pow(rate.scale())?.checked_mul(10_000)?;
    if to_units >= from_units {
        numerator = numerator.checked_mul(10_i128.checked_pow(to_units - from_units)?)?;
    } else {
        denominator = denominator.checked_mul(10_i128.checked_pow(from_units - to_units)?)?;
    }
    let charged = div_round_half_up(numerator, denominator).max(1);
    i64::try_from(charged).ok()
}

/// A leg's share of a refund: `leg_total × refunded / amount`, rounded half up. Applied
/// cumulatively (share after this refund − share before), so the last refund returns
/// exactly what is left of the leg.
pub fn refund_share(leg_total: i64, refunded: i64, amount: i64) -> i64 {
    div_round_half_up(
        i128::from(leg_total) * i128::from(refunded),
        i128::from(amount),
    ) as i64
}

/// A non-negative decimal rounded half up to a whole number.
fn decimal_round_half_up(d: Decimal) -> i64 {
    let rounded = d.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    i64::try_from(rounded.mantissa() / 10_i128.pow(rounded.scale())).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn the_worked_examples_of_the_docs() {
        // 10% of 30.00 capped at 5.00; 10% of 80.00 → capped.
        let ten = CampaignKind::PercentOff {
            percent: dec("10"),
            max_discount_minor: Some(500),
        };
        assert_eq!(campaign_discount(ten, 3000), 300);
        assert_eq!(campaign_discount(ten, 8000), 500);
        // Never the whole amount.
        let all = CampaignKind::PercentOff {
            percent: dec("99.9999"),
            max_discount_minor: None,
        };
        assert_eq!(campaign_discount(all, 1), 0);
        // 500 points are 5.00 CNY; 250 JPY points are 2 yen (2.5 rounded down), costing 200.
        assert_eq!(points_redemption(500, 2, 10_000), (500, 500));
        assert_eq!(points_redemption(250, 0, 10_000), (200, 2));
        assert_eq!(points_earned(1234, 2, dec("1")), 12);
        assert_eq!(points_earned(1000, 2, dec("2.5")), 25);
        // 100.00 HKD at 0.92 plus 50 bps: 92.46 CNY.
        assert_eq!(fx_charge(10_000, 2, 2, dec("0.92"), 50), Some(9246));
        assert_eq!(refund_share(19, 2000, 5000), 8); // 7.6 → 8
    }
}
