//! The shop's till on the API: named staff keys a manager issues, who made each order
//! and refund, the order's event stream, and the shift close.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Server-sent events read from a stream until `n` arrived or it ended: (id, data).
pub async fn read_events(
    mut response: reqwest::Response,
    n: usize,
    wait: Duration,
) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut buffered = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while events.len() < n {
        let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => break,
        };
        buffered.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffered.find("\n\n") {
            let block: String = buffered.drain(..end + 2).collect();
            let (mut id, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !data.is_empty() {
                events.push((id, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

pub async fn stream(
    app: &TestApp,
    key: &str,
    order_id: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .get(app.url(&format!("/v1/orders/{order_id}/stream")))
        .bearer_auth(key);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    request.send().await.unwrap()
}

async fn issue_staff_key(app: &TestApp, manager_key: &str, name: &str, scopes: &[&str]) -> Value {
    json_ok(
        app.merchant_post(
            manager_key,
            "/v1/keys",
            &json!({"name": name, "scopes": scopes}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn a_manager_issues_named_staff_keys_and_each_order_records_its_key() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let ana = issue_staff_key(&app, &shop.manager_key, "Ana", &["orders"]).await;
    assert_eq!(ana["name"], "Ana");
    let ana_key = ana["key"].as_str().unwrap();
    let till = issue_staff_key(&app, &shop.manager_key, "Till 2", &["orders", "refunds"]).await;
    let till_key = till["key"].as_str().unwrap();

    let me = json_ok(app.merchant_get(ana_key, "/v1/me").await, StatusCode::OK).await;
    assert_eq!(me["key_name"], "Ana");
    assert_eq!(me["merchant_id"], shop.id.as_str());
    assert_eq!(me["scopes"], json!(["orders"]));
    assert_eq!(me["currency_minor_units"], 2);

    let by_ana = app.create_order(ana_key, "12.00").await;
    assert_eq!(by_ana["created_by_key_id"], ana["id"]);
    let by_till = app.create_order(till_key, "30.00").await;
    assert_eq!(by_till["created_by_key_id"], till["id"]);

    let anas = json_ok(
        app.merchant_get(
            &shop.manager_key,
            &format!("/v1/orders?key_id={}", ana["id"].as_str().unwrap()),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = anas["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [by_ana["id"].as_str().unwrap()]);

    // The manager's list shows the names; no secret.
    let keys = json_ok(
        app.merchant_get(&shop.manager_key, "/v1/keys").await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<&str> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(
        names.contains(&"Ana") && names.contains(&"Till 2"),
        "{keys}"
    );
    assert!(!keys
        .to_string()
        .contains(ana_key.split('.').nth(1).unwrap()));

    // Revoked: Ana's key no longer works, at once.
    let revoked = app
        .http
        .delete(app.url(&format!("/v1/keys/{}", ana["id"].as_str().unwrap())))
        .bearer_auth(&shop.manager_key)
        .send()
        .await
        .unwrap();
    json_ok(revoked, StatusCode::OK).await;
    assert_error(
        app.merchant_get(ana_key, "/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[tokio::test]
async fn a_key_cannot_issue_more_than_it_holds_nor_without_the_keys_scope() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let body = json!({"name": "Bo", "scopes": ["orders"]});
    assert_error(
        app.merchant_post(&shop.cashier_key, "/v1/keys", &body)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let keys_only = issue_staff_key(&app, &shop.manager_key, "Keys", &["keys", "orders"]).await;
    let refunds = json!({"name": "Bo", "scopes": ["refunds"]});
    let refused = assert_error(
        app.merchant_post(keys_only["key"].as_str().unwrap(), "/v1/keys", &refunds)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refunds"),
        "{refused}"
    );
    for bad in [
        json!({"name": "", "scopes": ["orders"]}),
        json!({"name": "x".repeat(51), "scopes": ["orders"]}),
        json!({"name": "a\u{7}b", "scopes": ["orders"]}),
        json!({"name": "Bo", "scopes": []}),
    ] {
        assert_error(
            app.merchant_post(&shop.manager_key, "/v1/keys", &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM api_keys WHERE name = 'Bo'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_order_stream_sends_the_order_then_paid_and_ends() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&shop.cashier_key, "8.80").await;
    let response = stream(&app, &shop.cashier_key, order["id"].as_str().unwrap(), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let reader = tokio::spawn(read_events(response, 2, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let events = reader.await.unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].1["status"], "pending");
    assert_eq!(events[1].1["status"], "paid");
    assert_eq!(
        events[1].1["payment_id"],
        app.order(&shop.cashier_key, order["id"].as_str().unwrap())
            .await["payment_id"]
    );
    assert_ne!(
        events[0].0, events[1].0,
        "each version has its own event id"
    );
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_skips_what_the_page_has_seen() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let order = app.create_order(&shop.cashier_key, "8.80").await;
    let id = order["id"].as_str().unwrap();
    let first = read_events(
        stream(&app, &shop.cashier_key, id, None).await,
        1,
        Duration::from_secs(5),
    )
    .await;
    let seen = first[0].0.clone();
    // The same version: nothing until the order changes; it is closed, and that comes.
    let again = stream(&app, &shop.cashier_key, id, Some(&seen)).await;
    let reader = tokio::spawn(read_events(again, 1, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    json_ok(
        app.merchant_post(
            &shop.cashier_key,
            &format!("/v1/orders/{id}/close"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let events = reader.await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1["status"], "closed");
    // A stale id: the current state at once.
    let stale = read_events(
        stream(&app, &shop.cashier_key, id, Some(&seen)).await,
        1,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(stale[0].1["status"], "closed");
}

#[tokio::test]
async fn another_merchants_order_stream_is_404_and_streams_are_bounded() {
    let app = spawn_app_with(&[
        ("QRGATE_ORDER_STREAMS_PER_MERCHANT_MAX", "3"),
        ("QRGATE_ORDER_STREAM_KEEPALIVE_MS", "100"),
    ])
    .await;
    let shop = app.create_merchant().await;
    let other = app.create_merchant().await;
    let order = app.create_order(&shop.cashier_key, "5.00").await;
    let id = order["id"].as_str().unwrap();
    assert_error(
        stream(&app, &other.cashier_key, id, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Three open at once, all together; the fourth is refused; one closes, one opens.
    let opened =
        futures_util::future::join_all((0..4).map(|_| stream(&app, &shop.cashier_key, id, None)))
            .await;
    let statuses: Vec<u16> = opened.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    let mut open: Vec<reqwest::Response> = Vec::new();
    for response in opened {
        if response.status() == StatusCode::OK {
            open.push(response);
        } else {
            assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        }
    }
    // The other merchant is not counted against this one.
    let theirs = app.create_order(&other.cashier_key, "5.00").await;
    assert_eq!(
        stream(
            &app,
            &other.cashier_key,
            theirs["id"].as_str().unwrap(),
            None
        )
        .await
        .status(),
        StatusCode::OK
    );
    drop(open.pop());
    // Freed at the next keep-alive write that fails.
    let mut reopened = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        reopened = stream(&app, &shop.cashier_key, id, None).await.status();
        if reopened == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reopened, StatusCode::OK, "a closed stream frees its place");
}

#[tokio::test]
async fn the_shift_close_totals_paid_and_refunded_by_staff_key() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let ana = issue_staff_key(&app, &shop.manager_key, "Ana", &["orders", "refunds"]).await;
    let ana_key = ana["key"].as_str().unwrap();
    let since = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    for (key, amount) in [
        (ana_key, "10.00"),
        (ana_key, "20.50"),
        (shop.cashier_key.as_str(), "7.00"),
    ] {
        let order = app.create_order(key, amount).await;
        json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
        if amount == "20.50" {
            let refund = json!({"amount": "5.25", "refund_reference": "r1"});
            json_ok(
                app.merchant_post(
                    ana_key,
                    &format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap()),
                    &refund,
                )
                .await,
                StatusCode::CREATED,
            )
            .await;
        }
    }
    let unpaid = app.create_order(ana_key, "99.00").await;
    assert_eq!(unpaid["status"], "pending");
    let shift = json_ok(
        app.merchant_get(
            ana_key,
            &format!("/v1/reports/shift?since={}", urlencode(&since)),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let anas = shift["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == ana["id"])
        .unwrap();
    assert_eq!(anas["key_name"], "Ana");
    assert_eq!(
        (anas["orders_paid"].as_i64(), anas["paid_amount"].as_str()),
        (Some(2), Some("30.50"))
    );
    assert_eq!(
        (anas["refunds"].as_i64(), anas["refunded_amount"].as_str()),
        (Some(1), Some("5.25"))
    );
    assert_eq!(shift["totals"]["paid_amount"], "37.50");
    assert_eq!(shift["totals"]["net_amount"], "32.25");
    // The refund recorded its key too.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refunds WHERE created_by_key_id = '{}'",
            ana["id"].as_str().unwrap()
        ))
        .await,
        1
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_error(
        app.merchant_get(
            ana_key,
            &format!("/v1/reports/shift?since={}", urlencode(&future)),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// Names are text people read: control, invisible and direction-changing characters are
/// refused by the server and by the document alike, and a name in any script passes both.
#[tokio::test]
async fn names_must_be_text_people_can_see_in_the_server_and_the_document() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let doc: Value = app.openapi_document().await;
    let pattern = doc["components"]["schemas"]["ApiKeyCreate"]["properties"]["name"]["oneOf"][0]
        ["pattern"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut schema = json!({"type": "string", "pattern": pattern});
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    let validator = jsonschema::validator_for(&schema).unwrap();
    for (name, ok) in [
        ("小王 · Till 2", true),
        ("Ana", true),
        (" Bo", true),
        ("\u{200b}", false),
        ("Ana\u{202e}", false),
        ("a\u{2028}b", false),
        ("\u{feff}Ana", false),
        ("a\u{85}", false),
        ("   ", false),
        ("a\u{ad}b", false),
    ] {
        let response = app
            .merchant_post(
                &shop.manager_key,
                "/v1/keys",
                &json!({"name": name, "scopes": ["orders"]}),
            )
            .await;
        assert_eq!(
            response.status().is_success(),
            ok,
            "{name:?}: {}",
            response.text().await.unwrap()
        );
        assert_eq!(
            validator.is_valid(&json!(name)),
            ok,
            "the document on {name:?}"
        );
        let item = json!({
            "amount": "1.00", "currency": "CNY", "merchant_reference": format!("N{}", qrgate_domain::ids::random_base32(6)),
            "return_url": "https://a.example/", "cancel_url": "https://a.example/",
            "line_items": [{"name": name, "quantity": 1, "amount": "1.00"}],
        });
        let session = app
            .merchant_post(&shop.cashier_key, "/v1/checkout-sessions", &item)
            .await;
        assert_eq!(session.status().is_success(), ok, "line item {name:?}");
    }
}

/// A shop holds at most 200 live keys (a leaked manager key cannot mint them without
/// end): a herd past the cap gets exactly the room left, the rest `422 limit_exceeded`,
/// and revoking one makes room again. The operator's issue counts against the same cap.
#[tokio::test]
async fn a_herd_of_key_issues_stops_at_the_shops_cap() {
    // 210 issues at once from one key: above its rate, a 429 would stand in for the cap.
    let app = spawn_app_with(&[("QRGATE_API_KEY_REQUESTS_PER_SECOND_MAX", "1000000")]).await;
    let shop = app.create_merchant().await; // a manager and a cashier key: 2 live
    let issue = |i: usize| {
        let app = &app;
        let key = shop.manager_key.clone();
        async move {
            app.http
                .post(app.url("/v1/keys"))
                .bearer_auth(&key)
                .json(&json!({"name": format!("Till {i}"), "scopes": ["orders"]}))
                .send()
                .await
                .unwrap()
        }
    };
    let answers = futures_util::future::join_all((0..210).map(issue)).await;
    let (mut made, mut refused) = (0, 0);
    for answer in answers {
        match answer.status() {
            StatusCode::CREATED => made += 1,
            StatusCode::UNPROCESSABLE_ENTITY => {
                let body: Value = answer.json().await.unwrap();
                assert_eq!(body["error"]["code"], "limit_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("{other}: {}", answer.text().await.unwrap()),
        }
    }
    assert_eq!((made, refused), (198, 12));
    let live = "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL";
    assert_eq!(app.count(live).await, 200);
    let admin_issue = app
        .admin_post(
            &format!("/v1/admin/merchants/{}/api-keys", shop.id),
            &json!({"scopes": ["reports"]}),
        )
        .await;
    assert_eq!(admin_issue.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Revoking one (not the manager's own) makes room for one.
    let revoked: String = app
        .db()
        .await
        .query_one(
            "SELECT id FROM api_keys WHERE name = 'Till 0' OR name = 'Till 1' ORDER BY name LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let revoke = app
        .http
        .delete(app.url(&format!("/v1/keys/{revoked}")))
        .bearer_auth(&shop.manager_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoke.status(),
        StatusCode::OK,
        "{}",
        revoke.text().await.unwrap()
    );
    json_ok(issue(999).await, StatusCode::CREATED).await;
    assert_eq!(issue(1000).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count(live).await, 200);
}
