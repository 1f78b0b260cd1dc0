//! Merchant webhooks: outbox, signed at-least-once delivery, retries, 410, replicas,
//! secret rotation, and destinations that must not be private.

use crate::helpers::{assert_error, json_ok, spawn_app, spawn_app_with, TestApp, TestMerchant};
use merchant_sdk::webhooks::verify;
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

/// Fast retries and polling, so a test waits milliseconds, not seconds.
const FAST: &[(&str, &str)] = &[
    ("QRGATE_WEBHOOK_RETRY_INITIAL_MS", "100"),
    ("QRGATE_WEBHOOK_POLL_INTERVAL_MS", "50"),
];

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A merchant's webhook endpoint on 127.0.0.1: answers with the scripted statuses, then 200.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Delivery>>>,
    in_flight: Arc<Mutex<Vec<String>>>,
    overlaps: Arc<Mutex<u32>>,
}

async fn receiver(script: Vec<u16>, hold: Duration) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(Mutex::new(Vec::new()));
    let overlaps = Arc::new(Mutex::new(0));
    let (s, l, f, o) = (
        script.clone(),
        seen.clone(),
        in_flight.clone(),
        overlaps.clone(),
    );
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (script, log, in_flight, overlaps) = (s.clone(), l.clone(), f.clone(), o.clone());
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap())
                            })
                            .unwrap_or(0);
                        if buffer.len() >= end + 4 + length {
                            break (end, length);
                        }
                    }
                };
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
                let mut headers = HeaderMap::new();
                for line in head.lines().skip(1) {
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(
                            reqwest::header::HeaderName::from_bytes(
                                k.trim().to_ascii_lowercase().as_bytes(),
                            )
                            .unwrap(),
                            v.trim().parse().unwrap(),
                        );
                    }
                }
                let delivery = Delivery {
                    headers,
                    body: buffer[head_end + 4..head_end + 4 + length].to_vec(),
                };
                let id = delivery.id();
                {
                    let mut flying = in_flight.lock().unwrap();
                    if flying.contains(&id) {
                        *overlaps.lock().unwrap() += 1;
                    }
                    flying.push(id.clone());
                }
                tokio::time::sleep(hold).await;
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                log.lock().unwrap().push(delivery);
                in_flight.lock().unwrap().retain(|x| x != &id);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Receiver {
        url,
        seen,
        in_flight,
        overlaps,
    }
}

impl Receiver {
    /// Waits (bounded) until `n` deliveries arrived.
    async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        for _ in 0..200 {
            if self.seen.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.seen.lock().unwrap().clone()
    }
}

async fn merchant_with_hook(app: &TestApp, url: &str) -> (TestMerchant, String) {
    let merchant = app.create_merchant_with(json!({"webhook_url": url})).await;
    let secret = app.webhook_secret(&merchant.id).await;
    (merchant, secret)
}

async fn paid_order(app: &TestApp, merchant: &TestMerchant) -> Value {
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    order
}

async fn deliveries(app: &TestApp, merchant: &TestMerchant) -> Vec<Value> {
    json_ok(
        app.merchant_get(&merchant.manager_key, "/v1/webhooks/deliveries")
            .await,
        StatusCode::OK,
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_event_again_with_the_same_id_until_it_answers() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![500, 503], Duration::ZERO).await;
    let (merchant, secret) = merchant_with_hook(&app, &hook.url).await;
    let order = paid_order(&app, &merchant).await;

    let seen = hook.wait_for(3).await;

    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|d| d.id() == seen[0].id()),
        "the webhook-id is kept across retries"
    );
    for d in &seen {
        verify(&secret, &d.headers, &d.body, chrono::Utc::now().timestamp())
            .expect("a valid signature");
    }
    let event = seen[2].json();
    assert_eq!(event["type"], "order.paid");
    assert_eq!(event["id"], seen[0].id());
    assert_eq!(event["data"]["id"], order["id"]);
    assert_eq!(event["data"]["status"], "paid");
    assert!(event["data"]["updated_at"].is_string());
    let listed = deliveries(&app, &merchant).await;
    assert_eq!(listed[0]["status"], "delivered");
    assert_eq!(listed[0]["attempts"], 3);
}

