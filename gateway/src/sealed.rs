//! Secrets at rest. The wallets' signing secrets and the merchants' and wallets' webhook secrets are
//! kept in PostgreSQL sealed with AES-256-GCM under a key-encryption key the database
//! never sees (`QRGATE_SECRETS_KEY` or `QRGATE_SECRETS_KEY_FILE`: 32 random bytes,
//! standard base64). A sealed value names its key and is bound to its row: the
//! associated data is what the value is and the id of the row it belongs to, so a
//! ciphertext copied to another row, or another column kind, does not open.
//!
//! Stored form: `sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, where the
//! key id is the first 8 bytes of the key's SHA-256, in hex (it identifies, and reveals
//! nothing of, a 256-bit key).
//!
//! A change of key: every replica is given the new key as current and the old one as
//! previous (`QRGATE_SECRETS_KEY_PREVIOUS[_FILE]`), `gateway rotate-secrets-key`
//! re-seals every value under the new key, then the previous key is removed.

use aes_gcm::{
    aead::{Aead, Payload},
    Aes256Gcm, KeyInit, Nonce,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use qrgate_domain::signing::SigningSecret;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::{fmt, sync::Arc};

const PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;
const KEY_BYTES: usize = 32;

/// What a sealed value is: part of its associated data, with its row's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// `wallet_secrets.secret`, bound to the secret's id.
    WalletSigning,
    /// `merchants.webhook_secret` and `webhook_secret_previous` (a rotation moves the
    /// value from one to the other), bound to the merchant's id.
    MerchantWebhook,
    /// `second_factors.secret` (a TOTP secret), bound to the factor's id.
    SecondFactor,
    /// `wallets.webhook_secret` (signs the wallet's events), bound to the wallet's id.
    WalletWebhook,
}

impl SecretKind {
    fn label(self) -> &'static str {
        match self {
            SecretKind::WalletSigning => "wallet_secrets.secret",
            SecretKind::MerchantWebhook => "merchants.webhook_secret",
            SecretKind::SecondFactor => "second_factors.secret",
            SecretKind::WalletWebhook => "wallets.webhook_secret",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the stored value is not sealed")]
    NotSealed,
    #[error("sealed under key {0}, which is not configured (QRGATE_SECRETS_KEY, QRGATE_SECRETS_KEY_PREVIOUS)")]
    UnknownKey(String),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value does not open for this row: altered, or copied from another row")]
    DoesNotOpen,
    #[error("the opened value is not a signing secret")]
    NotASigningSecret,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("is not standard base64")]
    NotBase64,
    #[error(
        "must be exactly 32 bytes (it has {0}); make one with `head -c 32 /dev/urandom | base64`"
    )]
    WrongLength(usize),
}

/// One key-encryption key. Its bytes never leave it; `Debug` shows only its id.
pub struct SecretsKey {
    id: String,
    cipher: Aes256Gcm,
}

impl SecretsKey {
    /// 32 bytes, standard base64 (surrounding whitespace, as in a key file, ignored).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != KEY_BYTES {
            return Err(KeyError::WrongLength(bytes.len()));
        }
        let digest = Sha256::digest(bytes);
        let id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cipher = Aes256Gcm::new_from_slice(bytes).expect("a 32-byte key");
        Ok(SecretsKey { id, cipher })
    }

    /// A new random key, standard base64 (what `gateway new-secrets-key` prints).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; KEY_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        STANDARD.encode(bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

/// The key that seals, and the one still accepted while values are re-sealed.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: Arc<SecretsKey>,
    previous: Option<Arc<SecretsKey>>,
}

fn associated_data(kind: SecretKind, row_id: &str) -> Vec<u8> {
    // NUL cannot occur in either part (ids are printable ASCII): the split is unambiguous.
    [kind.label().as_bytes(), b"\0", row_id.as_bytes()].concat()
}

impl Keyring {
    pub fn new(current: SecretsKey, previous: Option<SecretsKey>) -> Self {
        Keyring {
            current: Arc::new(current),
            previous: previous.map(Arc::new),
        }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    pub fn previous_id(&self) -> Option<&str> {
        self.previous.as_deref().map(SecretsKey::id)
    }

    /// Seals `plaintext` under the current key for the row `row_id`.
    pub fn seal(&self, kind: SecretKind, row_id: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(kind, row_id);
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message of this size");
        format!(
            "{PREFIX}{}:{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat())
        )
    }

    /// Opens a value sealed for the row `row_id` under the current or previous key.
    pub fn open(&self, kind: SecretKind, row_id: &str, stored: &str) -> Result<String, SealError> {
        let rest = stored.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let (key_id, body) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let aad = associated_data(kind, row_id);
        let opened = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::DoesNotOpen)?;
        String::from_utf8(opened).map_err(|_| SealError::Malformed)
    }

    /// Seals a Standard Webhooks signing secret (a wallet's or a merchant's).
    pub fn seal_signing_secret(
        &self,
        kind: SecretKind,
        row_id: &str,
        secret: &SigningSecret,
    ) -> String {
        self.seal(kind, row_id, &secret.expose())
    }

    /// Opens a sealed Standard Webhooks signing secret (a wallet's or a merchant's).
    pub fn open_signing_secret(
        &self,
        kind: SecretKind,
        row_id: &str,
        stored: &str,
    ) -> Result<SigningSecret, SealError> {
        SigningSecret::parse(&self.open(kind, row_id, stored)?)
            .map_err(|_| SealError::NotASigningSecret)
    }

    /// Whether `stored` is sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(key_id, _)| key_id == self.current.id)
    }
}

