//! `spawn_app()`: a fresh database, the real gateway on a random port, and one method
//! per thing a test does. Dropping a `TestApp` checks the ledger invariants of
//! docs/contract.md §4 — after every test, whatever it did — and that every request the
//! gateway accepted and every JSON response it sent matched `/openapi.json`.

use gateway::{
    sealed::{Keyring, SecretKind, SecretsKey},
    Application, Settings,
};
use qrgate_domain::signing::SigningSecret;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use simulator::wallet::WalletClient;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    /// QRGATE_SECRETS_KEY of this app and its replicas: this test's own.
    pub secrets_key: String,
    pub http: reqwest::Client,
    pub db_url: String,
    /// This app's and its replicas' OpenAPI checkers.
    openapi_checkers: Mutex<Vec<Arc<gateway::openapi::check::Checker>>>,
}

/// A merchant with a manager key (all scopes) and a cashier key (`orders`).
pub struct TestMerchant {
    pub id: String,
    pub account_id: String,
    pub manager_key: String,
    pub cashier_key: String,
}

pub fn base_database_url() -> String {
    std::env::var("QRGATE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The same server, another database.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("a database URL has a path");
    match query {
        Some(q) => format!("{server}/{db}?{q}"),
        None => format!("{server}/{db}"),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the gateway with extra configuration (`QRGATE_*` variables).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(&base_database_url(), |db_url| db_url.to_owned(), overrides).await
}

/// Starts the gateway on a fresh database of the server at `base` (which the test
/// reaches as it is), the gateway reaching it by `gateway_url(test's URL of the database)`.
pub async fn spawn_app_on(
    base: &str,
    gateway_url: impl FnOnce(&str) -> String,
    overrides: &[(&str, &str)],
) -> TestApp {
    // TEST_LOG=1 shows the gateway's logs (filtered by RUST_LOG) for a failing test.
    if std::env::var_os("TEST_LOG").is_some() {
        gateway::init_logging("text");
    }
    let db_name = format!("qrgate_test_{}", qrgate_domain::ids::random_base32(16));
    let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL answers (./dev test starts one)");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .await
        .expect("creating the test database");
    let db_url = with_database(base, &db_name);
    let admin_token = qrgate_domain::ids::random_base32(32);
    let secrets_key = gateway::sealed::SecretsKey::generate_base64();
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), gateway_url(&db_url)),
        ("QRGATE_ADMIN_TOKEN".into(), admin_token.clone()),
        ("QRGATE_SECRETS_KEY".into(), secrets_key.clone()),
        ("QRGATE_LISTEN".into(), "127.0.0.1:0".into()),
        ("QRGATE_ALLOW_PRIVATE_WEBHOOKS".into(), "1".into()),
        ("QRGATE_POOL_SIZE_MAX".into(), "8".into()),
        ("QRGATE_OPENAPI_CHECK".into(), "1".into()),
    ]);
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let settings = Settings::from_vars(&vars).expect("test settings are valid");
    let app = Application::build(settings)
        .await
        .expect("the gateway starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let openapi_checkers = Mutex::new(app.openapi_checker().into_iter().collect());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        admin_token,
        secrets_key,
        http: reqwest::Client::new(),
        db_url,
        openapi_checkers,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let db_url = self.db_url.clone();
        let violations = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(ledger_violations(&db_url))
        })
        .join()
        .expect("the invariant check ran");
        assert!(
            violations.is_empty(),
            "ledger invariants broken:\n{}",
            violations.join("\n")
        );
        let mismatches: Vec<String> = (self.openapi_checkers.lock().unwrap().iter())
            .flat_map(|checker| checker.violations())
            .collect();
        assert!(
            mismatches.is_empty(),
            "requests or responses that /openapi.json does not describe:\n{}",
            mismatches.join("\n")
        );
    }
}

/// Every violation of docs/contract.md §4 in the database, and of the balances that
/// reports store (`balances_at_violations`, numbered 7), as text.
pub async fn ledger_violations(db_url: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT invariant, detail FROM ledger_invariant_violations()
             UNION ALL SELECT invariant, detail FROM balances_at_violations()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "invariant {}: {}",
                r.get::<_, i32>(0),
                r.get::<_, String>(1)
            )
        })
        .collect()
}

