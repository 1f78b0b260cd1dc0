//! A wallet provider's signing HTTP client.

use qrgate_domain::{ids, signing::SigningSecret};
use reqwest::{Client, Method, Response};
use serde_json::Value;

/// Signs and sends requests for one wallet.
#[derive(Clone, Debug)]
pub struct WalletClient {
    pub base_url: String,
    pub wallet_id: String,
    secret: SigningSecret,
    http: Client,
}

/// The three Standard Webhooks headers of one message.
#[derive(Clone, Debug)]
pub struct Signature {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl WalletClient {
    pub fn new(base_url: &str, wallet_id: &str, secret: SigningSecret, http: Client) -> Self {
        WalletClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            wallet_id: wallet_id.to_owned(),
            secret,
            http,
        }
    }

    /// The secret it signs with (tests give it to another replica's client).
    pub fn secret(&self) -> &SigningSecret {
        &self.secret
    }

    /// Signs `content` (a POST body, or a GET's request target) as a new message.
    pub fn sign(&self, content: &[u8]) -> Signature {
        self.sign_as(&ids::mint("msg"), chrono::Utc::now().timestamp(), content)
    }

    pub fn sign_as(&self, message_id: &str, timestamp: i64, content: &[u8]) -> Signature {
        Signature {
            id: message_id.to_owned(),
            timestamp,
            signature: self.secret.sign(message_id, timestamp, content),
        }
    }

    /// `/v1/wallets/{wallet_id}/{rest}`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/wallets/{}/{}", self.wallet_id, rest)
    }

    /// Sends raw bytes with the given signature headers (tests tamper with either).
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
        sig: &Signature,
    ) -> reqwest::Result<Response> {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base_url, target))
            .header("webhook-id", &sig.id)
            .header("webhook-timestamp", sig.timestamp.to_string())
            .header("webhook-signature", &sig.signature);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await
    }

    /// POSTs `body` to `rest` (under this wallet's path), signed as a new message.
    pub async fn post(&self, rest: &str, body: &Value) -> reqwest::Result<Response> {
        let bytes = serde_json::to_vec(body).expect("JSON serializes");
        let sig = self.sign(&bytes);
        self.send(Method::POST, &self.path(rest), Some(bytes), &sig)
            .await
    }

    /// GETs `rest` (under this wallet's path), signing the request target.
    pub async fn get(&self, rest: &str) -> reqwest::Result<Response> {
        let target = self.path(rest);
        let sig = self.sign(target.as_bytes());
        self.send(Method::GET, &target, None, &sig).await
    }
}
