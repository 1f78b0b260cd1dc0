//! A merchant's webhook endpoint for `simulator chaos`: a bounded HTTP/1.1 listener on
//! 127.0.0.1 that checks each delivery's Standard Webhooks signature against its shop's
//! secret and remembers the event ids it accepted. It refuses the first attempt of
//! about one event in five with 500, so the outbox's retries are exercised too.

use qrgate_domain::signing::{self, SignedHeaders, SigningSecret};
use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const HEAD_BYTES_MAX: usize = 16 * 1024;
const BODY_BYTES_MAX: usize = 256 * 1024;
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Received {
    /// Event ids delivered with a valid signature and answered 200.
    pub accepted: BTreeSet<String>,
    /// Event ids refused once on purpose (answered 500).
    pub refused_once: BTreeSet<String>,
    /// Deliveries whose signature did not verify, or that could not be read.
    pub bad: Vec<String>,
}

pub struct HookSink {
    pub port: u16,
    pub received: Arc<Mutex<Received>>,
    secrets: Arc<Mutex<HashMap<String, SigningSecret>>>,
}

impl HookSink {
    /// Listens on a free port of 127.0.0.1 until the process ends.
    pub async fn start() -> anyhow::Result<HookSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let sink = HookSink {
            port,
            received: Arc::default(),
            secrets: Arc::default(),
        };
        let (received, secrets) = (sink.received.clone(), sink.secrets.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (received, secrets) = (received.clone(), secrets.clone());
                tokio::spawn(async move {
                    let served = tokio::time::timeout(
                        CONNECTION_TIMEOUT,
                        serve(stream, &received, &secrets),
                    )
                    .await;
                    if let Ok(Err(e)) | Err(e) = served.map_err(anyhow::Error::from) {
                        received.lock().unwrap().bad.push(format!("{e:#}"));
                    }
                });
            }
        });
        Ok(sink)
    }

    /// The URL a shop's deliveries go to.
    pub fn url(&self, shop: &str) -> String {
        format!("http://127.0.0.1:{}/hooks/{shop}", self.port)
    }

    /// From now on a shop's deliveries are checked against `secret`.
    pub fn expect_secret(&self, shop: &str, secret: SigningSecret) {
        self.secrets.lock().unwrap().insert(shop.to_owned(), secret);
    }
}

async fn serve(
    mut stream: TcpStream,
    received: &Mutex<Received>,
    secrets: &Mutex<HashMap<String, SigningSecret>>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        anyhow::ensure!(buffer.len() < HEAD_BYTES_MAX, "request head too large");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(()); // a connection closed before a request: not a delivery
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(length <= BODY_BYTES_MAX, "body too large");
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "body cut short");
        body.extend_from_slice(&chunk[..n]);
    }
    let status = judge(&target, &headers, &body, received, secrets);
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// The answer to one delivery, and what it tells the checks.
fn judge(
    target: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    received: &Mutex<Received>,
    secrets: &Mutex<HashMap<String, SigningSecret>>,
) -> &'static str {
    let header = |name: &str| headers.get(name).map(String::as_str).unwrap_or_default();
    let id = header("webhook-id");
    let shop = target.strip_prefix("/hooks/").unwrap_or_default();
    let secret = secrets.lock().unwrap().get(shop).cloned();
    let signed = SignedHeaders {
        id,
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
    };
    let now = chrono::Utc::now().timestamp();
    let mut received = received.lock().unwrap();
    let verified = secret.is_some_and(|s| signing::verify(&[s], signed, body, now).is_ok());
    if !verified {
        received.bad.push(format!(
            "a delivery to {target} (webhook-id {id:?}) failed verification"
        ));
        return "401 Unauthorized";
    }
    let refuse_first = id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31) + u32::from(b))
        % 5
        == 0;
    if refuse_first && received.refused_once.insert(id.to_owned()) {
        return "500 Internal Server Error";
    }
    received.accepted.insert(id.to_owned());
    "200 OK"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(secret: &SigningSecret, id: &str, body: &[u8]) -> HashMap<String, String> {
        let now = chrono::Utc::now().timestamp();
        HashMap::from([
            ("webhook-id".to_owned(), id.to_owned()),
            ("webhook-timestamp".to_owned(), now.to_string()),
            ("webhook-signature".to_owned(), secret.sign(id, now, body)),
        ])
    }

    #[test]
    fn only_a_delivery_signed_with_its_shops_secret_is_accepted() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        let other = SigningSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .expect("a secret");
        let (received, secrets) = (Mutex::default(), Mutex::new(HashMap::new()));
        secrets
            .lock()
            .unwrap()
            .insert("shop0".to_owned(), secret.clone());
        let body = br#"{"type":"order.paid"}"#;
        // Find ids on both sides of the refuse-first rule.
        let ids: Vec<String> = (0..20).map(|i| format!("evt_{i}")).collect();
        let mut refused = 0;
        for id in &ids {
            let first = judge(
                "/hooks/shop0",
                &delivery(&secret, id, body),
                body,
                &received,
                &secrets,
            );
            if first == "500 Internal Server Error" {
                refused += 1;
                let again = judge(
                    "/hooks/shop0",
                    &delivery(&secret, id, body),
                    body,
                    &received,
                    &secrets,
                );
                assert_eq!(again, "200 OK", "an event is refused once only");
            } else {
                assert_eq!(first, "200 OK");
            }
        }
        assert!(refused > 0 && refused < ids.len());
        let tampered = judge(
            "/hooks/shop0",
            &delivery(&secret, "evt_x", body),
            b"{}",
            &received,
            &secrets,
        );
        let wrong_secret = judge(
            "/hooks/shop0",
            &delivery(&other, "evt_y", body),
            body,
            &received,
            &secrets,
        );
        let unknown_shop = judge(
            "/hooks/shop9",
            &delivery(&secret, "evt_z", body),
            body,
            &received,
            &secrets,
        );
        assert_eq!(
            [tampered, wrong_secret, unknown_shop],
            ["401 Unauthorized"; 3]
        );
        let received = received.lock().unwrap();
        assert_eq!(received.accepted.len(), ids.len());
        assert_eq!(received.bad.len(), 3);
    }
}
