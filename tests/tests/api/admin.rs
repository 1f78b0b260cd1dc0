//! The operator's API and the unauthenticated endpoints.

use crate::helpers::{assert_error, json_ok, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn health_and_readiness_need_no_auth() {
    let app = spawn_app().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert!(ready.headers().contains_key("x-request-id"));
    let missing = app
        .http
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn admin_calls_need_the_admin_token() {
    let app = spawn_app().await;
    let body = json!({"name": "Shop", "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY"});
    let none = app
        .http
        .post(app.url("/v1/admin/merchants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(none, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = app
        .http
        .post(app.url("/v1/admin/merchants"))
        .bearer_auth("x".repeat(32))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A merchant key is not an admin token.
    let merchant = app.create_merchant().await;
    let as_merchant = app
        .http
        .post(app.url("/v1/admin/wallets"))
        .bearer_auth(&merchant.manager_key)
        .json(&json!({"name": "w"}))
        .send()
        .await
        .unwrap();
    assert_error(as_merchant, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.count("SELECT count(*) FROM merchants").await, 1);
}

#[tokio::test]
async fn a_merchant_is_created_with_its_account_and_webhook_secret() {
    let app = spawn_app().await;
    let body = json!({"name": "Shop", "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY", "time_zone": "Asia/Hong_Kong"});
    let merchant = json_ok(
        app.admin_post("/v1/admin/merchants", &body).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(merchant["id"].as_str().unwrap().starts_with("mch_"));
    assert!(merchant["account_id"].as_str().unwrap().starts_with("acc_"));
    assert!(merchant["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert_eq!(merchant["fee_rate_bps"], 38);
    assert_eq!(merchant["time_zone"], "Asia/Hong_Kong");
    let key = json_ok(
        app.admin_post(
            &format!(
                "/v1/admin/merchants/{}/api-keys",
                merchant["id"].as_str().unwrap()
            ),
            &json!({"scopes": ["reports"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let account = json_ok(
        app.http
            .get(app.url(&format!(
                "/v1/accounts/{}",
                merchant["account_id"].as_str().unwrap()
            )))
            .bearer_auth(key["key"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        account,
        json!({"id": merchant["account_id"], "currency": "CNY", "balance": "0.00"})
    );
    // The key's secret is stored only as its SHA-256.
    let (key_id, secret) = key["key"].as_str().unwrap().split_once('.').unwrap();
    let hashed: i64 = app
        .db()
        .await
        .query_one("SELECT count(*) FROM api_keys WHERE id = $1 AND secret_sha256 = sha256(convert_to($2, 'UTF8'))", &[&key_id, &secret])
        .await
        .unwrap()
        .get(0);
    assert_eq!(hashed, 1);
}

#[tokio::test]
async fn merchant_fields_are_checked_for_the_emv_limits() {
    let app = spawn_app().await;
    let base = json!({"name": "Shop", "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY"});
    for (field, value) in [
        ("name", json!("N".repeat(26))),
        ("name", json!("咖啡店")),
        ("name", json!("")),
        ("city", json!("C".repeat(16))),
        ("city", json!("上海")),
        ("country", json!("China")),
        ("mcc", json!("58")),
        ("currency", json!("XYZ")),
        ("fee_rate_bps", json!(10_001)),
        ("local_name", json!("店".repeat(26))),
        ("local_language", json!("chinese")),
        ("webhook_url", json!("ftp://example.com/hook")),
        ("country", json!("ZZ")),
        ("time_zone", json!("Mars/Olympus")),
        ("time_zone", json!("PST")),
        ("time_zone", json!("UTC+3")),
    ] {
        let mut body = base.clone();
        body[field] = value;
        if field == "local_language" {
            body["local_name"] = json!("店");
        }
        let error = assert_error(
            app.admin_post("/v1/admin/merchants", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{field}: {error}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM merchants").await, 0);
}

#[tokio::test]
async fn api_key_scopes_are_checked() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let path = format!("/v1/admin/merchants/{}/api-keys", merchant.id);
    assert_error(
        app.admin_post(&path, &json!({"scopes": ["admin"]})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_error(
        app.admin_post(&path, &json!({"scopes": []})).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let unknown = app
        .admin_post(
            "/v1/admin/merchants/mch_nope/api-keys",
            &json!({"scopes": ["orders"]}),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn funding_limits_are_set_per_currency() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let path = format!("/v1/admin/wallets/{}/funding-limits", wallet.wallet_id);
    let set = json_ok(
        app.admin_post(&path, &json!({"currency": "JPY", "limit": "500000"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(set["limit"], "500000");
    assert_eq!(set["currency"], "JPY");
    assert_error(
        app.admin_post(&path, &json!({"currency": "JPY", "limit": "1.5"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_error(
        app.admin_post(&path, &json!({"currency": "JPY", "limit": "-1"}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let unknown = app
        .admin_post(
            "/v1/admin/wallets/wal_nope/funding-limits",
            &json!({"currency": "CNY", "limit": "1"}),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn operators_can_reconcile_the_ledger_and_payments() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    let paid = json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;

    let invariants = json_ok(
        app.admin_get("/v1/admin/ledger/invariants").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(invariants["ok"], true, "{invariants}");
    let check = json!({"payment_ids": [paid["payment_id"], "pay_neverhappened"]});
    let reconciled = json_ok(
        app.admin_post("/v1/admin/reconciliation/payments", &check)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reconciled["checked"], 2);
    assert_eq!(reconciled["settled_once"], 1);
    assert_eq!(reconciled["problems"][0]["payment_id"], "pay_neverhappened");

    // A broken ledger is reported, not hidden.
    app.db().await.execute("UPDATE account_balances SET balance_minor = balance_minor + 1 WHERE account_id = $1 AND shard = 0", &[&customer]).await.unwrap();
    let broken = json_ok(
        app.admin_get("/v1/admin/ledger/invariants").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(broken["ok"], false);
    assert!(
        broken["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["invariant"] == 2),
        "{broken}"
    );
    // Mend it so the after-test check sees a whole ledger again.
    app.db().await.execute("UPDATE account_balances SET balance_minor = balance_minor - 1 WHERE account_id = $1 AND shard = 0", &[&customer]).await.unwrap();
}

#[tokio::test]
async fn named_admin_tokens_act_under_their_own_name_until_revoked() {
    let app = spawn_app().await;
    let issued = json_ok(
        app.admin_post("/v1/admin/tokens", &json!({"name": "Alice (ops)"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let token_id = issued["id"].as_str().unwrap().to_owned();
    let token = issued["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{token_id}.")));
    assert_eq!(issued["created_by"], "bootstrap");
    // Only the hash is stored.
    let stored = app
        .count(&format!(
            "SELECT count(*) FROM admin_tokens t WHERE t::text LIKE '%{}%'",
            token.split_once('.').unwrap().1
        ))
        .await;
    assert_eq!(stored, 0);

    let wallet = |bearer: String| {
        app.http
            .post(app.url("/v1/admin/wallets"))
            .bearer_auth(bearer)
            .json(&json!({"name": "w"}))
            .send()
    };
    json_ok(wallet(token.clone()).await.unwrap(), StatusCode::CREATED).await;
    // A right id with a wrong secret is refused.
    let forged = format!("{token_id}.{}", "A".repeat(32));
    assert_error(
        wallet(forged).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let revoked = json_ok(
        app.admin_delete(&format!("/v1/admin/tokens/{token_id}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(revoked["revoked_at"].is_string());
    assert_error(
        wallet(token).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM wallets").await, 1);
    assert_error(
        app.admin_delete("/v1/admin/tokens/adm_nothere").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.admin_post("/v1/admin/tokens", &json!({"name": " "}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM admin_tokens").await, 1);
}

#[tokio::test]
async fn every_admin_change_is_in_the_audit_log_and_reads_are_not() {
    let app = spawn_app().await;
    let issued = json_ok(
        app.admin_post("/v1/admin/tokens", &json!({"name": "bob"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let token_id = issued["id"].as_str().unwrap();
    let token = issued["token"].as_str().unwrap();
    // Bob creates a wallet, then tries a bad one (refused, still recorded).
    let mut bodies = Vec::new();
    for name in ["w", ""] {
        let body = format!(r#"{{"name": "{name}"}}"#);
        bodies.push(body.clone());
        app.http
            .post(app.url("/v1/admin/wallets"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
    }
    // An unauthenticated attempt is not an admin action.
    app.http
        .post(app.url("/v1/admin/wallets"))
        .bearer_auth("nope")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();

    let read = |query: &'static str| {
        app.http
            .get(app.url(&format!("/v1/admin/audit{query}")))
            .bearer_auth(&app.admin_token)
            .send()
    };
    let all = json_ok(read("").await.unwrap(), StatusCode::OK).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{all}");
    assert_eq!(items[0]["actor"], token_id);
    assert_eq!(items[0]["http_status"], 400);
    assert_eq!(items[1]["actor"], token_id);
    assert_eq!(items[1]["http_status"], 201);
    assert_eq!(items[1]["method"], "POST");
    assert_eq!(items[1]["route"], "/v1/admin/wallets");
    assert_eq!(items[2]["actor"], "bootstrap");
    assert_eq!(items[2]["path"], "/v1/admin/tokens");
    // Each entry keeps a digest of the body exactly as it was sent.
    let sha256 = |text: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(items[1]["body_sha256"], sha256(&bodies[0]));
    assert_eq!(items[0]["body_sha256"], sha256(&bodies[1]));
    assert!(all["next_cursor"].is_null());

    // Paging walks the same entries, newest first; reading did not add any.
    let first = json_ok(read("?limit=2").await.unwrap(), StatusCode::OK).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let rest = json_ok(
        app.admin_get(&format!("/v1/admin/audit?limit=2&cursor={cursor}"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["actor"], "bootstrap");
    assert_error(
        read("?cursor=xyz").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM admin_audit").await, 3);
}

#[tokio::test]
async fn operators_list_a_merchants_api_keys_without_their_secrets() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let cashier_key_id = merchant.cashier_key.split_once('.').unwrap().0.to_owned();
    json_ok(
        app.admin_delete(&format!(
            "/v1/admin/merchants/{}/api-keys/{cashier_key_id}",
            merchant.id
        ))
        .await,
        StatusCode::OK,
    )
    .await;
    let list = |query: String| {
        app.http
            .get(app.url(&format!(
                "/v1/admin/merchants/{}/api-keys{query}",
                merchant.id
            )))
            .bearer_auth(&app.admin_token)
            .send()
    };
    let first = json_ok(list("?limit=1".into()).await.unwrap(), StatusCode::OK).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_ok(
        list(format!("?limit=1&cursor={cursor}")).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(second["next_cursor"].is_null());
    let keys: Vec<_> = [&first, &second]
        .iter()
        .map(|page| page["items"][0].clone())
        .collect();
    let ids: Vec<_> = keys.iter().map(|k| k["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&cashier_key_id.as_str()), "{keys:?}");
    for key in &keys {
        let text = key.to_string();
        assert!(!text.contains(merchant.manager_key.split_once('.').unwrap().1));
        assert!(!text.contains(merchant.cashier_key.split_once('.').unwrap().1));
        assert_eq!(key["revoked_at"].is_string(), key["id"] == cashier_key_id);
    }
    let unknown = app.admin_get("/v1/admin/merchants/mer_nope/api-keys").await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not_found").await;
    // With the merchant's own key: not an operator.
    let as_merchant = app
        .http
        .get(app.url(&format!("/v1/admin/merchants/{}/api-keys", merchant.id)))
        .bearer_auth(&merchant.manager_key)
        .send()
        .await
        .unwrap();
    assert_error(as_merchant, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_blocked_customer_account_can_neither_pay_nor_move_money_until_unblocked() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let friend = app.funded_customer(&wallet, "0").await;
    let blocked = json_ok(
        app.admin_post(&format!("/v1/admin/accounts/{customer}/block"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(blocked["blocked"], true);

    let order = app.create_order(&merchant.cashier_key, "12.00").await;
    let payment = crate::helpers::TestApp::pay_body(&order, &customer);
    for _retry in 0..2 {
        let declined = assert_error(
            wallet.post("payments", &payment).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "account_blocked",
        )
        .await;
        assert!(declined["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&customer));
    }
    let transfer = json!({"wallet_txn_id": qrgate_domain::ids::mint("tr"), "from_account_id": customer, "to_account_id": friend, "amount": "1.00", "currency": "CNY"});
    assert_error(
        wallet.post("transfers", &transfer).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_blocked",
    )
    .await;
    let top_up = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": customer, "amount": "1.00", "currency": "CNY"});
    assert_error(
        wallet.post("top-ups", &top_up).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_blocked",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "50.00");
    assert_eq!(app.customer_balance(&wallet, &friend).await, "0.00");
    assert_eq!(app.merchant_balance(&merchant).await, "0.00");
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(
        app.order(&merchant.cashier_key, order_id).await["status"],
        "pending"
    );

    // Only customer accounts can be blocked; unknown ones are not found.
    assert_error(
        app.admin_post(
            &format!("/v1/admin/accounts/{}/block", merchant.account_id),
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let unblocked = json_ok(
        app.admin_post(
            &format!("/v1/admin/accounts/{customer}/unblock"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unblocked["blocked"], false);
    // The declined wallet_txn_id keeps its answer; a new one pays.
    assert_error(
        wallet.post("payments", &payment).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_blocked",
    )
    .await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "38.00");

    // A block freezes spending, not receiving.
    json_ok(
        app.admin_post(&format!("/v1/admin/accounts/{friend}/block"), &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    let to_blocked = json!({"wallet_txn_id": qrgate_domain::ids::mint("tr"), "from_account_id": customer, "to_account_id": friend, "amount": "1.00", "currency": "CNY"});
    json_ok(
        wallet.post("transfers", &to_blocked).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &friend).await, "1.00");
}

#[tokio::test]
async fn a_blocked_merchant_takes_no_orders_and_no_payments_but_can_refund() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let paid = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &paid, &customer).await, StatusCode::OK).await;
    let pending = app.create_order(&merchant.cashier_key, "5.00").await;
    let merchant_before = app.merchant_balance(&merchant).await;

    let blocked = json_ok(
        app.admin_post(
            &format!("/v1/admin/merchants/{}/block", merchant.id),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(blocked["blocked"], true);
    assert_error(
        app.create_order_raw(
            &merchant.cashier_key,
            &json!({"amount": "1.00", "currency": "CNY", "merchant_reference": "after-block"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_blocked",
    )
    .await;
    assert_error(
        app.pay(&wallet, &pending, &customer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "account_blocked",
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "40.00");
    assert_eq!(app.merchant_balance(&merchant).await, merchant_before);
    let pending_id = pending["id"].as_str().unwrap();
    let events = json_ok(
        app.merchant_get(
            &merchant.cashier_key,
            &format!("/v1/orders/{pending_id}/events"),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(events["items"][1]["code"], "account_blocked", "{events}");

    // Money owed back to customers still goes back.
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/orders/{}/refunds", paid["id"].as_str().unwrap()),
            &json!({"amount": "10.00", "refund_reference": "r1"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.customer_balance(&wallet, &customer).await, "50.00");

    json_ok(
        app.admin_post(
            &format!("/v1/admin/merchants/{}/unblock", merchant.id),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    json_ok(app.pay(&wallet, &pending, &customer).await, StatusCode::OK).await;
    assert_error(
        app.admin_post("/v1/admin/merchants/mer_nope/block", &json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
