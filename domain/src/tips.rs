//! Tips and convenience fees (EMV tags 55–57): what an order lets the customer add on
//! top of its amount. A tip is the customer's choice (`55=01`, the wallet asks); a
//! convenience fee is the shop's charge, fixed (`55=02`, tag 56) or a percentage of the
//! amount (`55=03`, tag 57). Both are credited whole to the merchant on a leg of their
//! own; the platform's fee is taken on the amount only. The fee is computed here once,
//! when the order is made, and stored with it; the tip cap is computed again in SQL
//! (`tip_cap_for`), and `tests/tests/api/formulas.rs` compares the two.

use crate::{money::div_round_half_up, Currency, Money};
use std::fmt;

/// The largest tip a shop may allow, in percent of the order's amount.
pub const TIP_MAX_PERCENT_LIMIT: i32 = 100;

/// What an order lets the customer add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipPolicy {
    /// Nothing: the customer pays the amount.
    None,
    /// The wallet asks the customer for a tip (`55=01`).
    Prompt,
    /// A fixed convenience fee in the order's currency (`55=02`, tag 56).
    FixedFee(Money),
    /// A convenience fee of a percentage of the amount (`55=03`, tag 57).
    PercentageFee(FeePercent),
}

/// A convenience fee's percentage: 0.01 % to 99.99 %, held in hundredths of a percent
/// (EMV tag 57's range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeePercent(u16);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TipError {
    #[error("tip_policy must be one of none, prompt, fixed_fee, percentage_fee")]
    UnknownPolicy,
    #[error("{0} is required with this tip_policy")]
    Missing(&'static str),
    #[error("{0} is only allowed with tip_policy {1}")]
    NotAllowed(&'static str, &'static str),
    #[error("must be a percentage from 0.01 to 99.99 with at most two decimals, such as \"2.5\"")]
    BadPercent,
    #[error("{0}")]
    BadFee(crate::money::MoneyError),
}

impl FeePercent {
    /// Parses `"2.5"`, `"0.01"`, `"15"`: at most two decimals, 0.01 to 99.99.
    pub fn parse(s: &str) -> Result<Self, TipError> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || int.len() > 2
            || frac.len() > 2
            || (s.contains('.') && frac.is_empty())
            || !digits(int)
            || !digits(frac)
        {
            return Err(TipError::BadPercent);
        }
        let hundredths = int.parse::<u16>().map_err(|_| TipError::BadPercent)? * 100
            + format!("{frac:0<2}")
                .parse::<u16>()
                .map_err(|_| TipError::BadPercent)?;
        Self::from_hundredths(i32::from(hundredths))
    }

    /// From hundredths of a percent (basis points), as stored.
    pub fn from_hundredths(hundredths: i32) -> Result<Self, TipError> {
        u16::try_from(hundredths)
            .ok()
            .filter(|h| (1..=9999).contains(h))
            .map(FeePercent)
            .ok_or(TipError::BadPercent)
    }

    pub fn hundredths(self) -> i32 {
        i32::from(self.0)
    }
}

/// The shortest form: `2.5`, `0.01`, `15` (as tag 57 and the API carry it).
impl fmt::Display for FeePercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (int, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{int}"),
            _ if frac % 10 == 0 => write!(f, "{int}.{}", frac / 10),
            _ => write!(f, "{int}.{frac:02}"),
        }
    }
}