/// Whether a stored value is sealed at all (rows written before sealing are not).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Where sealed values live: (table, its id column, the value's column, what it is).
const SEALED_COLUMNS: [(&str, &str, &str, SecretKind); 6] = [
    ("wallet_secrets", "id", "secret", SecretKind::WalletSigning),
    (
        "merchants",
        "id",
        "webhook_secret",
        SecretKind::MerchantWebhook,
    ),
    (
        "merchants",
        "id",
        "webhook_secret_previous",
        SecretKind::MerchantWebhook,
    ),
    ("second_factors", "id", "secret", SecretKind::SecondFactor),
    ("wallets", "id", "webhook_secret", SecretKind::WalletWebhook),
    (
        "wallets",
        "id",
        "webhook_secret_previous",
        SecretKind::WalletWebhook,
    ),
];
/// Rows re-sealed per statement batch.
const RESEAL_BATCH: i64 = 500;

/// Which stored values `reseal` rewrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reseal {
    /// Values stored before sealing existed (every start does this).
    Plaintext,
    /// Everything not under the current key: plaintext, and values under the previous
    /// key (`gateway rotate-secrets-key`).
    AllButCurrent,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ResealCount {
    pub resealed: u64,
    /// Values that opened under no configured key (each named in the log).
    pub unopenable: u64,
}

/// Re-seals stored values under the current key, in batches, while replicas run: each
/// row is rewritten only if it still holds what was read (a concurrent rotation of that
/// secret wins), and the credential caches drop a changed wallet secret by notification.
pub async fn reseal(
    pool: &deadpool_postgres::Pool,
    keyring: &Keyring,
    which: Reseal,
) -> anyhow::Result<ResealCount> {
    let mut count = ResealCount::default();
    for (table, id_column, column, kind) in SEALED_COLUMNS {
        let pattern = match which {
            Reseal::Plaintext => format!("{PREFIX}%"),
            Reseal::AllButCurrent => format!("{PREFIX}{}:%", keyring.current_id()),
        };
        let select = format!(
            "SELECT {id_column}, {column} FROM {table}
             WHERE {column} IS NOT NULL AND {column} NOT LIKE $1 AND {id_column} > $2
             ORDER BY {id_column} LIMIT $3"
        );
        let update =
            format!("UPDATE {table} SET {column} = $3 WHERE {id_column} = $1 AND {column} = $2");
        let mut after = String::new();
        loop {
            let client = pool.get().await?;
            let rows = client
                .query(&select, &[&pattern, &after, &RESEAL_BATCH])
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.get(0);
            for row in &rows {
                let (id, stored): (&str, &str) = (row.get(0), row.get(1));
                let plaintext = if is_sealed(stored) {
                    match keyring.open(kind, id, stored) {
                        Ok(text) => text,
                        Err(e) => {
                            tracing::error!(table, column, id, error = %e, "a sealed secret does not open; left as it is");
                            count.unopenable += 1;
                            continue;
                        }
                    }
                } else {
                    stored.to_owned()
                };
                let resealed = keyring.seal(kind, id, &plaintext);
                count.resealed += client.execute(&update, &[&id, &stored, &resealed]).await?;
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretsKey {
        SecretsKey::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_for_its_row_only() {
        let ring = Keyring::new(key(1), None);
        let sealed = ring.seal(SecretKind::WalletSigning, "wsec_a", "whsec_secret");
        assert!(!sealed.contains("whsec_secret"));
        assert!(ring.is_current(&sealed));
        assert_eq!(
            ring.open(SecretKind::WalletSigning, "wsec_a", &sealed)
                .unwrap(),
            "whsec_secret"
        );
        assert_eq!(
            ring.open(SecretKind::WalletSigning, "wsec_b", &sealed),
            Err(SealError::DoesNotOpen),
            "copied to another row"
        );
        assert_eq!(
            ring.open(SecretKind::MerchantWebhook, "wsec_a", &sealed),
            Err(SealError::DoesNotOpen),
            "copied to another kind of secret"
        );
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring
            .open(SecretKind::WalletSigning, "wsec_a", &altered)
            .is_err());
        // Two seals of one value differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            ring.seal(SecretKind::WalletSigning, "wsec_a", "whsec_secret")
        );
    }

    #[test]
    fn a_change_of_key_opens_old_values_until_the_previous_key_is_removed() {
        let old = Keyring::new(key(1), None);
        let sealed_old = old.seal(SecretKind::MerchantWebhook, "mch_1", "s");
        let changing = Keyring::new(key(2), Some(key(1)));
        assert_eq!(
            changing
                .open(SecretKind::MerchantWebhook, "mch_1", &sealed_old)
                .unwrap(),
            "s"
        );
        assert!(!changing.is_current(&sealed_old));
        let resealed = changing.seal(SecretKind::MerchantWebhook, "mch_1", "s");
        assert!(changing.is_current(&resealed));
        let new_only = Keyring::new(key(2), None);
        assert_eq!(
            new_only
                .open(SecretKind::MerchantWebhook, "mch_1", &resealed)
                .unwrap(),
            "s"
        );
        assert_eq!(
            new_only.open(SecretKind::MerchantWebhook, "mch_1", &sealed_old),
            Err(SealError::UnknownKey(key(1).id().to_owned()))
        );
        assert_eq!(
            new_only.open(SecretKind::MerchantWebhook, "mch_1", "whsec_plain"),
            Err(SealError::NotSealed)
        );
    }

    #[test]
    fn keys_are_32_bytes_of_base64_and_never_printed() {
        let text = SecretsKey::generate_base64();
        let k = SecretsKey::from_base64(&format!("{text}\n")).unwrap();
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?}").contains(&text));
        assert_eq!(
            SecretsKey::from_base64("AAAA").unwrap_err(),
            KeyError::WrongLength(3)
        );
        assert_eq!(
            SecretsKey::from_base64("not base64!").unwrap_err(),
            KeyError::NotBase64
        );
    }
}
