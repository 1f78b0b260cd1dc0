//! Identifiers: ones the gateway mints and ones callers choose.
//!
//! Minted ids are a short prefix and a random base32 part, at most 25 characters of
//! `[A-Za-z0-9_]` so they fit every EMV field (docs/contract.md §5).

use rand::RngCore;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// The longest id the gateway mints or accepts in a path.
pub const ID_CHARS_MAX: usize = 25;

/// `count` random base32 characters (5 bits each) from the OS-seeded CSPRNG.
pub fn random_base32(count: usize) -> String {
    let mut bytes = vec![0u8; count];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| BASE32[usize::from(b & 31)] as char)
        .collect()
}

/// A new id: `prefix_` and 20 base32 characters (100 bits).
pub fn mint(prefix: &str) -> String {
    let id = format!("{prefix}_{}", random_base32(20));
    debug_assert!(is_gateway_id(&id));
    id
}

/// A new order token: 26 base32 characters, 130 bits, unguessable.
pub fn mint_order_token() -> String {
    random_base32(26)
}

/// Whether `s` has the shape of an id the gateway mints (used to reject path
/// segments early: anything else cannot exist and answers 404).
pub fn is_gateway_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= ID_CHARS_MAX
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Caller-chosen ids (`wallet_txn_id`, `webhook-id`): 1–64 of `[A-Za-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")]
pub struct InvalidClientId;

impl ClientId {
    pub const CHARS_MAX: usize = 64;

    pub fn parse(s: &str) -> Result<Self, InvalidClientId> {
        let ok = !s.is_empty()
            && s.len() <= Self::CHARS_MAX
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| ClientId(s.to_owned())).ok_or(InvalidClientId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_fit_emv_fields() {
        for prefix in ["ord", "mch", "acc", "pay", "key", "wal", "sec"] {
            let id = mint(prefix);
            assert!(is_gateway_id(&id), "{id}");
            assert!(id.len() <= ID_CHARS_MAX);
        }
        assert_eq!(mint_order_token().len(), 26);
        assert_ne!(mint("ord"), mint("ord"));
    }

    #[test]
    fn client_ids_are_bounded() {
        assert!(ClientId::parse("txn-1_A").is_ok());
        assert!(ClientId::parse(&"a".repeat(64)).is_ok());
        assert!(ClientId::parse(&"a".repeat(65)).is_err());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("é").is_err());
    }
}
