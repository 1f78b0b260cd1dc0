//! HTTPS: given a certificate and key the gateway serves TLS only, with HSTS; without
//! them it serves plain HTTP for a reverse proxy, and says HSTS only when a trusted proxy
//! says the client came over HTTPS.

use crate::{
    certificates::make_certificates,
    helpers::{json_ok, spawn_app_with},
};
use reqwest::StatusCode;
use serde_json::json;

const HSTS: &str = "strict-transport-security";

fn checkout_body() -> serde_json::Value {
    json!({
        "amount": "8.00", "currency": "CNY", "merchant_reference": "WEB-TLS",
        "return_url": "https://shop.example/thanks", "cancel_url": "https://shop.example/cart",
    })
}

#[tokio::test]
async fn with_a_certificate_the_gateway_serves_https_only_with_hsts() {
    let dir = std::env::temp_dir().join(format!(
        "qrgate-https-{}",
        qrgate_domain::ids::random_base32(10).to_lowercase()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    make_certificates(&dir);
    let cert = dir.join("server.pem").display().to_string();
    let key = dir.join("server.key").display().to_string();
    let mut app = spawn_app_with(&[
        ("QRGATE_TLS_CERT_FILE", cert.as_str()),
        ("QRGATE_TLS_KEY_FILE", key.as_str()),
    ])
    .await;
    let plain_address = app.address.clone();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    app.http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    app.address = plain_address.replace("http://", "https://");

    // The cashier page and the API, over TLS, each answer with HSTS.
    let page = app.http.get(app.url("/cashier")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[HSTS], "max-age=31536000");
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "20.00").await;
    let order = app.create_order(&merchant.cashier_key, "5.00").await;
    let paid = app.pay(&wallet, &order, &customer).await;
    assert!(paid.headers().contains_key(HSTS));
    json_ok(paid, StatusCode::OK).await;
    // A checkout link made over HTTPS is an https:// link.
    let session = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/checkout-sessions",
            &checkout_body(),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(
        session["url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{session}"
    );

    // Plain HTTP to the same port gets no answer, and a client that does not trust the
    // certificate will not talk to it.
    assert!(reqwest::get(format!("{plain_address}/healthz"))
        .await
        .is_err());
    assert!(reqwest::get(app.url("/healthz")).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn behind_a_proxy_hsts_is_said_only_when_a_trusted_proxy_says_https() {
    let app = spawn_app_with(&[("QRGATE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let plain = app.http.get(app.url("/cashier")).send().await.unwrap();
    assert!(!plain.headers().contains_key(HSTS));
    let proxied = app
        .http
        .get(app.url("/cashier"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.headers()[HSTS], "max-age=31536000");

    let untrusted = spawn_app_with(&[]).await;
    let claimed = untrusted
        .http
        .get(untrusted.url("/cashier"))
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(!claimed.headers().contains_key(HSTS));
}