#[tokio::test]
async fn an_endpoint_answering_410_is_not_called_again() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![410], Duration::ZERO).await;
    let (merchant, _) = merchant_with_hook(&app, &hook.url).await;
    paid_order(&app, &merchant).await;
    hook.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(hook.seen.lock().unwrap().len(), 1);
    assert_eq!(deliveries(&app, &merchant).await[0]["status"], "gone");
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once_and_never_at_the_same_time() {
    let app = spawn_app_with(FAST).await;
    app.spawn_replica(FAST).await;
    let hook = receiver(vec![], Duration::from_millis(30)).await;
    let (merchant, _) = merchant_with_hook(&app, &hook.url).await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    for _ in 0..20 {
        let order = app.create_order(&merchant.cashier_key, "1.00").await;
        json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    }
    let seen = hook.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids: Vec<String> = hook.seen.lock().unwrap().iter().map(Delivery::id).collect();
    assert_eq!(ids.len(), 20, "{seen:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "an event was delivered twice");
    assert_eq!(*hook.overlaps.lock().unwrap(), 0);
    assert!(hook.in_flight.lock().unwrap().is_empty());
}

#[tokio::test]
async fn refunds_closings_and_expiries_are_events_too() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![], Duration::ZERO).await;
    let (merchant, _) = merchant_with_hook(&app, &hook.url).await;
    let paid = paid_order(&app, &merchant).await;
    let path = format!("/v1/orders/{}/refunds", paid["id"].as_str().unwrap());
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &path,
            &json!({"amount": "4.00", "refund_reference": "r"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let closed = app.create_order(&merchant.cashier_key, "2.00").await;
    app.merchant_post(
        &merchant.cashier_key,
        &format!("/v1/orders/{}/close", closed["id"].as_str().unwrap()),
        &json!({}),
    )
    .await;
    let expiring = app.create_order(&merchant.cashier_key, "3.00").await;
    app.db()
        .await
        .execute(
            "UPDATE orders SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 second' WHERE id = $1",
            &[&expiring["id"].as_str().unwrap()],
        )
        .await
        .unwrap();

    let seen = hook.wait_for(4).await;
    let mut types: Vec<String> = seen
        .iter()
        .map(|d| d.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "order.closed",
            "order.expired",
            "order.paid",
            "refund.succeeded"
        ]
    );
    let refund = seen
        .iter()
        .map(Delivery::json)
        .find(|e| e["type"] == "refund.succeeded")
        .unwrap();
    assert_eq!(refund["data"]["amount"], "4.00");
    assert_eq!(refund["data"]["order_id"], paid["id"]);
}

