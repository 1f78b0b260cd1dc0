//! The web pages in a real browser (headless Chromium over the DevTools protocol): the
//! cashier's till and the hosted payment page, against a real gateway, with real wallet
//! payments made by the test while the page watches.

use crate::browser::{qr_codes_in, Browser};
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

/// Every log line the gateway writes in this test process (each test is its own process).
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn install() -> CapturedLog {
        let log = CapturedLog::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        log
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_till_charges_shows_the_qr_sees_the_payment_refunds_and_closes_the_shift() {
    let log = CapturedLog::install();
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let till = json_ok(
        app.merchant_post(
            &shop.manager_key,
            "/v1/keys",
            &json!({"name": "Till 1", "scopes": ["orders", "refunds", "reports"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key = till["key"].as_str().unwrap().to_owned();
    let secret = key.split_once('.').unwrap().1.to_owned();
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "500.00").await;

    let browser = Browser::launch();
    let page = browser.page(800, 1000, false);
    page.goto(&app.url("/cashier"));
    page.eval("localStorage.setItem('qrgate.lang', 'en')");

    // A wrong key: said in words, and the page stays signed out.
    page.eval("document.getElementById('key').value = 'key_nope.nope'");
    page.click("#signin-form button[type=submit]");
    page.wait_for("document.getElementById('alert').textContent.length > 0");
    assert_eq!(
        page.text("alert"),
        "This API key is not valid or was revoked."
    );
    assert!(!page.visible("app"));

    page.eval(&format!("document.getElementById('key').value = {key:?}"));
    page.click("#signin-form button[type=submit]");
    page.wait_for("!document.getElementById('app').classList.contains('hidden')");
    assert_eq!(page.text("shop"), "Lucky Noodle Bar · Till 1");
    page.click("[data-tab=shift]");
    page.click("#shift-open");
    page.click("[data-tab=charge]");

    // The keypad, by keyboard and by touch.
    page.eval("document.getElementById('amount').focus()");
    page.type_keys("12");
    page.click("[data-key='.']");
    page.type_keys("5");
    assert_eq!(page.text("amount"), "12.5");
    page.screenshot("cashier-keypad");
    page.click("#charge");
    page.wait_for("!document.getElementById('qr-view').classList.contains('hidden') && document.getElementById('qr-img').naturalWidth > 0");
    let order_id = page.eval("sessionStorage.getItem('qrgate.openOrder')");
    let order = app.order(&key, order_id.as_str().unwrap()).await;
    assert_eq!(order["amount"], "12.50");
    assert_eq!(order["created_by_key_id"], till["id"]);

    // The QR on the screen is exactly the order's payload; the expiry counts down.
    let shot = page.screenshot("cashier-qr");
    assert_eq!(qr_codes_in(&shot), [order["qr_payload"].as_str().unwrap()]);
    let countdown = page.text("countdown");
    let (minutes, seconds) = countdown.split_once(':').unwrap();
    assert!(
        minutes.parse::<u32>().unwrap() <= 5 && seconds.len() == 2,
        "{countdown}"
    );

    // Paid by a wallet: the page shows it without a reload.
    page.eval("window.notReloaded = true");
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    page.wait_for("document.getElementById('result-status').textContent === 'Paid'");
    assert_eq!(page.eval("window.notReloaded"), true);
    let paid = app.order(&key, order_id.as_str().unwrap()).await;
    assert!(page
        .text("receipt")
        .contains(paid["payment_id"].as_str().unwrap()));
    page.screenshot("cashier-paid");

    // A reload resumes the order on the screen.
    page.goto(&app.url("/cashier"));
    page.wait_for("document.getElementById('result-status').textContent === 'Paid'");

    // A partial refund from today's list, confirmed.
    page.click("#next");
    page.click("[data-tab=today]");
    page.wait_for("document.querySelectorAll('#today-rows tr').length === 1");
    page.click("#today-rows button");
    page.wait_for("document.getElementById('refund-dialog').open");
    page.eval("document.getElementById('refund-amount').value = '2.50'");
    page.screenshot("cashier-refund-confirm");
    page.click("#refund-confirm");
    page.wait_for("document.getElementById('today-rows').textContent.includes('Partly refunded')");
    page.screenshot("cashier-refund");
    assert_eq!(
        app.order(&key, order_id.as_str().unwrap()).await["status"],
        "partially_refunded"
    );

    // The shift close: this till's totals.
    page.click("[data-tab=shift]");
    page.click("#shift-close");
    page.wait_for("!document.getElementById('shift-table').classList.contains('hidden')");
    let shift = page.text("shift-rows");
    assert!(
        shift.contains("Till 1") && shift.contains("12.50") && shift.contains("2.50"),
        "{shift}"
    );
    assert_eq!(page.text("shift-state"), "Net: CN¥10.00");
    page.screenshot("cashier-shift");

    // The day's report.
    page.click("[data-tab=report]");
    page.click("#report-show");
    page.wait_for("document.getElementById('report').children.length > 0");
    assert!(page.text("report").contains("12.50"));
    page.screenshot("cashier-report");

    // Chinese, switched on the page.
    page.click("#lang");
    assert_eq!(
        page.eval("document.querySelector('[data-tab=charge]').textContent"),
        "收款"
    );
    assert_eq!(page.eval("document.documentElement.lang"), "zh-CN");
    page.wait_for("document.getElementById('report').textContent.includes('期末余额')");
    page.screenshot("cashier-report-zh");

    // The key travelled in headers only: in no URL, cookie or local storage.
    let urls = browser.requested_urls();
    assert!(urls.iter().any(|u| u.contains("/v1/orders/")), "{urls:?}");
    for url in &urls {
        assert!(!url.contains(&secret), "the key in a URL: {url}");
    }
    assert_eq!(page.eval("document.cookie"), "");
    // Nor in any line of the gateway's log, which did log the page's requests.
    let log = log.text();
    assert!(
        log.contains("route=/v1/orders/{id}/stream"),
        "the log was captured"
    );
    assert!(!log.contains(&secret), "the key in the log");
    assert_eq!(
        page.eval(&format!(
            "JSON.stringify(localStorage).includes({secret:?})"
        )),
        false
    );
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_session_is_paid_on_its_page_and_the_customer_returns_to_the_shop() {
    let app = spawn_app_with(&[("QRGATE_CHECKOUT_HTTP_LOOPBACK_ALLOWED", "true")]).await;
    let shop = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let return_url = app.url("/healthz?from=shop");
    let session = json_ok(
        app.merchant_post(&shop.cashier_key, "/v1/checkout-sessions", &json!({
            "amount": "25.50", "currency": "CNY", "merchant_reference": "WEB-1001",
            "description": "Order 1001 from the web shop",
            "line_items": [{"name": "Beef noodles", "quantity": 2, "amount": "10.00"}, {"name": "Jasmine tea", "quantity": 1, "amount": "5.50"}],
            "return_url": return_url, "cancel_url": app.url("/healthz?from=cancel"),
        }))
        .await,
        StatusCode::CREATED,
    )
    .await;
    let url = session["url"].as_str().unwrap();
    let payload = session["order"]["qr_payload"].as_str().unwrap();

    let browser = Browser::launch();
    let phone = browser.page(390, 844, true);
    phone.goto(url);
    phone.eval("localStorage.setItem('qrgate.lang', 'en')");
    phone.goto(url);
    phone.wait_for("document.getElementById('qr').naturalWidth > 0");
    assert_eq!(phone.text("shop"), "Lucky Noodle Bar");
    assert!(phone.text("item-rows").contains("Beef noodles"));
    // On a phone: the wallet app opens with the same payload.
    let link = phone.eval("document.getElementById('wallet-link').href");
    let link = link.as_str().unwrap();
    assert_eq!(
        link.strip_prefix("qrgate://pay?payload=")
            .map(percent_decode)
            .as_deref(),
        Some(payload)
    );
    phone.screenshot("pay-phone");

    let desktop = browser.page(1280, 800, false);
    desktop.goto(url);
    desktop.wait_for("document.getElementById('qr').naturalWidth > 0");
    let shot = desktop.screenshot("pay-desktop");
    assert_eq!(qr_codes_in(&shot), [payload]);

    // Another session, cancelled on its page: the customer goes to cancel_url, the order
    // is closed, and the page says so if opened again.
    let other = json_ok(
        app.merchant_post(
            &shop.cashier_key,
            "/v1/checkout-sessions",
            &json!({
                "amount": "3.00", "currency": "CNY", "merchant_reference": "WEB-1002",
                "return_url": return_url, "cancel_url": app.url("/healthz?from=cancel"),
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let cancelling = browser.page(390, 844, true);
    cancelling.goto(other["url"].as_str().unwrap());
    cancelling.click("#cancel");
    cancelling.wait_for("location.href.endsWith('/healthz?from=cancel')");
    assert_eq!(
        app.order(&shop.cashier_key, other["order"]["id"].as_str().unwrap())
            .await["status"],
        "closed"
    );
    cancelling.goto(other["url"].as_str().unwrap());
    cancelling.wait_for(
        "document.getElementById('status').textContent === 'This payment was cancelled.'",
    );
    assert!(cancelling.visible("back-p") && !cancelling.visible("open-view"));

    json_ok(
        app.pay(&wallet, &session["order"], &customer).await,
        StatusCode::OK,
    )
    .await;
    let expected = format!(
        "{return_url}&session_id={}",
        session["id"].as_str().unwrap()
    );
    desktop.wait_for(&format!("location.href === {expected:?}"));
    phone.wait_for(&format!("location.href === {expected:?}"));
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_refund_on_the_till_asks_for_the_keys_code_and_refunds_once() {
    use crate::second_factor::{call, enrolled};
    use reqwest::Method;
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    json_ok(
        call(
            &app,
            &shop.manager_key,
            Method::PUT,
            "/v1/me/refund-second-factor",
            &json!({"above": "5.00"}),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let till = json_ok(
        app.merchant_post(
            &shop.manager_key,
            "/v1/keys",
            &json!({"name": "Till 2", "scopes": ["orders", "refunds"]}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let key = till["key"].as_str().unwrap().to_owned();
    let authenticator = enrolled(&app, &key, "/v1/me/second-factor").await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&key, "20.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let other = app.create_order(&key, "3.00").await;

    let browser = Browser::launch();
    let page = browser.page(800, 1000, false);
    page.goto(&app.url("/cashier"));
    page.eval("localStorage.setItem('qrgate.lang', 'en')");
    page.eval(&format!("document.getElementById('key').value = {key:?}"));
    page.click("#signin-form button[type=submit]");
    page.wait_for("!document.getElementById('app').classList.contains('hidden')");
    page.click("[data-tab=today]");
    page.wait_for("document.querySelectorAll('#today-rows tr').length === 2");
    // The desk's search, the shop's own: the payment's id finds its order alone.
    let payment_id = app.order(&key, order["id"].as_str().unwrap()).await["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    page.eval(&format!(
        "document.getElementById('order-search').value = {payment_id:?}; document.getElementById('search-form').requestSubmit()"
    ));
    page.wait_for("document.querySelectorAll('#today-rows tr').length === 1");
    assert!(page
        .text("today-rows")
        .contains(order["merchant_reference"].as_str().unwrap()));
    assert!(!page
        .text("today-rows")
        .contains(other["merchant_reference"].as_str().unwrap()));
    page.eval("document.getElementById('order-search').value = 'NO-SUCH-ORDER'; document.getElementById('search-form').requestSubmit()");
    page.wait_for("!document.getElementById('search-empty').classList.contains('hidden')");
    page.eval(&format!(
        "document.getElementById('order-search').value = {payment_id:?}; document.getElementById('search-form').requestSubmit()"
    ));
    page.wait_for("document.querySelectorAll('#today-rows button').length === 1");
    page.click("#today-rows button");
    page.wait_for("document.getElementById('refund-dialog').open");
    page.eval("document.getElementById('refund-amount').value = '8.00'");
    page.click("#refund-confirm");
    // Above the shop's threshold: the dialog stays and asks for the code, in words.
    page.wait_for("!document.getElementById('refund-code-box').classList.contains('hidden')");
    assert_eq!(
        page.text("refund-code-why"),
        "A refund this large needs the 6-digit code from this key's authenticator app."
    );
    assert_eq!(page.eval("document.activeElement.id"), "refund-code");
    page.eval("document.getElementById('refund-code').value = '000000'");
    page.click("#refund-confirm");
    page.wait_for("document.getElementById('refund-code-why').textContent.includes('wrong')");
    page.screenshot("cashier-refund-code");
    let code = authenticator.code(1);
    page.eval(&format!(
        "document.getElementById('refund-code').value = {code:?}"
    ));
    page.click("#refund-confirm");
    page.wait_for("document.getElementById('today-rows').textContent.includes('Partly refunded')");
    assert_eq!(
        page.eval("document.getElementById('refund-dialog').open"),
        false
    );
    // Refunded once, 8.00, however many times the dialog was sent.
    let refunds = app
        .db()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE outcome = 'succeeded'), coalesce(sum(amount_minor) FILTER (WHERE outcome = 'succeeded'), 0)::bigint FROM refunds WHERE order_id = $1",
            &[&order["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(
        (refunds.get::<_, i64>(0), refunds.get::<_, i64>(1)),
        (1, 800)
    );
    // Asked again, the dialog says what was refunded and offers what is left.
    page.click("#today-rows button");
    page.wait_for("document.getElementById('refund-dialog').open");
    assert_eq!(
        page.eval("document.getElementById('refund-amount').value"),
        "12.00"
    );
    assert!(page.text("refund-order").contains("refunded so far"));
    assert!(page.text("refund-order").contains("8.00"));
    page.click("#refund-cancel");
    // The code travelled in a header only.
    for url in browser.requested_urls() {
        assert!(!url.contains(&code), "the code in a URL: {url}");
    }
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_through_the_shops_printed_code_shows_on_the_till_without_a_reload() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let code = json_ok(
        app.merchant_post(
            &shop.cashier_key,
            "/v1/static-codes",
            &json!({"name": "Counter"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;

    let browser = Browser::launch();
    let page = browser.page(800, 1000, false);
    page.goto(&app.url("/cashier"));
    page.eval("localStorage.setItem('qrgate.lang', 'en')");
    page.eval(&format!(
        "document.getElementById('key').value = {:?}",
        shop.cashier_key
    ));
    page.click("#signin-form button[type=submit]");
    page.wait_for("!document.getElementById('app').classList.contains('hidden')");
    page.click("[data-tab=today]");
    page.wait_for("!document.getElementById('today-empty').classList.contains('hidden')");

    // The customer scans the printed code and enters 7.00 in the wallet.
    let paid = json_ok(
        wallet
            .post(
                "payments",
                &json!({
                    "wallet_txn_id": qrgate_domain::ids::mint("txn"),
                    "qr_payload": code["qr_payload"],
                    "customer_account_id": customer,
                    "amount": "7.00",
                    "currency": "CNY",
                }),
            )
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    page.wait_for("!document.getElementById('static-paid').classList.contains('hidden')");
    let notice = page.text("static-paid");
    assert!(
        notice.contains("7.00") && notice.contains("Counter"),
        "{notice}"
    );
    page.wait_for("document.querySelectorAll('#today-rows tr').length === 1");
    let row = page.text("today-rows");
    assert!(row.contains("Printed code · Counter"), "{row}");
    assert!(row.contains(paid["order_id"].as_str().unwrap()), "{row}");
    page.screenshot("cashier-static-paid");
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_till_shows_the_tip_a_customer_added() {
    let app = spawn_app().await;
    let shop = app.create_merchant().await;
    let manager = merchant_sdk::Client::builder(&app.address, &shop.manager_key)
        .build()
        .unwrap();
    manager
        .set_tip_policy(merchant_sdk::TipPolicy::Prompt, None)
        .await
        .unwrap();
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;

    let browser = Browser::launch();
    let page = browser.page(800, 1000, false);
    page.goto(&app.url("/cashier"));
    page.eval("localStorage.setItem('qrgate.lang', 'en')");
    page.eval(&format!(
        "document.getElementById('key').value = {:?}",
        shop.cashier_key
    ));
    page.click("#signin-form button[type=submit]");
    page.wait_for("!document.getElementById('app').classList.contains('hidden')");
    page.eval("document.getElementById('amount').focus()");
    page.type_keys("20");
    page.click("#charge");
    page.wait_for("!document.getElementById('qr-view').classList.contains('hidden') && document.getElementById('qr-img').naturalWidth > 0");
    let order_id = page.eval("sessionStorage.getItem('qrgate.openOrder')");
    let order = app
        .order(&shop.cashier_key, order_id.as_str().unwrap())
        .await;
    assert_eq!(order["tip_policy"], "prompt", "the shop's default");

    // The wallet sees 55=01 in the code and the customer adds 3.00.
    let mut body = TestApp::pay_body(&order, &customer);
    body["tip"] = json!("3.00");
    json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    page.wait_for("document.getElementById('result-status').textContent === 'Paid'");
    page.wait_for("document.getElementById('receipt').textContent.includes('Tip')");
    let receipt = page.text("receipt");
    assert!(
        receipt.contains("Tip") && receipt.contains("3.00"),
        "{receipt}"
    );
    assert!(
        receipt.contains("23.00"),
        "the charge, amount and tip: {receipt}"
    );
    page.screenshot("cashier-tip");

    // The manager's day report on the till shows the tips, as the API's report does.
    let manager_page = browser.page(800, 1000, false);
    manager_page.goto(&app.url("/cashier"));
    manager_page.eval("localStorage.setItem('qrgate.lang', 'en')");
    manager_page.eval(&format!(
        "document.getElementById('key').value = {:?}",
        shop.manager_key
    ));
    manager_page.click("#signin-form button[type=submit]");
    manager_page.wait_for("!document.getElementById('app').classList.contains('hidden')");
    manager_page.click("[data-tab=report]");
    manager_page.click("#report-show");
    manager_page.wait_for("document.getElementById('report').textContent.includes('Tips')");
    let report = manager_page.text("report");
    let api_report = app
        .settlement_report_today(&shop.manager_key, "Asia/Shanghai")
        .await;
    assert_eq!(api_report["tips_amount"], "3.00");
    assert!(
        report.contains("Tips") && report.contains("3.00"),
        "{report}"
    );
    manager_page.screenshot("cashier-report-tips");
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_interactive_api_page_renders_every_operation_without_a_schema_error() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.openapi_document().await;
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let browser = Browser::launch();
    let page = browser.page(1200, 1000, false);
    page.goto(&app.url("/docs/"));
    page.wait_for(&format!(
        "document.querySelectorAll('.opblock').length === {operations}"
    ));
    // swagger-ui lists what it could not resolve or parse in an errors box.
    let errors = page.eval("Array.from(document.querySelectorAll('.errors-wrapper')).map(e => e.textContent).join(' | ')");
    assert_eq!(errors, "", "the document renders without errors");
    let summaries = page.eval("Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.textContent).join(' ')");
    for path in [
        "/v1/rewards",
        "/v1/me/tip-policy",
        "/v1/wallets/{wallet_id}/webhooks/deliveries",
    ] {
        assert!(
            summaries.as_str().unwrap().contains(path),
            "{path} is on the page"
        );
    }
    page.screenshot("api-docs");
    assert!(
        browser.page_errors().is_empty(),
        "{:?}",
        browser.page_errors()
    );
}

/// The browser harness itself: a page that navigates while a test waits on it is "not yet",
/// never a failure (CI once failed when a click's redirect landed between two polls). The
/// page hops between two sites, so each hop moves it to another renderer, while the test
/// asks it questions back to back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiting_on_a_page_rides_through_its_navigations() {
    let app = spawn_app().await;
    let browser = Browser::launch();
    let page = browser.page(390, 844, true);
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "{ const n = Number(new URLSearchParams(location.search).get('n')); \
            const other = location.hostname === 'localhost' ? '127.0.0.1' : 'localhost'; \
            if (n < 1000) setTimeout(() => { location.href = `http://${other}:${location.port}/healthz?n=${n + 1}`; }, n % 3); }"}),
    );
    page.goto(&app.url("/healthz?n=0"));
    for _ in 0..150 {
        page.wait_for("true");
    }
    page.wait_for("Number(new URLSearchParams(location.search).get('n')) > 20");
}
