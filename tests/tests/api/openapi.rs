//! The API describes itself: `/openapi.json`, and `/docs` served entirely from the
//! gateway (no CDN). That every route is in the document is a unit test of
//! `gateway::openapi`; that every response of these tests matches it is checked when
//! each `TestApp` drops.

use crate::helpers::{json_ok, spawn_app};
use reqwest::StatusCode;

#[tokio::test]
async fn the_document_and_the_interactive_page_are_served_without_the_network() {
    let app = spawn_app().await;
    let document = json_ok(
        app.http.get(app.url("/openapi.json")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(document["openapi"], "3.1.0");
    let pay = &document["paths"]["/v1/wallets/{wallet_id}/payments"]["post"];
    assert_eq!(
        pay["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PaymentRequest"
    );
    for status in ["200", "401", "409", "422", "429", "503"] {
        assert!(
            pay["responses"].get(status).is_some(),
            "payments answer {status}"
        );
    }
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.iter().any(|c| c == "authentication_required"));
    assert_eq!(
        document["components"]["schemas"]["Amount"]["pattern"],
        r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    let page = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("swagger-ui-bundle.js") && html.contains("/openapi.json"),
        "{html}"
    );
    assert!(
        !html.contains("https://"),
        "the page loads nothing from the network: {html}"
    );
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let response = app.http.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 10_000,
            "{asset} is bundled"
        );
        // A browser (it accepts gzip) gets the bundled file as it is stored.
        let gzipped = app
            .http
            .get(app.url(asset))
            .header("accept-encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{asset}");
        assert!(gzipped.bytes().await.unwrap().starts_with(&[0x1f, 0x8b]));
    }
}
