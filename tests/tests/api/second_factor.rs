//! Second factors with real TOTP codes, computed here by the test's own RFC 6238 (checked
//! against the RFC's vectors), not by the gateway's library.

use crate::helpers::{assert_error, json_ok, spawn_app, TestApp, TestMerchant};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha1::Sha1;

const STEP_SECONDS: u64 = 30;

fn base32_decoded(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u64, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let index = ALPHABET.iter().position(|a| *a == c).expect("base32") as u64;
        value = (value << 5) | index;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 with HMAC-SHA-1, `digits` digits, at `unix` seconds.
fn code_at(secret: &[u8], unix: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).unwrap();
    mac.update(&(unix / STEP_SECONDS).to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = (hash[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

fn now() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// A factor as an authenticator app holds it.
pub struct App(Vec<u8>);

impl App {
    /// The code of the step `steps` from now.
    pub fn code(&self, steps: i64) -> String {
        code_at(
            &self.0,
            (now() as i64 + steps * STEP_SECONDS as i64) as u64,
            6,
        )
    }
}

#[test]
fn the_tests_own_totp_follows_rfc_6238() {
    let secret = b"12345678901234567890";
    assert_eq!(code_at(secret, 59, 8), "94287082");
    assert_eq!(code_at(secret, 1_111_111_109, 8), "07081804");
    assert_eq!(code_at(secret, 20_000_000_000, 8), "65353130");
    assert_eq!(base32_decoded("GEZDGNBVGY3TQOJQ"), b"1234567890");
}

pub async fn call(
    app: &TestApp,
    bearer: &str,
    method: Method,
    path: &str,
    body: &Value,
    code: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .request(method, app.url(path))
        .bearer_auth(bearer)
        .json(body);
    if let Some(code) = code {
        request = request.header("Qrgate-OTP", code);
    }
    request.send().await.unwrap()
}

/// Enrolls `bearer`'s factor at `path` and confirms it; the authenticator app.
pub async fn enrolled(app: &TestApp, bearer: &str, path: &str) -> App {
    let enrollment = json_ok(
        call(app, bearer, Method::POST, path, &json!({}), None).await,
        StatusCode::CREATED,
    )
    .await;
    let secret = enrollment["secret"].as_str().unwrap();
    assert!(enrollment["otpauth_uri"]
        .as_str()
        .unwrap()
        .contains(&format!("secret={secret}")));
    let authenticator = App(base32_decoded(secret));
    // A wrong first code does not confirm it.
    let wrong = format!(
        "{:06}",
        (authenticator.code(0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    assert_error(
        call(
            app,
            bearer,
            Method::POST,
            &format!("{path}/confirm"),
            &json!({"code": wrong}),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "second_factor_invalid",
    )
    .await;
    json_ok(
        call(
            app,
            bearer,
            Method::POST,
            &format!("{path}/confirm"),
            &json!({"code": authenticator.code(0)}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    authenticator
}

#[tokio::test]
async fn an_operators_sensitive_changes_need_its_second_factor_each_code_once() {
    let app = spawn_app().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let issued = json_ok(
        app.admin_post("/v1/admin/tokens", &json!({"name": "Ana", "role": "risk"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let ana = issued["token"].as_str().unwrap().to_owned();
    let ana_id = issued["id"].as_str().unwrap().to_owned();
    let block = format!("/v1/admin/accounts/{customer}/block");
    let blocked = || async {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT count(*) FROM accounts WHERE id = $1 AND blocked_at IS NOT NULL",
                &[&customer],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };

    // No factor: refused, and nothing changed.
    assert_error(
        call(&app, &ana, Method::POST, &block, &json!({}), None).await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    assert_eq!(blocked().await, 0);

    let authenticator = enrolled(&app, &ana, "/v1/admin/second-factor").await;
    // Stored sealed, never as the secret the app holds.
    let stored: String = app
        .db()
        .await
        .query_one(
            "SELECT secret FROM second_factors WHERE holder_id = $1",
            &[&ana_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("sealed:v1:"), "{stored}");

    // Without a code, or with one not of now: refused, nothing changed.
    assert_error(
        call(&app, &ana, Method::POST, &block, &json!({}), None).await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    for stale in [
        authenticator.code(-10),
        authenticator.code(10),
        "12345".into(),
        "abcdef".into(),
    ] {
        assert_error(
            call(&app, &ana, Method::POST, &block, &json!({}), Some(&stale)).await,
            StatusCode::FORBIDDEN,
            "second_factor_invalid",
        )
        .await;
    }
    assert_eq!(blocked().await, 0);
    // The confirmation spent this step's code; the next step's is good, once.
    let code = authenticator.code(1);
    json_ok(
        call(&app, &ana, Method::POST, &block, &json!({}), Some(&code)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(blocked().await, 1);
    let unblock = format!("/v1/admin/accounts/{customer}/unblock");
    assert_error(
        call(&app, &ana, Method::POST, &unblock, &json!({}), Some(&code)).await,
        StatusCode::FORBIDDEN,
        "second_factor_invalid",
    )
    .await;
    // Reads need no code; a second enrollment is refused while one is confirmed.
    json_ok(
        call(
            &app,
            &ana,
            Method::GET,
            "/v1/admin/risk-limits",
            &Value::Null,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_error(
        call(
            &app,
            &ana,
            Method::POST,
            "/v1/admin/second-factor",
            &json!({}),
            None,
        )
        .await,
        StatusCode::CONFLICT,
        "second_factor_enrolled",
    )
    .await;

    // Wrong codes in a row hold the factor: then even a right code waits.
    for _ in 0..5 {
        call(
            &app,
            &ana,
            Method::POST,
            &unblock,
            &json!({}),
            Some("000000"),
        )
        .await;
    }
    let held = call(
        &app,
        &ana,
        Method::POST,
        &unblock,
        &json!({}),
        Some(&authenticator.code(1)),
    )
    .await;
    assert!(held.headers().contains_key("retry-after"));
    assert_error(held, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(blocked().await, 1);

    // A lost phone: an admin removes the factor; Ana must enroll again to act.
    json_ok(
        call(
            &app,
            &app.admin_token,
            Method::DELETE,
            &format!("/v1/admin/tokens/{ana_id}/second-factor"),
            &Value::Null,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_error(
        call(
            &app,
            &ana,
            Method::POST,
            &unblock,
            &json!({}),
            Some(&authenticator.code(0)),
        )
        .await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    // The bootstrap token is the break-glass credential: it has no factor to give.
    assert_error(
        call(
            &app,
            &app.admin_token,
            Method::POST,
            "/v1/admin/second-factor",
            &json!({}),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

async fn staff_key(app: &TestApp, merchant: &TestMerchant, name: &str) -> String {
    let issued = json_ok(
        call(
            app,
            &merchant.manager_key,
            Method::POST,
            "/v1/keys",
            &json!({"name": name, "scopes": ["orders", "refunds"]}),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    issued["key"].as_str().unwrap().to_owned()
}

fn refund_body(amount: &str, reference: &str) -> Value {
    json!({"amount": amount, "refund_reference": reference})
}

#[tokio::test]
async fn a_refund_above_the_shops_threshold_needs_the_refunding_keys_second_factor() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;
    let order = app.create_order(&merchant.cashier_key, "100.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let refunds = format!("/v1/orders/{}/refunds", order["id"].as_str().unwrap());
    let ana = staff_key(&app, &merchant, "Ana").await;

    let set = json_ok(
        call(
            &app,
            &merchant.manager_key,
            Method::PUT,
            "/v1/me/refund-second-factor",
            &json!({"above": "50.00"}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["refund_second_factor_above"], "50.00");
    // A staff key without `keys` cannot lift it.
    assert_error(
        call(
            &app,
            &ana,
            Method::PUT,
            "/v1/me/refund-second-factor",
            &json!({"above": null}),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Up to the threshold, no code.
    json_ok(
        call(
            &app,
            &ana,
            Method::POST,
            &refunds,
            &refund_body("30.00", "R1"),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // Above it: the key has no factor, so it cannot; nothing is refunded.
    assert_error(
        call(
            &app,
            &ana,
            Method::POST,
            &refunds,
            &refund_body("60.00", "R2"),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    let authenticator = enrolled(&app, &ana, "/v1/me/second-factor").await;
    let me = json_ok(
        call(&app, &ana, Method::GET, "/v1/me", &Value::Null, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            me["second_factor"].clone(),
            me["refund_second_factor_above"].clone()
        ),
        (json!(true), json!("50.00"))
    );
    assert_error(
        call(
            &app,
            &ana,
            Method::POST,
            &refunds,
            &refund_body("60.00", "R2"),
            Some("000000"),
        )
        .await,
        StatusCode::FORBIDDEN,
        "second_factor_invalid",
    )
    .await;
    let refunded = json_ok(
        call(
            &app,
            &ana,
            Method::POST,
            &refunds,
            &refund_body("60.00", "R2"),
            Some(&authenticator.code(1)),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    // The same refund again (a retry) gets its answer without a new code.
    let again = json_ok(
        call(
            &app,
            &ana,
            Method::POST,
            &refunds,
            &refund_body("60.00", "R2"),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again["id"], refunded["id"]);
    let total: i64 = app
        .db()
        .await
        .query_one("SELECT sum(amount_minor)::bigint FROM refunds WHERE order_id = $1 AND outcome = 'succeeded'", &[&order["id"].as_str().unwrap()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 9_000);

    // Once the manager has a factor, lifting the threshold needs its code.
    let manager = enrolled(&app, &merchant.manager_key, "/v1/me/second-factor").await;
    assert_error(
        call(
            &app,
            &merchant.manager_key,
            Method::PUT,
            "/v1/me/refund-second-factor",
            &json!({"above": null}),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "second_factor_required",
    )
    .await;
    json_ok(
        call(
            &app,
            &merchant.manager_key,
            Method::PUT,
            "/v1/me/refund-second-factor",
            &json!({"above": null}),
            Some(&manager.code(1)),
        )
        .await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn one_code_sent_by_a_herd_at_once_is_accepted_once_and_bad_fields_change_nothing() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let manager = enrolled(&app, &merchant.manager_key, "/v1/me/second-factor").await;
    let code = manager.code(1);
    let herd = futures_util::future::join_all((0..10).map(|i| {
        let body = json!({"above": format!("{i}.00")});
        let (app, key, code) = (&app, &merchant.manager_key, &code);
        async move {
            call(
                app,
                key,
                Method::PUT,
                "/v1/me/refund-second-factor",
                &body,
                Some(code),
            )
            .await
            .status()
        }
    }))
    .await;
    assert_eq!(
        herd.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{herd:?}"
    );
    // The others sent a spent code: refused, and counted as wrong codes (five hold it).
    let refused = [
        StatusCode::OK,
        StatusCode::FORBIDDEN,
        StatusCode::TOO_MANY_REQUESTS,
    ];
    assert!(herd.iter().all(|s| refused.contains(s)), "{herd:?}");
    let me = json_ok(
        call(
            &app,
            &merchant.manager_key,
            Method::GET,
            "/v1/me",
            &Value::Null,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let before = me["refund_second_factor_above"].clone();
    for above in [
        "1.00\u{0}",
        "1.00 ",
        "-1.00",
        "1.001",
        "99999999999999.00",
        "1e3",
    ] {
        assert_error(
            call(
                &app,
                &merchant.manager_key,
                Method::PUT,
                "/v1/me/refund-second-factor",
                &json!({"above": above}),
                Some(&manager.code(1)),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    // A NUL anywhere in a body is refused as such, and so is any other code that is not
    // six digits (the document's pattern), before an enrollment is looked up; a
    // well-formed code finds none waiting (this one is confirmed). None changes anything.
    for (code, status, error) in [
        ("12345\u{0}", StatusCode::BAD_REQUEST, "invalid_request"),
        ("1234567", StatusCode::BAD_REQUEST, "invalid_request"),
        (" 12345", StatusCode::BAD_REQUEST, "invalid_request"),
        ("123456", StatusCode::NOT_FOUND, "not_found"),
    ] {
        assert_error(
            call(
                &app,
                &merchant.manager_key,
                Method::POST,
                "/v1/me/second-factor/confirm",
                &json!({"code": code}),
                None,
            )
            .await,
            status,
            error,
        )
        .await;
    }
    let me = json_ok(
        call(
            &app,
            &merchant.manager_key,
            Method::GET,
            "/v1/me",
            &Value::Null,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["refund_second_factor_above"], before);
}
