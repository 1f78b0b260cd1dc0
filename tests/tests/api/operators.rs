//! Operator roles, held to every admin route the API document lists, and the audit log
//! that no one can change.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// What the docs promise each role may do (docs/api.md, "Operator roles"), written out
/// here rather than read from the gateway: an outsider's expectations.
fn may(role: &str, method: &str, path: &str) -> bool {
    let read = method == "get" || path == "/v1/admin/reconciliation/payments";
    let risk = [
        ("post", "/v1/admin/accounts/{id}/block"),
        ("post", "/v1/admin/accounts/{id}/unblock"),
        ("post", "/v1/admin/merchants/{id}/block"),
        ("post", "/v1/admin/merchants/{id}/unblock"),
        ("put", "/v1/admin/risk-limits/{currency}"),
        ("put", "/v1/admin/wallets/{id}/sca/{currency}"),
        ("delete", "/v1/admin/wallets/{id}/sca/{currency}"),
        ("post", "/v1/admin/wallets/{id}/funding-limits"),
        (
            "put",
            "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        ),
        (
            "delete",
            "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        ),
    ];
    let finance = [
        ("post", "/v1/admin/fx-rates"),
        ("post", "/v1/admin/campaigns"),
        ("patch", "/v1/admin/campaigns/{id}"),
        ("post", "/v1/admin/campaigns/{id}/pause"),
        ("post", "/v1/admin/campaigns/{id}/resume"),
        ("post", "/v1/admin/campaigns/{id}/end"),
        ("post", "/v1/admin/rewards"),
        ("post", "/v1/admin/rewards/{id}/end"),
    ];
    let own = ["/v1/admin/second-factor", "/v1/admin/second-factor/confirm"];
    match role {
        "admin" => true,
        _ if read => path != "/v1/admin/audit",
        _ if method == "post" && own.contains(&path) => true,
        "risk" => risk.contains(&(method, path)),
        "finance" => finance.contains(&(method, path)),
        _ => false,
    }
}

/// Changes that need a named token's second factor (docs/api.md, "Second factors").
fn needs_code(method: &str, path: &str) -> bool {
    [
        ("post", "/v1/admin/accounts/{id}/block"),
        ("post", "/v1/admin/accounts/{id}/unblock"),
        ("post", "/v1/admin/merchants/{id}/block"),
        ("post", "/v1/admin/merchants/{id}/unblock"),
        ("put", "/v1/admin/risk-limits/{currency}"),
        ("put", "/v1/admin/wallets/{id}/sca/{currency}"),
        ("delete", "/v1/admin/wallets/{id}/sca/{currency}"),
        ("post", "/v1/admin/wallets/{id}/funding-limits"),
        (
            "put",
            "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        ),
        (
            "delete",
            "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}",
        ),
        ("post", "/v1/admin/wallets/{id}/secrets"),
        ("delete", "/v1/admin/wallets/{id}/secrets/{secret_id}"),
        ("post", "/v1/admin/merchants/{id}/webhook-secret"),
        ("put", "/v1/admin/wallets/{id}/webhook"),
        ("delete", "/v1/admin/wallets/{id}/webhook"),
        ("post", "/v1/admin/wallets/{id}/webhook/secret"),
        ("post", "/v1/admin/tokens"),
        ("delete", "/v1/admin/tokens/{id}"),
        ("delete", "/v1/admin/tokens/{id}/second-factor"),
    ]
    .contains(&(method, path))
}

async fn token(app: &TestApp, role: &str) -> String {
    let issued = json_ok(
        app.admin_post(
            "/v1/admin/tokens",
            &json!({"name": format!("{role} operator"), "role": role}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(issued["role"], role);
    issued["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_role_may_do_exactly_what_it_allows_on_every_admin_route() {
    let app = spawn_app().await;
    let document: Value = app.openapi_document().await;
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/admin/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                operations.push((method.clone(), path.clone()));
            }
        }
    }
    assert!(operations.len() >= 25, "{operations:?}");
    let mut checked = 0;
    for role in ["support", "risk", "finance", "admin"] {
        let bearer = token(&app, role).await;
        for (method, path) in &operations {
            // Ids that exist nowhere: an allowed call is answered 400 or 404, never 403,
            // and changes nothing.
            let concrete = path
                .replace("{currency}", "CNY")
                .replace("{id}", "zz_nosuch0000000000")
                .replace("{key_id}", "key_nosuch000000000")
                .replace("{secret_id}", "sec_nosuch000000000");
            let mut request = app
                .http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    app.url(&concrete),
                )
                .bearer_auth(&bearer);
            if method != "get" {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if may(role, method, path) && needs_code(method, path) {
                // Allowed, but not without a second factor, which this token has not.
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {path}: {body}"
                );
                assert_eq!(
                    body["error"]["code"], "second_factor_required",
                    "{role} {method} {path}"
                );
            } else if may(role, method, path) {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {path}: {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {path}: {body}"
                );
                assert_eq!(body["error"]["code"], "forbidden", "{role} {method} {path}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, operations.len() * 4);
}

#[tokio::test]
async fn a_refused_change_changes_nothing_and_is_in_the_audit_log() {
    let app = spawn_app().await;
    let support = token(&app, "support").await;
    let finance = token(&app, "finance").await;
    let rate = json!({"base": "CNY", "quote": "USD", "rate": "0.14"});
    let post = |bearer: &str, path: &str, body: &Value| {
        app.http
            .post(app.url(path))
            .bearer_auth(bearer)
            .json(body)
            .send()
    };
    let refused = assert_error(
        post(&support, "/v1/admin/fx-rates", &rate).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance"),
        "{refused}"
    );
    assert_eq!(app.count("SELECT count(*) FROM fx_rates").await, 0);
    json_ok(
        post(&finance, "/v1/admin/fx-rates", &rate).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    // Only admin issues tokens: a support operator cannot make itself an admin.
    assert_error(
        post(
            &support,
            "/v1/admin/tokens",
            &json!({"name": "me", "role": "admin"}),
        )
        .await
        .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM admin_tokens").await, 2);
    let audit = json_ok(app.admin_get("/v1/admin/audit").await, StatusCode::OK).await;
    let statuses: Vec<i64> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["route"] == "/v1/admin/fx-rates" || e["route"] == "/v1/admin/tokens")
        .map(|e| e["http_status"].as_i64().unwrap())
        .collect();
    assert!(
        statuses.contains(&403) && statuses.contains(&201),
        "{audit}"
    );
    assert_error(
        app.admin_post("/v1/admin/tokens", &json!({"name": "x", "role": "root"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn the_audit_log_cannot_be_changed_or_emptied() {
    let app = spawn_app().await;
    json_ok(
        app.admin_post("/v1/admin/tokens", &json!({"name": "auditor"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let before = app.count("SELECT count(*) FROM admin_audit").await;
    assert!(before >= 1);
    let db = app.db().await;
    for statement in [
        "UPDATE admin_audit SET actor = 'someone else'",
        "DELETE FROM admin_audit",
        "TRUNCATE admin_audit",
    ] {
        let refused = db.batch_execute(statement).await.unwrap_err();
        assert!(
            refused.to_string().contains("append-only")
                || format!("{refused:?}").contains("append-only"),
            "{statement}: {refused:?}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM admin_audit").await, before);
}

#[tokio::test]
async fn a_change_and_its_audit_entry_stand_or_fall_together() {
    let app = spawn_app().await;
    let rate = json!({"base": "CNY", "quote": "USD", "rate": "0.14"});
    let created = app.admin_post("/v1/admin/fx-rates", &rate).await;
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    json_ok(created, StatusCode::CREATED).await;
    // Recorded once, with the outcome and the body's digest.
    let db = app.db().await;
    let entries = db
        .query(
            "SELECT http_status, body_sha256 FROM admin_audit WHERE request_id = $1",
            &[&request_id],
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].get::<_, i16>(0), 201);
    assert_eq!(
        entries[0].get::<_, Option<String>>(1).map(|d| d.len()),
        Some(64)
    );

    // When the audit entry cannot be written, the change is not made either.
    db.batch_execute(
        "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'the audit log is unavailable'; END $$;
         CREATE TRIGGER test_refuse_audit BEFORE INSERT ON admin_audit
           FOR EACH ROW EXECUTE FUNCTION test_refuse_audit();",
    )
    .await
    .unwrap();
    let refused = app
        .admin_post(
            "/v1/admin/fx-rates",
            &json!({"base": "CNY", "quote": "EUR", "rate": "0.13"}),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let wallet = app
        .admin_post("/v1/admin/wallets", &json!({"name": "Unrecorded Pay"}))
        .await;
    assert_eq!(wallet.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.count("SELECT count(*) FROM fx_rates WHERE quote = 'EUR'")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM wallets WHERE name = 'Unrecorded Pay'")
            .await,
        0
    );
    db.batch_execute("DROP TRIGGER test_refuse_audit ON admin_audit")
        .await
        .unwrap();
}