#[tokio::test]
async fn during_a_rotation_deliveries_carry_both_signatures() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![], Duration::ZERO).await;
    let (merchant, old_secret) = merchant_with_hook(&app, &hook.url).await;
    let rotated = json_ok(
        app.merchant_post(&merchant.manager_key, "/v1/webhooks/secret", &json!({}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let new_secret = rotated["webhook_secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    paid_order(&app, &merchant).await;
    let seen = hook.wait_for(1).await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        seen[0].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify(&old_secret, &seen[0].headers, &seen[0].body, now)
        .expect("the old secret still verifies");
    verify(new_secret, &seen[0].headers, &seen[0].body, now).expect("the new secret verifies");
    let cashier = app
        .merchant_post(&merchant.cashier_key, "/v1/webhooks/secret", &json!({}))
        .await;
    assert_error(cashier, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_delivery_can_be_retried_on_request() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![], Duration::ZERO).await;
    let (merchant, _) = merchant_with_hook(&app, &hook.url).await;
    paid_order(&app, &merchant).await;
    let first = hook.wait_for(1).await;
    let id = first[0].id();
    json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/webhooks/deliveries/{id}/retry"),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let again = hook.wait_for(2).await;
    assert_eq!(again[1].id(), id);
    let other = app.create_merchant().await;
    let foreign = app
        .merchant_post(
            &other.manager_key,
            &format!("/v1/webhooks/deliveries/{id}/retry"),
            &json!({}),
        )
        .await;
    assert_error(foreign, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn private_destinations_are_refused_unless_allowed() {
    let app = spawn_app_with(&[("QRGATE_ALLOW_PRIVATE_WEBHOOKS", "0"), FAST[0], FAST[1]]).await;
    let base = json!({"name": "Shop", "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY"});
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "http://example.com/hook",
    ] {
        let mut body = base.clone();
        body["webhook_url"] = json!(url);
        assert_error(
            app.admin_post("/v1/admin/merchants", &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    // A name is checked where it resolves, at delivery: localhost is refused then.
    let hook = receiver(vec![], Duration::ZERO).await;
    let port = hook
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (merchant, _) = merchant_with_hook(&app, &format!("https://localhost:{port}/hook")).await;
    paid_order(&app, &merchant).await;
    let mut last_error = Value::Null;
    for _ in 0..100 {
        last_error = deliveries(&app, &merchant).await[0]["last_error"].clone();
        if !last_error.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_error.as_str().unwrap_or("").contains("private"),
        "{last_error}"
    );
    assert!(
        hook.seen.lock().unwrap().is_empty(),
        "nothing reached the private address"
    );
}

#[tokio::test]
async fn an_operator_rotates_a_merchants_webhook_secret() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let path = format!("/v1/admin/merchants/{}/webhook-secret", merchant.id);
    let rotated = json_ok(app.admin_post(&path, &json!({})).await, StatusCode::CREATED).await;
    assert!(rotated["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert_eq!(
        app.webhook_secret(&merchant.id).await,
        rotated["webhook_secret"].as_str().unwrap()
    );
    assert_error(
        app.admin_post(
            "/v1/admin/merchants/mch_nosuchmerchant0000/webhook-secret",
            &json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_backlog_is_delivered_in_one_wakeup_not_a_batch_per_poll() {
    // The first replica's worker looked once at its start and not again for a minute:
    // the events of twenty payments queue up.
    let slow = [
        ("QRGATE_WEBHOOK_POLL_INTERVAL_MS", "60000"),
        ("QRGATE_WEBHOOK_BATCH_MAX", "2"),
    ];
    let app = spawn_app_with(&slow).await;
    let hook = receiver(vec![], Duration::ZERO).await;
    let (merchant, _) = merchant_with_hook(&app, &hook.url).await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "1000.00").await;
    for _ in 0..20 {
        let order = app.create_order(&merchant.cashier_key, "1.00").await;
        json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    }
    assert!(hook.seen.lock().unwrap().is_empty());
    // A replica starts with the same settings: its worker's first look (at its start)
    // finds the backlog and keeps going while batches come back full — all twenty now,
    // not two now and two a minute later.
    app.spawn_replica(&slow).await;
    let seen = hook.wait_for(20).await;
    assert_eq!(seen.len(), 20, "{seen:?}");
}

/// Points a wallet's events at `url`; returns the signing secret shown the first time.
async fn wallet_hook(app: &TestApp, wallet_id: &str, url: &str) -> Option<String> {
    let set = json_ok(
        app.admin_put(
            &format!("/v1/admin/wallets/{wallet_id}/webhook"),
            &json!({"url": url}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["webhook_url"], url);
    set["webhook_secret"].as_str().map(str::to_owned)
}

async fn open_customer(
    wallet: &simulator::wallet::WalletClient,
    reference: &str,
    code: Option<&str>,
) -> Value {
    let body = json!({"customer_reference": reference, "currency": "CNY", "referral_code": code});
    json_ok(
        wallet.post("customers", &body).await.unwrap(),
        StatusCode::CREATED,
    )
    .await
}

#[tokio::test]
async fn a_wallet_hears_of_its_customers_points_refunds_referrals_and_payouts() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![503], Duration::ZERO).await;
    let wallet = app.create_wallet().await;
    let secret = wallet_hook(&app, &wallet.wallet_id, "http://127.0.0.1:9/elsewhere")
        .await
        .expect("a new secret");
    assert_eq!(
        wallet_hook(&app, &wallet.wallet_id, &hook.url).await,
        None,
        "moving the URL keeps the secret"
    );
    let merchant = app.create_merchant().await;
    let alice = open_customer(&wallet, "alice", None).await;
    let bob = open_customer(&wallet, "bob", alice["referral_code"].as_str()).await;
    let bob_account = bob["account_id"].as_str().unwrap();
    let top_up = json!({"wallet_txn_id": qrgate_domain::ids::mint("tu"), "account_id": bob_account, "amount": "100.00", "currency": "CNY"});
    json_ok(
        wallet.post("top-ups", &top_up).await.unwrap(),
        StatusCode::OK,
    )
    .await;

    // Bob's first payment earns points and completes Alice's referral; his second
    // redeems points; the first is refunded (its points clawed back); Alice gets a payout.
    let first = app.create_order(&merchant.cashier_key, "20.00").await;
    let paid = json_ok(app.pay(&wallet, &first, bob_account).await, StatusCode::OK).await;
    let second = app.create_order(&merchant.cashier_key, "10.00").await;
    let mut body = TestApp::pay_body(&second, bob_account);
    body["use_points"] = json!(100);
    let redeemed = json_ok(
        wallet.post("payments", &body).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(redeemed["points_used"], "100");
    let refund = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            &format!("/v1/orders/{}/refunds", first["id"].as_str().unwrap()),
            &json!({"amount": "20.00", "refund_reference": "all"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let alice_account = alice["account_id"].as_str().unwrap();
    app.allow_payout_account(&merchant.id, alice_account).await;
    let payout = json_ok(
        app.merchant_post(
            &merchant.manager_key,
            "/v1/payouts",
            &json!({"to_account_id": alice_account, "amount": "5.00", "currency": "CNY", "payout_reference": "p1"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    // And Bob spends points on a reward.
    let gift = json_ok(
        app.admin_post(
            "/v1/admin/rewards",
            &json!({"kind": "gift", "name": "Mug", "points_cost": 50}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let redeemed = json_ok(
        wallet
            .post(
                "rewards/redemptions",
                &json!({"wallet_txn_id": "redeem-1", "customer_account_id": bob_account, "reward_id": gift["id"]}),
            )
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;

    // Eight events, the first refused once and delivered again; every one signed with
    // the wallet's secret.
    let seen = hook.wait_for(9).await;
    assert_eq!(seen.len(), 9);
    let now = chrono::Utc::now().timestamp();
    for d in &seen {
        verify(&secret, &d.headers, &d.body, now).expect("signed with the wallet's secret");
    }
    let mut events: Vec<Value> = seen[1..].iter().map(Delivery::json).collect();
    events.sort_by_key(|e| e["type"].as_str().unwrap().to_owned());
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["data"].clone())
            .collect::<Vec<_>>()
    };
    let earned = of("points.earned");
    assert_eq!(earned.len(), 2);
    assert!(
        earned
            .iter()
            .any(|d| d["payment_id"] == paid["payment_id"] && d["points"] == "20"),
        "{earned:?}"
    );
    assert_eq!(earned[0]["customer_account_id"], bob_account);
    assert_eq!(earned[0]["points_account_id"], bob["points_account_id"]);
    let redeemed_events = of("points.redeemed");
    assert_eq!(redeemed_events.len(), 2);
    let spent = redeemed_events
        .iter()
        .find(|d| d["payment_id"].is_string())
        .unwrap();
    assert_eq!(
        (spent["points"].as_str(), spent["value"].as_str()),
        (Some("100"), Some("1.00"))
    );
    let for_reward = redeemed_events
        .iter()
        .find(|d| d["redemption_id"].is_string())
        .unwrap();
    assert_eq!(for_reward["redemption_id"], redeemed["id"]);
    assert_eq!(
        (
            for_reward["reward_id"].as_str(),
            for_reward["points"].as_str()
        ),
        (gift["id"].as_str(), Some("50"))
    );
    assert_eq!(for_reward["points_account_id"], bob["points_account_id"]);
    let referral = &of("referral.rewarded")[0];
    assert_eq!(
        (
            referral["referee_reference"].as_str(),
            referral["referrer_reference"].as_str()
        ),
        (Some("bob"), Some("alice"))
    );
    assert_eq!(referral["points_each"], "500");
    let refunded = &of("refund.succeeded")[0];
    assert_eq!(refunded["refund_id"], refund["id"]);
    assert_eq!(
        (refunded["amount"].as_str(), refunded["currency"].as_str()),
        (Some("20.00"), Some("CNY"))
    );
    assert_eq!(refunded["customer_account_id"], bob_account);
    let clawed = &of("points.clawed_back")[0];
    assert_eq!(
        (clawed["refund_id"].as_str(), clawed["points"].as_str()),
        (refund["id"].as_str(), Some("20"))
    );
    let received = &of("payout.received")[0];
    assert_eq!(received["payout_id"], payout["id"]);
    assert_eq!(
        (received["account_id"].as_str(), received["amount"].as_str()),
        (Some(alice_account), Some("5.00"))
    );
    assert_eq!(received["merchant_id"], merchant.id);

    // The wallet's own list, signed like every wallet call; and a retry.
    let listed = json_ok(
        wallet.get("webhooks/deliveries?limit=50").await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 8);
    assert!(
        items.iter().all(|i| i["status"] == "delivered"),
        "{items:?}"
    );
    let again = items[0]["id"].as_str().unwrap();
    let retried = json_ok(
        wallet
            .post(&format!("webhooks/deliveries/{again}/retry"), &json!({}))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(retried["status"], "pending");
    let seen = hook.wait_for(10).await;
    assert_eq!(seen[9].id(), again);
    assert_error(
        wallet
            .post(
                &format!("webhooks/deliveries/{again}/retry"),
                &json!({"now": true}),
            )
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    // Another wallet sees none of them and cannot retry them; a merchant's list has none.
    let other = app.create_wallet().await;
    let theirs = json_ok(
        other.get("webhooks/deliveries").await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));
    assert_error(
        other
            .post(&format!("webhooks/deliveries/{again}/retry"), &json!({}))
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(deliveries(&app, &merchant).await, Vec::<Value>::new());

    // Removed: no more events are queued for the wallet.
    json_ok(
        app.admin_delete(&format!("/v1/admin/wallets/{}/webhook", wallet.wallet_id))
            .await,
        StatusCode::OK,
    )
    .await;
    let third = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &third, bob_account).await, StatusCode::OK).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM webhook_events WHERE wallet_id = '{}'",
            wallet.wallet_id
        ))
        .await,
        8
    );
}

#[tokio::test]
async fn a_wallet_webhook_is_an_operators_change_and_must_go_somewhere_public() {
    let app = spawn_app_with(&[("QRGATE_ALLOW_PRIVATE_WEBHOOKS", "0")]).await;
    let wallet = app.create_wallet().await;
    let path = format!("/v1/admin/wallets/{}/webhook", wallet.wallet_id);
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://user:pw@example.com/",
        "not a url",
    ] {
        assert_error(
            app.admin_put(&path, &json!({"url": url})).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    assert_error(
        app.admin_put(
            "/v1/admin/wallets/wal_nosuchwallet/webhook",
            &json!({"url": "https://example.com/h"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM wallets WHERE webhook_url IS NOT NULL")
            .await,
        0
    );
    let secret = wallet_hook(&app, &wallet.wallet_id, "https://example.com/wallet-hook").await;
    assert!(secret.unwrap().starts_with("whsec_"));
    // The secret is sealed at rest, like every other.
    let stored: String = app
        .db()
        .await
        .query_one(
            "SELECT webhook_secret FROM wallets WHERE id = $1",
            &[&wallet.wallet_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("sealed:v1:"), "{stored}");
}

#[tokio::test]
async fn a_wallets_webhook_secret_rotates_with_a_days_overlap() {
    let app = spawn_app_with(FAST).await;
    let hook = receiver(vec![], Duration::ZERO).await;
    let wallet = app.create_wallet().await;
    let path = format!("/v1/admin/wallets/{}/webhook", wallet.wallet_id);
    // No webhook, no secret to rotate.
    assert_error(
        app.admin_post(&format!("{path}/secret"), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let old = wallet_hook(&app, &wallet.wallet_id, &hook.url)
        .await
        .unwrap();
    let rotated = json_ok(
        app.admin_post(&format!("{path}/secret"), &json!({})).await,
        StatusCode::CREATED,
    )
    .await;
    let new = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let until = chrono::DateTime::parse_from_rfc3339(
        rotated["previous_secret_signs_until"].as_str().unwrap(),
    )
    .unwrap();
    let hours =
        (until.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");

    // The next event is signed with both: the wallet can switch at its own pace.
    let merchant = app.create_merchant().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let order = app.create_order(&merchant.cashier_key, "10.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let seen = hook.wait_for(1).await;
    let now = chrono::Utc::now().timestamp();
    assert_eq!(seen[0].json()["type"], "points.earned");
    assert_eq!(
        seen[0].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    verify(&new, &seen[0].headers, &seen[0].body, now).expect("the new secret verifies");
    verify(&old, &seen[0].headers, &seen[0].body, now).expect("the old one still does");
    // Both are sealed at rest.
    let stored: (String, String) = {
        let row = app
            .db()
            .await
            .query_one(
                "SELECT webhook_secret, webhook_secret_previous FROM wallets WHERE id = $1",
                &[&wallet.wallet_id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert!(stored.0.starts_with("sealed:v1:") && stored.1.starts_with("sealed:v1:"));
}

/// The sweeper bounds the outbox, the replay records and the quotes: settled events past
/// their retention (30 days) go, a pending one stays until its delivery settles it,
/// recent ones stay; a wallet's webhook-ids past theirs (an hour) go; quotes a day old
/// go, a fresh one stays.
#[tokio::test]
async fn the_sweeper_prunes_settled_events_spent_webhook_ids_and_old_quotes() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let mut quotes = Vec::new();
    for _ in 0..2 {
        let order = app.create_order(&merchant.cashier_key, "1.00").await;
        let body = json!({"qr_payload": order["qr_payload"], "customer_account_id": customer});
        let quote = json_ok(wallet.post("quotes", &body).await.unwrap(), StatusCode::OK).await;
        quotes.push(quote["quote_id"].as_str().unwrap().to_owned());
    }
    let db = app.db().await;
    db.batch_execute(&format!(
        "INSERT INTO webhook_events (id, merchant_id, type, object_id, status, next_attempt_at, created_at) VALUES
           ('evt_old_delivered', '{m}', 'order.paid', 'ord_1', 'delivered', now(), now() - interval '31 days'),
           ('evt_old_failed', '{m}', 'order.paid', 'ord_2', 'failed', now(), now() - interval '31 days'),
           ('evt_old_gone', '{m}', 'order.paid', 'ord_3', 'gone', now(), now() - interval '31 days'),
           ('evt_old_pending', '{m}', 'order.paid', 'ord_4', 'pending', now() + interval '1 day', now() - interval '31 days'),
           ('evt_recent_delivered', '{m}', 'order.paid', 'ord_5', 'delivered', now(), now() - interval '29 days');
         UPDATE wallet_messages SET created_at = now() - interval '2 hours';
         UPDATE quotes SET created_at = now() - interval '25 hours', expires_at = now() - interval '86340 seconds'
         WHERE id = '{q}';",
        m = merchant.id,
        q = quotes[0],
    ))
    .await
    .unwrap();
    let ids = |sql: &'static str| {
        let app = &app;
        async move {
            let rows = app.db().await.query(sql, &[]).await.unwrap();
            rows.iter().map(|r| r.get(0)).collect::<Vec<String>>()
        }
    };
    let left = || async {
        (
            ids("SELECT id FROM webhook_events WHERE id LIKE 'evt_%' ORDER BY id").await,
            app.count("SELECT count(*) FROM wallet_messages").await,
            ids("SELECT id FROM quotes").await,
        )
    };
    let expected = (
        vec![
            "evt_old_pending".to_owned(),
            "evt_recent_delivered".to_owned(),
        ],
        0,
        vec![quotes[1].clone()],
    );
    // The sweeper runs every second; give it ten.
    for _ in 0..100 {
        if left().await == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left().await, expected);
}
