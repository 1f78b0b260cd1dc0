//! Admission: a replica works on at most `pool size × QRGATE_REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX`
//! requests at once. A burst past that waits its turn and is served; when the queue
//! stands (no one admitted quickly for a while: an overload), new arrivals are refused
//! at once with 503 and Retry-After, changing nothing, and the replica serves again as
//! places free up.

use crate::helpers::{assert_error, json_ok, spawn_app_with, TestApp};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const METRICS_TOKEN: &str = "metrics-token-admission-0123";
/// One pool connection, three requests in flight at most.
const IN_FLIGHT_MAX: usize = 3;

/// A request whose head is sent and whose body is held back: admitted, it stays in
/// flight (reading its body) until `finish` sends the rest.
struct HeldRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HeldRequest {
    async fn open(app: &TestApp, key: &str, reference: String) -> HeldRequest {
        let body =
            format!(r#"{{"amount":"2.00","currency":"CNY","merchant_reference":"{reference}"}}"#);
        let head = format!(
            "POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (first, rest) = body.as_bytes().split_at(10);
        let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
            .await
            .unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(first).await.unwrap();
        HeldRequest {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body; the status line of the answer.
    async fn finish(mut self) -> String {
        self.stream.write_all(&self.rest).await.unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        tokio::time::timeout(Duration::from_secs(10), async {
            while !String::from_utf8_lossy(&answer).contains("\r\n\r\n{") {
                let n = self.stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .expect("an answer");
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics_text(&app.address, METRICS_TOKEN).await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

async fn wait_for_in_flight(app: &TestApp, n: u64) {
    for _ in 0..100 {
        if metric(app, "qrgate_requests_in_flight").await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {n} requests in flight");
}

async fn orders_of(app: &TestApp, key: &str) -> usize {
    let list = json_ok(app.merchant_get(key, "/v1/orders").await, StatusCode::OK).await;
    list["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_overload_is_refused_at_once_and_changes_nothing() {
    let app = spawn_app_with(&[
        ("QRGATE_POOL_SIZE_MAX", "1"),
        (
            "QRGATE_REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX",
            &IN_FLIGHT_MAX.to_string(),
        ),
        // A burst may wait far longer than this test: an answer within it can only be
        // the overload's refusal at the door.
        ("QRGATE_POOL_WAIT_TIMEOUT_MS", "60000"),
        ("QRGATE_METRICS_TOKEN", METRICS_TOKEN),
    ])
    .await;
    let merchant = app.create_merchant().await;
    let pending = app.create_order(&merchant.cashier_key, "1.00").await;
    let key = merchant.cashier_key.clone();

    // Exactly as many as the bound, all at once: every one admitted.
    let held =
        join_all((0..IN_FLIGHT_MAX).map(|i| HeldRequest::open(&app, &key, format!("HELD-{i}"))))
            .await;
    wait_for_in_flight(&app, IN_FLIGHT_MAX as u64).await;
    // One more waits its turn (a burst); then a whole judging interval (500 ms) passes
    // in which no one is admitted while it waits: a standing queue, an overload.
    let queued = HeldRequest::open(&app, &key, "QUEUED".into()).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // A herd now: each refused at once, in the one error shape, with Retry-After; the
    // orders it asked for are not made.
    let herd = join_all((0..20).map(|i| {
        let body = serde_json::json!({"amount": "5.00", "currency": "CNY", "merchant_reference": format!("SHED-{i}")});
        let app = &app;
        let key = &key;
        // Refused at once, or this fails rather than waits out the minute-long pool wait.
        async move {
            app.http
                .post(app.url("/v1/orders"))
                .bearer_auth(key)
                .json(&body)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .expect("an answer at once")
        }
    }))
    .await;
    for response in herd {
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            Some("1".to_owned())
        );
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    }
    assert_eq!(metric(&app, "qrgate_requests_shed_total").await, 20);

    // Health, metrics and the cashier's long-poll are not counted against the bound.
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let polled = app
        .merchant_get(
            &key,
            &format!(
                "/v1/orders/{}?wait_seconds=1",
                pending["id"].as_str().unwrap()
            ),
        )
        .await;
    let polled: Value = json_ok(polled, StatusCode::OK).await;
    assert_eq!(polled["status"], "pending");

    // The held requests finish and are served, then the queued one; the replica serves.
    for request in held {
        let status = request.finish().await;
        assert!(status.contains(" 201 "), "{status}");
    }
    let status = queued.finish().await;
    assert!(status.contains(" 201 "), "{status}");
    wait_for_in_flight(&app, 0).await;
    assert_eq!(orders_of(&app, &key).await, 2 + IN_FLIGHT_MAX);
    app.create_order(&key, "3.00").await;
}

#[tokio::test]
async fn a_burst_far_past_the_bound_waits_its_turn_and_is_served() {
    let app = spawn_app_with(&[
        ("QRGATE_POOL_SIZE_MAX", "2"),
        ("QRGATE_REQUESTS_IN_FLIGHT_PER_CONNECTION_MAX", "1"),
    ])
    .await;
    let merchant = app.create_merchant().await;
    let key = &merchant.cashier_key;
    let app = &app;
    let burst = join_all((0..100).map(|i| {
        let body = serde_json::json!({"amount": "1.00", "currency": "CNY", "merchant_reference": format!("B-{i}")});
        async move { app.merchant_post(key, "/v1/orders", &body).await.status() }
    }))
    .await;
    assert!(burst.iter().all(|s| *s == StatusCode::CREATED), "{burst:?}");
}
