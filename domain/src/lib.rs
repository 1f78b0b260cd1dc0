//! qrgate's domain: the types every boundary parses into, and the wire rules of
//! docs/contract.md that are pure computation. Nothing here does I/O, so the gateway, the
//! merchant SDK and the simulator share one implementation of each rule.

pub mod country;
pub mod currency;
pub mod emv;
pub mod emv_lint;
pub mod error_code;
pub mod ids;
pub mod money;
pub mod pricing;
pub mod signing;
pub mod text;
pub mod time_zone;
pub mod tips;

pub use currency::Currency;
pub use money::{Money, MoneyError};
