//! The amount parser on any text, in every currency: it never panics, and an
//! accepted amount prints canonically and parses back to the same minor units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qrgate_domain::{money, Currency, Money};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = money::parse_decimal(text);
    for currency in Currency::all() {
        if let Ok(amount) = Money::parse(text, currency) {
            let printed = amount.to_string();
            assert_eq!(
                Money::parse(&printed, currency),
                Ok(amount),
                "{text:?} printed as {printed:?}"
            );
            assert_eq!(money::format_minor(amount.minor(), currency), printed);
        }
    }
});
