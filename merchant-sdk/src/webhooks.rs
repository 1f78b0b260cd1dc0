//! Standard Webhooks signatures, both ways: [`verify`] what the gateway delivers to a
//! merchant's webhook endpoint; [`sign`] as a wallet (or a test) must sign requests.

use qrgate_domain::signing::{self, SignedHeaders, SigningSecret};
pub use qrgate_domain::signing::{SignatureError, TIMESTAMP_TOLERANCE_SECONDS};
use reqwest::header::HeaderMap;

/// Why a delivery was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// The secret given is not `whsec_` and base64.
    #[error("the webhook secret is not a `whsec_…` secret")]
    InvalidSecret,
    /// The headers are missing, the timestamp too old, or no signature matches.
    #[error(transparent)]
    Signature(#[from] SignatureError),
}

/// Verifies a delivery: `webhook-id`, `webhook-timestamp` (within ±300 s of `now_unix`)
/// and `webhook-signature` (any of its space-separated `v1,` signatures) over the raw
/// body, in constant time. During a secret rotation the gateway signs with both
/// secrets, so either the old or the new one verifies.
pub fn verify(
    secret: &str,
    headers: &HeaderMap,
    raw_body: &[u8],
    now_unix: i64,
) -> Result<(), WebhookError> {
    let secret = SigningSecret::parse(secret).map_err(|_| WebhookError::InvalidSecret)?;
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let signed = SignedHeaders {
        id: get("webhook-id"),
        timestamp: get("webhook-timestamp"),
        signature: get("webhook-signature"),
    };
    if signed.id.is_empty() || signed.timestamp.is_empty() || signed.signature.is_empty() {
        return Err(SignatureError::MissingHeaders.into());
    }
    signing::verify(&[secret], signed, raw_body, now_unix).map_err(Into::into)
}

/// The `webhook-signature` value (`v1,<base64>`) for `content` — a POST body, or a
/// GET's request target.
pub fn sign(
    secret: &str,
    message_id: &str,
    timestamp_unix: i64,
    content: &[u8],
) -> Result<String, WebhookError> {
    let secret = SigningSecret::parse(secret).map_err(|_| WebhookError::InvalidSecret)?;
    Ok(secret.sign(message_id, timestamp_unix, content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        h.insert("webhook-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    #[test]
    fn verifies_a_genuine_delivery_and_rejects_a_tampered_body() {
        let secret = SigningSecret::generate().expose();
        let body = br#"{"type":"order.paid"}"#;
        let sig = sign(&secret, "evt_1", 1_700_000_000, body).unwrap();
        assert_eq!(
            verify(
                &secret,
                &headers("evt_1", 1_700_000_000, &sig),
                body,
                1_700_000_010
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &secret,
                &headers("evt_1", 1_700_000_000, &sig),
                br#"{"type":"order.paid "}"#,
                1_700_000_010
            ),
            Err(WebhookError::Signature(SignatureError::Invalid))
        );
    }

    #[test]
    fn rejects_an_old_timestamp() {
        let secret = SigningSecret::generate().expose();
        let sig = sign(&secret, "evt_1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(
            verify(
                &secret,
                &headers("evt_1", 1_700_000_000, &sig),
                b"{}",
                1_700_000_000 + 301
            ),
            Err(WebhookError::Signature(SignatureError::Stale))
        );
    }

    #[test]
    fn accepts_either_secret_during_a_rotation() {
        let (old, new) = (
            SigningSecret::generate().expose(),
            SigningSecret::generate().expose(),
        );
        let both = format!(
            "{} {}",
            sign(&old, "evt_2", 1_700_000_000, b"{}").unwrap(),
            sign(&new, "evt_2", 1_700_000_000, b"{}").unwrap()
        );
        let h = headers("evt_2", 1_700_000_000, &both);
        assert_eq!(verify(&old, &h, b"{}", 1_700_000_000), Ok(()));
        assert_eq!(verify(&new, &h, b"{}", 1_700_000_000), Ok(()));
        let stranger = SigningSecret::generate().expose();
        assert!(verify(&stranger, &h, b"{}", 1_700_000_000).is_err());
        assert_eq!(
            verify("nope", &h, b"{}", 1_700_000_000),
            Err(WebhookError::InvalidSecret)
        );
    }
}
