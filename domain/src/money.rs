//! Exact money: a positive amount in integer minor units of a currency.
//!
//! Amounts cross the wire as decimal strings (`^(0|[1-9][0-9]*)(\.[0-9]+)?$`), are
//! parsed with `rust_decimal`, and are kept as `i64` minor units inside.

use crate::Currency;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The longest canonical amount EMV tag 54 can carry.
pub const AMOUNT_CHARS_MAX: usize = 13;

/// A strictly positive amount of one currency, at most 13 characters in canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("amount must be a decimal string such as \"12.30\"")]
    NotADecimal,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount has more decimal places than {currency} allows ({minor_units})")]
    TooManyDecimals {
        currency: Currency,
        minor_units: u32,
    },
    #[error("amount is too large: at most {AMOUNT_CHARS_MAX} characters in canonical form")]
    TooLarge,
}

impl Money {
    /// Parses a wire amount for `currency`. Rejects (never rounds) extra decimal places.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        Self::from_minor(parse_minor(amount, currency)?, currency)
    }

    /// An amount from integer minor units (as stored in the ledger).
    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        let money = Money { minor, currency };
        if money.to_string().len() > AMOUNT_CHARS_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(money)
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.minor_units())
    }
}

/// Parses a non-negative wire amount (zero allowed: limits, thresholds) into minor
/// units of `currency`. Rejects (never rounds) extra decimal places.
pub fn parse_minor(amount: &str, currency: Currency) -> Result<i64, MoneyError> {
    if !is_decimal_string(amount) {
        return Err(MoneyError::NotADecimal);
    }
    let decimals = amount.split_once('.').map_or(0, |(_, frac)| frac.len());
    if decimals > currency.minor_units() as usize {
        return Err(MoneyError::TooManyDecimals {
            currency,
            minor_units: currency.minor_units(),
        });
    }
    let value = Decimal::from_str(amount).map_err(|_| MoneyError::TooLarge)?;
    let scaled = value
        .checked_mul(Decimal::from(10_i64.pow(currency.minor_units())))
        .ok_or(MoneyError::TooLarge)?;
    let minor = i64::try_from(scaled.trunc()).map_err(|_| MoneyError::TooLarge)?;
    if Decimal::from(minor) != scaled || format_minor(minor, currency).len() > AMOUNT_CHARS_MAX {
        return Err(MoneyError::TooLarge);
    }
    Ok(minor)
}

/// A non-negative wire amount whose currency is not known here (e.g. `max_charged`, in
/// the paying account's currency): the decimal-string rule and at most 13 characters.
pub fn parse_decimal(amount: &str) -> Result<Decimal, MoneyError> {
    if !is_decimal_string(amount) {
        return Err(MoneyError::NotADecimal);
    }
    if amount.len() > AMOUNT_CHARS_MAX {
        return Err(MoneyError::TooLarge);
    }
    Decimal::from_str(amount).map_err(|_| MoneyError::TooLarge)
}

/// Formats signed minor units at the currency's scale: `1230` CNY → `"12.30"`.
pub fn format_minor(minor: i64, currency: Currency) -> String {
    let scale = currency.minor_units();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if scale == 0 {
        return format!("{sign}{abs}");
    }
    let unit = 10_u64.pow(scale);
    format!(
        "{sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = scale as usize
    )
}

/// Canonical form at the currency's scale, as EMV tag 54 and every response carry it.
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_minor(self.minor, self.currency))
    }
}

fn is_decimal_string(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    int_ok && frac.is_none_or(digits)
}

/// Rounds `numerator / denominator` half-up, for non-negative operands.
pub fn div_round_half_up(numerator: i128, denominator: i128) -> i128 {
    assert!(
        numerator >= 0 && denominator > 0,
        "half-up division of negatives"
    );
    (numerator * 2 + denominator) / (denominator * 2)
}

/// The fee on `credited_minor` at `rate_bps` basis points, rounded half-up.
pub fn fee_minor(credited_minor: i64, rate_bps: i32) -> i64 {
    div_round_half_up(i128::from(credited_minor) * i128::from(rate_bps), 10_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(c: &str) -> Currency {
        Currency::parse(c).unwrap()
    }

    #[test]
    fn parses_and_formats_at_currency_scale() {
        let m = Money::parse("12.3", cur("CNY")).unwrap();
        assert_eq!(m.minor(), 1230);
        assert_eq!(m.to_string(), "12.30");
        assert_eq!(
            Money::parse("1500", cur("JPY")).unwrap().to_string(),
            "1500"
        );
        assert_eq!(
            Money::parse("0.005", cur("KWD")).unwrap().to_string(),
            "0.005"
        );
        assert_eq!(Money::parse("0.01", cur("CNY")).unwrap().minor(), 1);
    }

    #[test]
    fn rejects_bad_amounts() {
        let cny = cur("CNY");
        for bad in [
            "", "-1", "+1", "1.", ".5", "01", "1e3", " 1", "1,00", "abc", "1.2.3",
        ] {
            assert_eq!(
                Money::parse(bad, cny),
                Err(MoneyError::NotADecimal),
                "{bad}"
            );
        }
        assert_eq!(Money::parse("0", cny), Err(MoneyError::NotPositive));
        assert_eq!(Money::parse("0.00", cny), Err(MoneyError::NotPositive));
        assert!(matches!(
            Money::parse("1.001", cny),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Money::parse("1.5", cur("JPY")),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert_eq!(
            Money::parse("9999999999.99", cny).unwrap().minor(),
            999_999_999_999
        );
        assert_eq!(Money::parse("10000000000", cny), Err(MoneyError::TooLarge));
        assert_eq!(
            Money::parse("99999999999999999999999999999999", cny),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            Money::parse("9999999999999", cur("JPY")).unwrap().minor(),
            9_999_999_999_999
        );
    }

    #[test]
    fn fee_rounds_half_up() {
        assert_eq!(fee_minor(10_000, 38), 38);
        assert_eq!(fee_minor(1234, 38), 5); // 4.6892 → 5
        assert_eq!(fee_minor(1316, 38), 5); // 5.0008 → 5
        assert_eq!(fee_minor(1250, 4), 1); // 0.5 → 1
        assert_eq!(fee_minor(1249, 4), 0); // 0.4996 → 0
        assert_eq!(fee_minor(1, 0), 0);
    }

    #[test]
    fn formats_negative_minor_units() {
        assert_eq!(format_minor(-5, cur("CNY")), "-0.05");
        assert_eq!(format_minor(-1234, cur("KWD")), "-1.234");
        assert_eq!(format_minor(0, cur("CNY")), "0.00");
    }
}