/// Asserts the one error shape with `code`, and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let body: Value = response.json().await.expect("an error body is JSON");
    assert_eq!(actual, status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("req_")),
        "{body}"
    );
    body
}

pub async fn json_ok(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "body: {text}");
    serde_json::from_str(&text).expect("a JSON body")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A raw database connection, for assertions the API does not expose.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> Response {
        self.http
            .patch(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn admin_put(&self, path: &str, body: &Value) -> Response {
        self.http
            .put(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The keys this app's secrets are sealed under.
    pub fn keyring(&self) -> Keyring {
        Keyring::new(SecretsKey::from_base64(&self.secrets_key).unwrap(), None)
    }

    /// The wallet's signing secret, read from the database and opened: for a second
    /// client of the same wallet (another replica's address).
    pub async fn wallet_secret(&self, wallet_id: &str) -> SigningSecret {
        let row = self
            .db()
            .await
            .query_one(
                "SELECT id, secret FROM wallet_secrets WHERE wallet_id = $1 ORDER BY created_at LIMIT 1",
                &[&wallet_id],
            )
            .await
            .unwrap();
        self.keyring()
            .open_signing_secret(SecretKind::WalletSigning, row.get(0), row.get(1))
            .unwrap()
    }

    /// The merchant's current webhook signing secret, read from the database and opened.
    pub async fn webhook_secret(&self, merchant_id: &str) -> String {
        let row = self
            .db()
            .await
            .query_one(
                "SELECT webhook_secret FROM merchants WHERE id = $1",
                &[&merchant_id],
            )
            .await
            .unwrap();
        self.keyring()
            .open_signing_secret(SecretKind::MerchantWebhook, merchant_id, row.get(0))
            .unwrap()
            .expose()
    }

    /// An order's timeline items (`GET /v1/orders/{id}/events`).
    pub async fn timeline(&self, key: &str, order_id: &str) -> Vec<Value> {
        let events = json_ok(
            self.merchant_get(key, &format!("/v1/orders/{order_id}/events"))
                .await,
            StatusCode::OK,
        )
        .await;
        events["items"].as_array().unwrap().clone()
    }

    pub async fn admin_delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_merchant_with(&self, fields: Value) -> TestMerchant {
        let mut body = json!({
            "name": "Lucky Noodle Bar", "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY",
        });
        for (k, v) in fields.as_object().unwrap() {
            body[k] = v.clone();
        }
        let merchant = json_ok(
            self.admin_post("/v1/admin/merchants", &body).await,
            StatusCode::CREATED,
        )
        .await;
        let id = merchant["id"].as_str().unwrap().to_owned();
        let manager_key = self
            .create_api_key(&id, &["orders", "refunds", "reports", "keys"])
            .await;
        let cashier_key = self.create_api_key(&id, &["orders"]).await;
        TestMerchant {
            account_id: merchant["account_id"].as_str().unwrap().to_owned(),
            id,
            manager_key,
            cashier_key,
        }
    }

    pub async fn create_merchant(&self) -> TestMerchant {
        self.create_merchant_with(json!({})).await
    }

    pub async fn create_api_key(&self, merchant_id: &str, scopes: &[&str]) -> String {
        let key = json_ok(
            self.admin_post(
                &format!("/v1/admin/merchants/{merchant_id}/api-keys"),
                &json!({"scopes": scopes}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        key["key"].as_str().unwrap().to_owned()
    }

    /// A registered wallet with a funding limit of 1,000,000 CNY.
    pub async fn create_wallet(&self) -> WalletClient {
        let wallet = json_ok(
            self.admin_post("/v1/admin/wallets", &json!({"name": "Test Pay"}))
                .await,
            StatusCode::CREATED,
        )
        .await;
        let id = wallet["id"].as_str().unwrap();
        let secret = SigningSecret::parse(wallet["secret"].as_str().unwrap()).unwrap();
        self.set_funding_limit(id, "CNY", "1000000").await;
        WalletClient::new(&self.address, id, secret, self.http.clone())
    }

    pub async fn set_funding_limit(&self, wallet_id: &str, currency: &str, limit: &str) {
        json_ok(
            self.admin_post(
                &format!("/v1/admin/wallets/{wallet_id}/funding-limits"),
                &json!({"currency": currency, "limit": limit}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }

    /// A customer account of `wallet` in CNY holding `balance`.
    pub async fn funded_customer(&self, wallet: &WalletClient, balance: &str) -> String {
        self.funded_customer_in(wallet, "CNY", balance).await
    }

    /// A customer account of `wallet` in `currency` holding `balance` (the wallet's
    /// funding limit in that currency is raised for it when needed).
    pub async fn funded_customer_in(
        &self,
        wallet: &WalletClient,
        currency: &str,
        balance: &str,
    ) -> String {
        if currency != "CNY" {
            self.set_funding_limit(&wallet.wallet_id, currency, "1000000")
                .await;
        }
        let reference = format!("cust-{}", qrgate_domain::ids::random_base32(8));
        let customer = json_ok(
            wallet
                .post(
                    "customers",
                    &json!({"customer_reference": reference, "currency": currency}),
                )
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        let account = customer["account_id"].as_str().unwrap().to_owned();
        if balance != "0" {
            let top_up = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": account, "amount": balance, "currency": currency});
            json_ok(
                wallet.post("top-ups", &top_up).await.unwrap(),
                StatusCode::OK,
            )
            .await;
        }
        account
    }

    /// Calls an operation as the caller its OpenAPI `security` names: the admin token, the
    /// merchant `key`, or `wallet`'s signature over the body (or, without one, the path).
    pub async fn call_as_documented(
        &self,
        security: &Value,
        key: &str,
        wallet: &WalletClient,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let security = security.to_string();
        if security.contains("walletSignature") {
            let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
            let content = bytes.clone().unwrap_or_else(|| path.as_bytes().to_vec());
            let sig = wallet.sign(&content);
            return wallet.send(method, path, bytes, &sig).await.unwrap();
        }
        let token = if security.contains("admin") {
            &self.admin_token
        } else {
            key
        };
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// The operator sets the current rate from `base` to `quote`.
    pub async fn set_fx_rate(&self, base: &str, quote: &str, rate: &str, spread_bps: i32) -> Value {
        let body = json!({"base": base, "quote": quote, "rate": rate, "spread_bps": spread_bps});
        json_ok(
            self.admin_post("/v1/admin/fx-rates", &body).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// The operator creates a campaign as `body` describes it.
    pub async fn create_campaign(&self, body: &Value) -> Value {
        json_ok(
            self.admin_post("/v1/admin/campaigns", body).await,
            StatusCode::CREATED,
        )
        .await
    }

    /// The operator allows `account_id` as a payout destination of `merchant_id`.
    pub async fn allow_payout_account(&self, merchant_id: &str, account_id: &str) {
        json_ok(
            self.admin_post(
                &format!("/v1/admin/merchants/{merchant_id}/payout-accounts"),
                &json!({ "account_id": account_id }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }

    /// The Prometheus text of the gateway at `base`, read with `token`.
    pub async fn metrics_text(&self, base: &str, token: &str) -> String {
        let response = self
            .http
            .get(format!("{base}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// The date `days_from_today` days from today in `time_zone`, as YYYY-MM-DD.
    pub async fn date_in(&self, time_zone: &str, days_from_today: i32) -> String {
        self.db()
            .await
            .query_one(
                "SELECT ((now() AT TIME ZONE $1)::date + $2::integer)::text",
                &[&time_zone, &days_from_today],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Today's settlement report of a merchant whose time zone is `time_zone`.
    pub async fn settlement_report_today(&self, key: &str, time_zone: &str) -> Value {
        let today = self.date_in(time_zone, 0).await;
        json_ok(
            self.merchant_get(key, &format!("/v1/reports/settlement?date={today}"))
                .await,
            StatusCode::OK,
        )
        .await
    }

    pub async fn create_order_raw(&self, key: &str, body: &Value) -> Response {
        self.http
            .post(self.url("/v1/orders"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A pending CNY order for `amount`.
    pub async fn create_order(&self, key: &str, amount: &str) -> Value {
        let reference = format!("INV-{}", qrgate_domain::ids::random_base32(10));
        let body = json!({"amount": amount, "currency": "CNY", "merchant_reference": reference});
        json_ok(self.create_order_raw(key, &body).await, StatusCode::CREATED).await
    }

    pub async fn merchant_get(&self, key: &str, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn merchant_post(&self, key: &str, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn order(&self, key: &str, order_id: &str) -> Value {
        json_ok(
            self.merchant_get(key, &format!("/v1/orders/{order_id}"))
                .await,
            StatusCode::OK,
        )
        .await
    }

    /// The payment request a wallet sends for a scanned order.
    pub fn pay_body(order: &Value, account_id: &str) -> Value {
        json!({
            "wallet_txn_id": qrgate_domain::ids::mint("txn"),
            "qr_payload": order["qr_payload"],
            "customer_account_id": account_id,
            "amount": order["amount"],
            "currency": order["currency"],
        })
    }

    pub async fn pay(&self, wallet: &WalletClient, order: &Value, account_id: &str) -> Response {
        wallet
            .post("payments", &Self::pay_body(order, account_id))
            .await
            .unwrap()
    }

    /// A balance as the wallet API reports it.
    pub async fn customer_balance(&self, wallet: &WalletClient, account_id: &str) -> String {
        let account = json_ok(
            wallet.get(&format!("accounts/{account_id}")).await.unwrap(),
            StatusCode::OK,
        )
        .await;
        account["balance"].as_str().unwrap().to_owned()
    }

    /// A balance as the merchant API reports it.
    pub async fn merchant_balance(&self, merchant: &TestMerchant) -> String {
        let account = json_ok(
            self.merchant_get(
                &merchant.manager_key,
                &format!("/v1/accounts/{}", merchant.account_id),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        account["balance"].as_str().unwrap().to_owned()
    }

    /// The platform fee account's balance in minor units.
    pub async fn fee_balance_minor(&self, currency: &str) -> i64 {
        self.db()
            .await
            .query_one(
                "SELECT coalesce(sum(balance_minor), 0)::bigint FROM account_balances WHERE account_id = $1",
                &[&format!("acc_fee_{}", currency.to_lowercase())],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Every payment id in `acknowledged` is settled exactly once (the operator's check).
    pub async fn assert_settled_once(&self, acknowledged: &[String]) {
        let reconciled = json_ok(
            self.admin_post(
                "/v1/admin/reconciliation/payments",
                &json!({"payment_ids": acknowledged}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            reconciled["settled_once"], reconciled["checked"],
            "{reconciled}"
        );
        assert_eq!(reconciled["checked"], acknowledged.len(), "{reconciled}");
    }

    /// `/openapi.json` as the gateway serves it.
    pub async fn openapi_document(&self) -> Value {
        let response = self
            .http
            .get(self.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.db().await.query_one(sql, &[]).await.unwrap().get(0)
    }
}

impl TestApp {
    /// Another gateway process's worth of app (pool, workers, HTTP) on this test's
    /// database: a second replica. Returns its base URL.
    pub async fn spawn_replica(&self, overrides: &[(&str, &str)]) -> String {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), self.db_url.clone()),
            ("QRGATE_ADMIN_TOKEN".into(), self.admin_token.clone()),
            ("QRGATE_SECRETS_KEY".into(), self.secrets_key.clone()),
            ("QRGATE_LISTEN".into(), "127.0.0.1:0".into()),
            ("QRGATE_ALLOW_PRIVATE_WEBHOOKS".into(), "1".into()),
            ("QRGATE_POOL_SIZE_MAX".into(), "8".into()),
            ("QRGATE_OPENAPI_CHECK".into(), "1".into()),
        ]);
        for (k, v) in overrides {
            vars.insert((*k).into(), (*v).into());
        }
        let app = Application::build(Settings::from_vars(&vars).unwrap())
            .await
            .expect("the replica starts");
        (self.openapi_checkers.lock().unwrap()).extend(app.openapi_checker());
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }
}

/// `target/<profile>/<binary>`, as `./dev test` builds it before the tests (built
/// here only if missing: cargo unifies features differently for test builds, so a
/// build from inside a test would rebuild the workspace). Run the tests through
/// `./dev test`: a binary left by an older build tests older code.
pub fn workspace_binary(binary: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let path = profile_dir.join(binary);
    if !path.exists() {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-q", "--workspace", "--bins"])
                .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                .status()
                .unwrap();
        assert!(status.success(), "building {binary}");
    }
    path
}
