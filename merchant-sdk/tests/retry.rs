//! Retry and idempotency behaviour against a local server that fails on purpose.

use merchant_sdk::{Client, Error, ErrorKind, NewOrder, RetryPolicy};
use rust_decimal::Decimal;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// What the fake gateway does with one request.
#[derive(Clone)]
enum Reply {
    /// Status line, extra headers, body.
    Http(u16, &'static str, String),
    /// Close the connection without answering.
    Hangup,
}

/// One request as the fake gateway saw it.
#[derive(Clone, Debug)]
struct Seen {
    request_line: String,
    idempotency_key: Option<String>,
}

/// Serves `replies` in order, one per request (each on its own connection), and
/// records what it was sent.
async fn fake_gateway(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in replies {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head and the body (Content-Length) of one request.
            loop {
                let n = socket.read(&mut chunk).await.unwrap();
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buffer.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buffer).to_string();
            log.lock().unwrap().push(Seen {
                request_line: text.lines().next().unwrap_or("").to_owned(),
                idempotency_key: text.lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("idempotency-key:")
                        .then(|| l[16..].trim().to_owned())
                }),
            });
            if let Reply::Http(status, headers, body) = reply {
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
            socket.shutdown().await.ok();
        }
    });
    (address, seen)
}

fn error(status: u16, code: &str) -> Reply {
    Reply::Http(
        status,
        "",
        format!(r#"{{"error":{{"code":"{code}","message":"m","request_id":"req_x"}}}}"#),
    )
}

fn order_created() -> Reply {
    Reply::Http(
        201,
        "",
        r#"{"id":"ord_1","status":"pending","amount":"12.34","currency":"CNY","merchant_reference":"R",
            "description":null,"terminal_id":null,"qr_payload":"000201","expires_at":"2026-11-25T00:05:00Z",
            "created_at":"2026-11-25T00:00:00Z","updated_at":"2026-11-25T00:00:00Z","paid_at":null,"payment_id":null}"#
            .to_owned(),
    )
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts_max: 4,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
        retry_after_max: Duration::from_secs(30),
    }
}

fn client(address: &str, retry: RetryPolicy) -> Client {
    Client::builder(address, "key_test.secret")
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn order() -> NewOrder {
    NewOrder::new(Decimal::new(1234, 2), "CNY".parse().unwrap(), "R")
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_idempotency_key() {
    let (address, seen) = fake_gateway(vec![
        error(503, "unavailable"),
        Reply::Hangup,
        error(500, "internal_error"),
        order_created(),
    ])
    .await;

    let created = client(&address, fast_retries())
        .create_order(&order())
        .await
        .unwrap();

    assert_eq!(created.id, "ord_1");
    assert_eq!(created.amount, Decimal::new(1234, 2));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4);
    let key = seen[0]
        .idempotency_key
        .clone()
        .expect("a POST carries an Idempotency-Key");
    assert!(
        seen.iter()
            .all(|s| s.idempotency_key.as_deref() == Some(key.as_str())),
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .all(|s| s.request_line.starts_with("POST /v1/orders ")));
}

#[tokio::test]
async fn each_logical_call_gets_its_own_key() {
    let (address, seen) = fake_gateway(vec![order_created(), order_created()]).await;
    let client = client(&address, fast_retries());
    client.create_order(&order()).await.unwrap();
    client.create_order(&order()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_ne!(seen[0].idempotency_key, seen[1].idempotency_key);
}

#[tokio::test]
async fn in_progress_and_rate_limited_answers_are_retried() {
    let (address, seen) = fake_gateway(vec![
        error(409, "idempotency_in_progress"),
        Reply::Http(
            429,
            "retry-after: 0\r\n",
            r#"{"error":{"code":"rate_limited","message":"m","request_id":"r"}}"#.into(),
        ),
        order_created(),
    ])
    .await;
    client(&address, fast_retries())
        .create_order(&order())
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_ends_the_retries() {
    let (address, seen) = fake_gateway(vec![
        Reply::Http(
            429,
            "retry-after: 60\r\n",
            r#"{"error":{"code":"rate_limited","message":"slow down","request_id":"r"}}"#.into(),
        ),
        order_created(),
    ])
    .await;
    let err = client(&address, fast_retries())
        .create_order(&order())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::RateLimited));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    for (status, code, kind) in [
        (409, "duplicate_reference", ErrorKind::DuplicateReference),
        (422, "currency_mismatch", ErrorKind::CurrencyMismatch),
        (400, "invalid_request", ErrorKind::InvalidRequest),
        (403, "forbidden", ErrorKind::Forbidden),
    ] {
        let (address, seen) = fake_gateway(vec![error(status, code), order_created()]).await;
        let err = client(&address, fast_retries())
            .create_order(&order())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), Some(&kind));
        assert!(matches!(err, Error::Api { status: s, .. } if s == status));
        assert_eq!(seen.lock().unwrap().len(), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn retries_stop_at_the_policy_limit() {
    let (address, seen) = fake_gateway(vec![
        error(503, "unavailable"),
        error(503, "unavailable"),
        error(503, "unavailable"),
    ])
    .await;
    let policy = RetryPolicy {
        attempts_max: 3,
        ..fast_retries()
    };
    let err = client(&address, policy)
        .create_order(&order())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::Unavailable));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let (address, seen) = fake_gateway(vec![order_created()]).await;
    let client = client(&address, fast_retries());
    for amount in [Decimal::new(1, 3), Decimal::ZERO, Decimal::new(-5, 0)] {
        let bad = NewOrder::new(amount, "CNY".parse().unwrap(), "R");
        assert!(matches!(
            client.create_order(&bad).await,
            Err(Error::InvalidInput(_))
        ));
    }
    // 12.340 is 12.34: trailing zeros are not extra decimal places.
    client
        .create_order(&NewOrder::new(
            Decimal::new(12340, 3),
            "CNY".parse().unwrap(),
            "R",
        ))
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);
}
