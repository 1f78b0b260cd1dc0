//! The EMV parser on any text: it never panics, and whatever it accepts as an order
//! QR encodes, and that encoding parses back to the same order.
//!
//! Random mutations almost always break the CRC, which the parser checks first, so
//! each input is also tried with its CRC (tag 63) recomputed: that reaches the TLV
//! layout and the order fields behind the check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qrgate_domain::emv::{self, OrderQr};

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    check(payload);
    let body = payload.rfind("6304").map_or(payload, |at| &payload[..at]);
    let mut with_crc = format!("{body}6304");
    with_crc.push_str(&format!(
        "{:04X}",
        emv::crc16_ccitt_false(with_crc.as_bytes())
    ));
    check(&with_crc);
});

fn check(payload: &str) {
    let _ = emv::parse_payload(payload);
    if let Ok(qr) = OrderQr::parse(payload) {
        let encoded = qr.encode().expect("a parsed order QR encodes");
        assert_eq!(OrderQr::parse(&encoded).as_ref(), Ok(&qr));
    }
}
