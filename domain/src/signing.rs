//! Standard Webhooks signatures (HMAC-SHA256), as wallets sign their requests and
//! the gateway signs its deliveries to merchants (docs/contract.md §2).
//!
//! The signed content is `"{webhook-id}.{webhook-timestamp}.{content}"`, where content
//! is the raw body of a POST or the request target of a GET.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// How far a `webhook-timestamp` may be from the verifier's clock.
pub const TIMESTAMP_TOLERANCE_SECONDS: i64 = 300;
const SECRET_PREFIX: &str = "whsec_";
const SECRET_BYTES_MIN: usize = 24;
const SECRET_BYTES_MAX: usize = 64;
/// The most signatures one header may carry before it is rejected outright.
const SIGNATURES_PER_HEADER_MAX: usize = 8;

/// A signing secret. Its bytes never appear in `Debug` output.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a signing secret is `whsec_` and the base64 of 24 to 64 random bytes")]
pub struct InvalidSecret;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the webhook-id, webhook-timestamp and webhook-signature headers are required")]
    MissingHeaders,
    #[error("webhook-timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 300 seconds from the gateway's clock")]
    Stale,
    #[error("no signature matches an active secret")]
    Invalid,
}

impl SigningSecret {
    /// A fresh 32-byte secret from the OS-seeded CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        SigningSecret(bytes)
    }

    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let encoded = text.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        let bytes = B64.decode(encoded).map_err(|_| InvalidSecret)?;
        if !(SECRET_BYTES_MIN..=SECRET_BYTES_MAX).contains(&bytes.len()) {
            return Err(InvalidSecret);
        }
        Ok(SigningSecret(bytes))
    }

    /// The `whsec_…` text, shown once to its owner.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.0))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, content: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(content);
        mac
    }

    /// One `v1,<base64>` signature.
    pub fn sign(&self, msg_id: &str, timestamp: i64, content: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, content).finalize().into_bytes();
        format!("v1,{}", B64.encode(tag))
    }
}

/// The three Standard Webhooks headers as received.
#[derive(Clone, Copy, Debug)]
pub struct SignedHeaders<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signature: &'a str,
}

/// Checks the timestamp against `now_unix`, then that some `v1` signature in the
/// header verifies under some secret. Comparison is constant time (`verify_slice`).
pub fn verify(
    secrets: &[SigningSecret],
    headers: SignedHeaders<'_>,
    content: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let timestamp: i64 = headers
        .timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now_unix - timestamp).abs() > TIMESTAMP_TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let candidates: Vec<Vec<u8>> = headers
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .take(SIGNATURES_PER_HEADER_MAX)
        .filter_map(|b64| B64.decode(b64).ok())
        .collect();
    let mut valid = false;
    for secret in secrets {
        let mac = secret.mac(headers.id, timestamp, content);
        for candidate in &candidates {
            // Evaluate every pair so timing does not reveal which secret matched.
            valid |= mac.clone().verify_slice(candidate).is_ok();
        }
    }
    valid.then_some(()).ok_or(SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id,
            timestamp: ts,
            signature: sig,
        }
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn verifies_any_of_several_signatures_and_secrets() {
        let (a, b) = (SigningSecret::generate(), SigningSecret::generate());
        let body = b"{}";
        let sig_b = b.sign("m1", 1000, body);
        let header = format!("v1,AAAA {sig_b}");
        assert_eq!(
            verify(
                &[a.clone(), b.clone()],
                headers("m1", "1000", &header),
                body,
                1000
            ),
            Ok(())
        );
        assert_eq!(
            verify(&[a], headers("m1", "1000", &header), body, 1000),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(
                std::slice::from_ref(&b),
                headers("m1", "1000", &sig_b),
                b"{ }",
                1000
            ),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(
                std::slice::from_ref(&b),
                headers("m2", "1000", &sig_b),
                body,
                1000
            ),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify(
                std::slice::from_ref(&b),
                headers("m1", "1000", &sig_b),
                body,
                1301
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&[b], headers("m1", "x", &sig_b), body, 1000),
            Err(SignatureError::BadTimestamp)
        );
    }

    #[test]
    fn secrets_round_trip_and_never_print() {
        let s = SigningSecret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text).unwrap().0, s.0);
        assert!(!format!("{s:?}").contains(&text[6..]));
        assert_eq!(
            SigningSecret::parse("whsec_AAAA").unwrap_err(),
            InvalidSecret
        );
        assert_eq!(SigningSecret::parse("nope").unwrap_err(), InvalidSecret);
    }
}
