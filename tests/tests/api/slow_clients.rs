//! Slow clients cannot starve the server: connections that never finish their head,
//! and bodies that trickle in.

use crate::helpers::{json_ok, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const SLOW_CONNECTIONS: usize = 300;

fn host_port(address: &str) -> &str {
    address.trim_start_matches("http://")
}

#[tokio::test]
async fn hundreds_of_unfinished_requests_do_not_block_the_rest() {
    let app = spawn_app().await;
    let mut slow = Vec::with_capacity(SLOW_CONNECTIONS);
    for _ in 0..SLOW_CONNECTIONS {
        let mut stream = TcpStream::connect(host_port(&app.address)).await.unwrap();
        stream
            .write_all(b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(stream);
    }
    // While every one of them waits on its head, cashiers are served.
    let merchant = app.create_merchant().await;
    let order = app.create_order(&merchant.cashier_key, "3.00").await;
    assert_eq!(order["status"], "pending");
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    drop(slow);
}

#[tokio::test]
async fn a_body_that_trickles_in_is_refused_after_the_body_timeout() {
    let app = spawn_app_with(&[("QRGATE_BODY_READ_TIMEOUT_MS", "300")]).await;
    let mut stream = TcpStream::connect(host_port(&app.address)).await.unwrap();
    let head = format!(
        "POST /v1/admin/wallets HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        app.admin_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The rest of the body never comes; the answer does, and the test cannot hang.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&answer).contains("request_id") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"invalid_request\""), "{text}");
    assert!(
        text.contains("body: was not received within 300 ms"),
        "{text}"
    );
    assert_eq!(app.count("SELECT count(*) FROM wallets").await, 0);
    // The server is fine for everyone else.
    json_ok(
        app.admin_post("/v1/admin/wallets", &serde_json::json!({"name": "w"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
}

/// Issue 11: a slow request head got a bare 408 from the HTTP layer. It gets the one
/// error shape, and the server goes on serving everyone else.
#[tokio::test]
async fn a_request_head_that_does_not_arrive_in_time_gets_408_in_the_error_shape() {
    let app = spawn_app_with(&[("QRGATE_REQUEST_HEAD_TIMEOUT_MS", "300")]).await;
    let mut stream = TcpStream::connect(host_port(&app.address)).await.unwrap();
    stream
        .write_all(b"GET /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no answer to a stalled head");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body: serde_json::Value =
        serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "request_timeout", "{text}");
    assert!(body["error"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
    // A head that arrives in pieces, but in time, is served as usual.
    let mut stream = TcpStream::connect(host_port(&app.address)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream
        .write_all(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    json_ok(
        app.http.get(app.url("/healthz")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
}
