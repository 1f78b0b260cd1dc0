//! ISO 4217 currencies with their numeric codes and minor units.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One row of ISO 4217.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CurrencyInfo {
    pub code: &'static str,
    pub numeric: &'static str,
    pub minor_units: u32,
}

macro_rules! currencies {
    ($(($code:literal, $numeric:literal, $minor:literal)),* $(,)?) => {
        const TABLE: &[CurrencyInfo] = &[
            $(CurrencyInfo { code: $code, numeric: $numeric, minor_units: $minor }),*
        ];
    };
}

// The currencies qrgate settles in. Adding a row is all it takes to accept another.
currencies![
    ("AED", "784", 2),
    ("AUD", "036", 2),
    ("BHD", "048", 3),
    ("BRL", "986", 2),
    ("CAD", "124", 2),
    ("CHF", "756", 2),
    ("CLP", "152", 0),
    ("CNY", "156", 2),
    ("EUR", "978", 2),
    ("GBP", "826", 2),
    ("HKD", "344", 2),
    ("IDR", "360", 2),
    ("INR", "356", 2),
    ("IQD", "368", 3),
    ("ISK", "352", 0),
    ("JOD", "400", 3),
    ("JPY", "392", 0),
    ("KRW", "410", 0),
    ("KWD", "414", 3),
    ("LYD", "434", 3),
    ("MOP", "446", 2),
    ("MXN", "484", 2),
    ("MYR", "458", 2),
    ("NZD", "554", 2),
    ("OMR", "512", 3),
    ("PHP", "608", 2),
    ("SAR", "682", 2),
    ("SGD", "702", 2),
    ("THB", "764", 2),
    ("TND", "788", 3),
    ("TWD", "901", 2),
    ("UGX", "800", 0),
    ("USD", "840", 2),
    ("VND", "704", 0),
    ("ZAR", "710", 2),
];

/// A currency qrgate knows. Only obtainable by parsing a known code, so a
/// `Currency` always has a numeric code and a number of minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static CurrencyInfo);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown currency `{0}`: expected an ISO 4217 alphabetic code such as CNY")]
pub struct UnknownCurrency(pub String);

/// Loyalty points: a ledger currency of whole points, never money a merchant or wallet
/// names (`Currency::parse` refuses it).
const POINTS: CurrencyInfo = CurrencyInfo {
    code: "PTS",
    numeric: "000",
    minor_units: 0,
};

impl Currency {
    /// A currency money may be stated in (ISO 4217). Refuses PTS.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        TABLE
            .iter()
            .find(|c| c.code == code)
            .map(Currency)
            .ok_or_else(|| UnknownCurrency(code.chars().take(8).collect()))
    }

    /// A currency a ledger account holds: any of `parse`, or PTS.
    pub fn from_ledger(code: &str) -> Result<Self, UnknownCurrency> {
        if code == POINTS.code {
            return Ok(Currency::points());
        }
        Self::parse(code)
    }

    /// Loyalty points.
    pub fn points() -> Self {
        Currency(&POINTS)
    }

    /// Every currency qrgate knows, points included.
    pub fn all() -> impl Iterator<Item = Currency> {
        TABLE.iter().chain(std::iter::once(&POINTS)).map(Currency)
    }

    pub fn from_numeric(numeric: &str) -> Option<Self> {
        TABLE.iter().find(|c| c.numeric == numeric).map(Currency)
    }

    pub fn code(self) -> &'static str {
        self.0.code
    }

    pub fn numeric(self) -> &'static str {
        self.0.numeric
    }

    pub fn minor_units(self) -> u32 {
        self.0.minor_units
    }
}

impl std::str::FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, UnknownCurrency> {
        Currency::parse(s)
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.code)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_minor_units_and_numeric_codes() {
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("CNY").unwrap().numeric(), "156");
        assert_eq!(Currency::from_numeric("344").unwrap().code(), "HKD");
        assert!(Currency::parse("cny").is_err());
        assert!(Currency::parse("XXX").is_err());
    }

    #[test]
    fn table_has_no_duplicates() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.code, b.code);
                assert_ne!(a.numeric, b.numeric);
            }
        }
    }
}
