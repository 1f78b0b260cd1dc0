//! A wallet's signed POST as the gateway receives it: the three Standard Webhooks
//! headers and a body. Signature verification never panics and accepts only a
//! signature made with the secret; a body that verifies is parsed exactly as the
//! handler parses it, which must answer a typed error rather than panic.
//!
//! Input: one byte picks the endpoint, one byte whether to sign the body properly
//! (so the fuzzer reaches the parsers), then `id\ntimestamp\nsignature\nbody`.
#![no_main]

use gateway::api::wallet::{parse_wallet_post, WalletPost};
use libfuzzer_sys::fuzz_target;
use qrgate_domain::signing::{verify, SignedHeaders, SigningSecret};

const NOW_UNIX: i64 = 1_767_225_600;
const KINDS: [WalletPost; 5] = [
    WalletPost::Customers,
    WalletPost::TopUps,
    WalletPost::Transfers,
    WalletPost::Quotes,
    WalletPost::Payments,
];

fuzz_target!(|data: &[u8]| {
    let [kind, sign_properly, rest @ ..] = data else {
        return;
    };
    let mut parts = rest.splitn(4, |b| *b == b'\n');
    let (Some(id), Some(timestamp), Some(signature), Some(body)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let (Ok(id), Ok(timestamp), Ok(signature)) = (
        std::str::from_utf8(id),
        std::str::from_utf8(timestamp),
        std::str::from_utf8(signature),
    ) else {
        return;
    };
    let secret =
        SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
    let proper;
    let signature = if sign_properly % 2 == 0 {
        match timestamp.parse::<i64>() {
            Ok(ts) => {
                proper = secret.sign(id, ts, body);
                proper.as_str()
            }
            Err(_) => signature,
        }
    } else {
        signature
    };
    let headers = SignedHeaders {
        id,
        timestamp,
        signature,
    };
    let verified = verify(std::slice::from_ref(&secret), headers, body, NOW_UNIX);
    if verified.is_ok() && sign_properly % 2 == 1 {
        let ts: i64 = timestamp.parse().expect("a verified timestamp parses");
        let expected = secret.sign(id, ts, body);
        assert!(
            signature.split(' ').any(|s| s == expected),
            "forged: {signature:?}"
        );
    }
    if verified.is_ok() {
        let _ = parse_wallet_post(KINDS[usize::from(*kind) % KINDS.len()], body);
    }
});
