//! The letter of the contract, tried as an outsider would (issue 11): one JSON value per
//! body, no NUL anywhere text reaches the database, bounded dates, HEAD and 405, the
//! Bearer scheme in any case, every signature header line, UTF-8 only.

use crate::helpers::{assert_error, json_ok, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn a_body_is_one_json_value_and_nothing_after_it() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let order = r#"{"amount":"1.00","currency":"CNY","merchant_reference":"T-1"}"#;
    for body in [
        format!(r#"{order}{{"amount":"2.00"}}"#),
        format!("{order} xyz"),
        format!("{order}\n{order}"),
    ] {
        let response = app
            .http
            .post(app.url("/v1/orders"))
            .bearer_auth(&merchant.cashier_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    // Whitespace after the value is fine.
    let spaced = app
        .http
        .post(app.url("/v1/orders"))
        .bearer_auth(&merchant.cashier_key)
        .header("content-type", "application/json")
        .body(format!("{order}\r\n  "))
        .send()
        .await
        .unwrap();
    json_ok(spaced, StatusCode::CREATED).await;

    // A signed top-up with bytes after its JSON moves nothing.
    let top_up = json!({"wallet_txn_id": "tu-trailing", "account_id": customer, "amount": "5.00", "currency": "CNY"});
    let mut bytes = serde_json::to_vec(&top_up).unwrap();
    bytes.extend_from_slice(br#"{"amount":"500.00"}"#);
    let sig = wallet.sign(&bytes);
    let response = wallet
        .send(Method::POST, &wallet.path("top-ups"), Some(bytes), &sig)
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "10.00");
}

/// Resolves a `$ref` of the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    }
}

/// Every text field of every request body the OpenAPI document lists, and every path
/// parameter, is fed a NUL: 400 for a body, 404 for a path, never a 500 (PostgreSQL
/// cannot store the byte), and nothing is stored.
#[tokio::test]
async fn a_nul_in_any_text_field_or_path_parameter_is_refused() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let key = merchant.manager_key.clone(); // every scope
    let wallet = app.create_wallet().await;
    let doc = json_ok(
        app.http.get(app.url("/openapi.json")).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let (mut bodies, mut paths) = (0, 0);
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let send = |path: String, body: Option<Value>| {
                let (app, key, wallet, method) = (&app, &key, &wallet, method.clone());
                let security = &operation["security"];
                async move {
                    app.call_as_documented(security, key, wallet, method, &path, body.as_ref())
                        .await
                }
            };
            let concrete = |nul: bool| {
                template
                    .split('/')
                    .map(|s| match (s.starts_with('{'), s) {
                        (true, "{wallet_id}") if !nul => wallet.wallet_id.clone(),
                        (true, _) if nul => "x%00".to_owned(),
                        (true, _) => "x".to_owned(),
                        (false, s) => s.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            };
            if template.contains('{') {
                let response = send(concrete(true), None).await;
                let status = response.status();
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {template}");
                paths += 1;
            }
            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema")
            else {
                continue;
            };
            let schema = resolve(&doc, schema);
            for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                let property = resolve(&doc, property);
                let texty = property["type"] == "string"
                    || property["type"]
                        .as_array()
                        .is_some_and(|t| t.contains(&json!("string")))
                    || property["items"].is_object();
                if !texty {
                    continue;
                }
                let value = if property["items"].is_object() {
                    json!(["x\u{0}"])
                } else {
                    json!("x\u{0}")
                };
                let response = send(concrete(false), Some(json!({ field: value }))).await;
                let status = response.status();
                let body = response.text().await.unwrap();
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{method} {template} {field}: {body}"
                );
                assert!(body.contains("invalid_request"), "{body}");
                bodies += 1;
            }
        }
    }
    assert!(
        bodies > 40 && paths > 25,
        "{bodies} body fields, {paths} paths"
    );
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    // A cursor that decodes to a NUL is not a cursor we wrote.
    let cursor = "MTIzfGFiYwA"; // base64url of "123|abc\0"
    assert_error(
        app.merchant_get(&key, &format!("/v1/orders?cursor={cursor}"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn dates_and_times_outside_1970_to_9999_are_refused() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    for query in [
        "/v1/reports/settlement?date=-99999-01-01",
        "/v1/reports/settlement?date=99999-01-01",
        "/v1/reports/settlement?date=0001-01-01",
        "/v1/orders?from=0001-01-01T00:00:00Z",
        "/v1/orders?to=-0001-01-01T00:00:00Z",
    ] {
        assert_error(
            app.merchant_get(&merchant.manager_key, query).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    json_ok(
        app.merchant_get(
            &merchant.manager_key,
            "/v1/reports/settlement?date=1970-01-01",
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn head_405_bearer_case_and_charset() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    // HEAD answers where GET does, without a body.
    for path in ["/healthz", "/v1/orders"] {
        let head = app
            .http
            .head(app.url(path))
            .bearer_auth(&merchant.cashier_key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert!(head.bytes().await.unwrap().is_empty());
    }
    // A method the path does not serve: 405 with Allow, in the one error shape.
    let wrong = app
        .http
        .delete(app.url("/v1/orders"))
        .bearer_auth(&merchant.cashier_key)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.headers()["allow"], "GET, HEAD, POST");
    assert_error(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let unknown = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    // The Bearer scheme in any case.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .http
            .get(app.url("/v1/orders"))
            .header(
                "authorization",
                format!("{scheme} {}", merchant.cashier_key),
            )
            .send()
            .await
            .unwrap();
        json_ok(response, StatusCode::OK).await;
    }
    // JSON is UTF-8: another declared charset is refused, UTF-8 in any spelling is not.
    let body = r#"{"amount":"1.00","currency":"CNY","merchant_reference":"CS-1"}"#;
    for (content_type, status) in [
        (
            "application/json; charset=latin1",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json; charset=\"UTF-16\"",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("application/json; charset=\"utf-8\"", StatusCode::CREATED),
    ] {
        let response = app
            .http
            .post(app.url("/v1/orders"))
            .bearer_auth(&merchant.cashier_key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{content_type}");
    }
}

#[tokio::test]
async fn every_webhook_signature_line_is_read() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1.00").await;
    let target = wallet.path(&format!("accounts/{customer}"));
    let good = wallet.sign(target.as_bytes());
    let bad = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    for lines in [
        [good.signature.as_str(), bad],
        [bad, good.signature.as_str()],
    ] {
        let sig = wallet.sign(target.as_bytes());
        let mut request = app
            .http
            .get(app.url(&target))
            .header("webhook-id", &sig.id)
            .header("webhook-timestamp", sig.timestamp.to_string());
        for line in lines {
            let line = if line == bad {
                bad.to_owned()
            } else {
                sig.signature.clone()
            };
            request = request.header("webhook-signature", line);
        }
        json_ok(request.send().await.unwrap(), StatusCode::OK).await;
    }
}