impl TipPolicy {
    /// The wire names, in the order of tag 55's values.
    pub const NAMES: [&'static str; 4] = ["none", "prompt", "fixed_fee", "percentage_fee"];

    /// A policy from the API's three fields: `tip_policy`, `convenience_fee` (with
    /// `fixed_fee`, in `currency`) and `convenience_fee_percent` (with `percentage_fee`).
    pub fn parse(
        policy: &str,
        fee: Option<&str>,
        percent: Option<&str>,
        currency: Currency,
    ) -> Result<Self, TipError> {
        let only = |field: &'static str, present: bool, with: &'static str| {
            if present {
                Err(TipError::NotAllowed(field, with))
            } else {
                Ok(())
            }
        };
        match policy {
            "none" | "prompt" => {
                only("convenience_fee", fee.is_some(), "fixed_fee")?;
                only(
                    "convenience_fee_percent",
                    percent.is_some(),
                    "percentage_fee",
                )?;
                Ok(if policy == "none" {
                    TipPolicy::None
                } else {
                    TipPolicy::Prompt
                })
            }
            "fixed_fee" => {
                only(
                    "convenience_fee_percent",
                    percent.is_some(),
                    "percentage_fee",
                )?;
                let fee = fee.ok_or(TipError::Missing("convenience_fee"))?;
                Money::parse(fee, currency)
                    .map(TipPolicy::FixedFee)
                    .map_err(TipError::BadFee)
            }
            "percentage_fee" => {
                only("convenience_fee", fee.is_some(), "fixed_fee")?;
                let percent = percent.ok_or(TipError::Missing("convenience_fee_percent"))?;
                FeePercent::parse(percent).map(TipPolicy::PercentageFee)
            }
            _ => Err(TipError::UnknownPolicy),
        }
    }

    /// A policy as stored: its name, the fixed fee in minor units, the percentage in
    /// hundredths. `None` for a row that breaks the table's own checks.
    pub fn from_stored(
        policy: &str,
        fee_minor: Option<i64>,
        percent_hundredths: Option<i32>,
        currency: Currency,
    ) -> Option<Self> {
        match (policy, fee_minor, percent_hundredths) {
            ("none", None, None) => Some(TipPolicy::None),
            ("prompt", None, None) => Some(TipPolicy::Prompt),
            ("fixed_fee", Some(fee), None) => Money::from_minor(fee, currency)
                .ok()
                .map(TipPolicy::FixedFee),
            ("percentage_fee", None, Some(p)) => FeePercent::from_hundredths(p)
                .ok()
                .map(TipPolicy::PercentageFee),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        let index = match self {
            TipPolicy::None => 0,
            TipPolicy::Prompt => 1,
            TipPolicy::FixedFee(_) => 2,
            TipPolicy::PercentageFee(_) => 3,
        };
        Self::NAMES[index]
    }

    /// The fixed fee in minor units, as stored (NULL otherwise).
    pub fn fixed_fee_minor(self) -> Option<i64> {
        match self {
            TipPolicy::FixedFee(fee) => Some(fee.minor()),
            _ => None,
        }
    }

    /// The percentage in hundredths, as stored (NULL otherwise).
    pub fn percent_hundredths(self) -> Option<i32> {
        match self {
            TipPolicy::PercentageFee(p) => Some(p.hundredths()),
            _ => None,
        }
    }

    /// The convenience fee on an order of `amount_minor`: the fixed fee, or the
    /// percentage of the amount rounded half up (0 without a fee).
    pub fn convenience_fee_minor(self, amount_minor: i64) -> i64 {
        match self {
            TipPolicy::FixedFee(fee) => fee.minor(),
            TipPolicy::PercentageFee(p) => convenience_fee_minor(amount_minor, p.hundredths()),
            TipPolicy::None | TipPolicy::Prompt => 0,
        }
    }
}

/// `amount_minor × percent / 100`, the percentage in hundredths, rounded half up.
pub fn convenience_fee_minor(amount_minor: i64, percent_hundredths: i32) -> i64 {
    div_round_half_up(
        i128::from(amount_minor) * i128::from(percent_hundredths),
        10_000,
    ) as i64
}

/// The largest tip on an order of `amount_minor` at a shop allowing `tip_max_percent`
/// of it, rounded down (the SQL's `tip_cap_for`).
pub fn tip_cap_minor(amount_minor: i64, tip_max_percent: i32) -> i64 {
    (i128::from(amount_minor) * i128::from(tip_max_percent) / 100) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_in_range_and_print_shortest() {
        for (text, hundredths, shown) in [
            ("2.5", 250, "2.5"),
            ("0.01", 1, "0.01"),
            ("15", 1500, "15"),
            ("99.99", 9999, "99.99"),
            ("3.10", 310, "3.1"),
            ("07", 700, "7"),
        ] {
            let p = FeePercent::parse(text).unwrap();
            assert_eq!(p.hundredths(), hundredths, "{text}");
            assert_eq!(p.to_string(), shown);
        }
        for bad in [
            "0", "0.00", "100", "2.", ".5", "2.555", "-1", "1e1", "", " 2", "２",
        ] {
            assert_eq!(FeePercent::parse(bad), Err(TipError::BadPercent), "{bad:?}");
        }
    }

    #[test]
    fn policies_take_exactly_their_own_fields() {
        let cny = Currency::parse("CNY").unwrap();
        assert_eq!(
            TipPolicy::parse("prompt", None, None, cny),
            Ok(TipPolicy::Prompt)
        );
        assert_eq!(
            TipPolicy::parse("fixed_fee", Some("1.50"), None, cny),
            Ok(TipPolicy::FixedFee(Money::parse("1.50", cny).unwrap()))
        );
        assert_eq!(
            TipPolicy::parse("fixed_fee", None, None, cny),
            Err(TipError::Missing("convenience_fee"))
        );
        assert_eq!(
            TipPolicy::parse("prompt", Some("1"), None, cny),
            Err(TipError::NotAllowed("convenience_fee", "fixed_fee"))
        );
        assert_eq!(
            TipPolicy::parse("percentage_fee", Some("1"), Some("2"), cny),
            Err(TipError::NotAllowed("convenience_fee", "fixed_fee"))
        );
        assert!(TipPolicy::parse("fixed_fee", Some("0"), None, cny).is_err());
        assert!(TipPolicy::parse("fixed_fee", Some("1.001"), None, cny).is_err());
        assert_eq!(
            TipPolicy::parse("tip", None, None, cny),
            Err(TipError::UnknownPolicy)
        );
        for name in TipPolicy::NAMES {
            let p = match name {
                "fixed_fee" => TipPolicy::parse(name, Some("2"), None, cny),
                "percentage_fee" => TipPolicy::parse(name, None, Some("2"), cny),
                _ => TipPolicy::parse(name, None, None, cny),
            }
            .unwrap();
            assert_eq!(p.name(), name);
            assert_eq!(
                TipPolicy::from_stored(name, p.fixed_fee_minor(), p.percent_hundredths(), cny),
                Some(p)
            );
        }
    }

    #[test]
    fn fees_and_caps_round_as_documented() {
        assert_eq!(convenience_fee_minor(10_000, 250), 250);
        assert_eq!(convenience_fee_minor(1_999, 250), 50); // 49.975 → 50
        assert_eq!(convenience_fee_minor(1_980, 250), 50); // 49.5 → 50 (half up)
        assert_eq!(convenience_fee_minor(1, 9999), 1);
        assert_eq!(convenience_fee_minor(1, 1), 0);
        assert_eq!(tip_cap_minor(1_999, 25), 499);
        assert_eq!(tip_cap_minor(i64::MAX / 10, 100), i64::MAX / 10);
    }
}
