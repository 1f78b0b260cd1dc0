//! The merchant SDK against the real gateway.

use crate::helpers::{json_ok, spawn_app, TestApp};
use merchant_sdk::{
    CheckoutStatus, Client, Error, ErrorKind, LineItem, ListOrders, NewCheckoutSession, NewOrder,
    OrderStatus,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use std::time::Duration;

fn sdk(app: &TestApp, key: &str) -> Client {
    Client::builder(&app.address, key).build().unwrap()
}

fn cny(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

#[tokio::test]
async fn a_cashier_charges_and_sees_the_payment_through_the_sdk() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let cashier = sdk(&app, &merchant.cashier_key);

    let order = cashier
        .create_order(&NewOrder::new(cny(1234), "CNY".parse().unwrap(), "SDK-1"))
        .await
        .unwrap();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.amount, cny(1234));
    assert_eq!(cashier.get_order(&order.id).await.unwrap(), order);

    let wire_order =
        serde_json::json!({"qr_payload": order.qr_payload, "amount": "12.34", "currency": "CNY"});
    let (waited, paid) = tokio::join!(
        cashier.wait_for_payment(&order.id, Duration::from_secs(20)),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.pay(&wallet, &wire_order, &customer).await
        }
    );
    json_ok(paid, StatusCode::OK).await;
    let waited = waited.unwrap();
    assert_eq!(waited.status, OrderStatus::Paid);
    assert!(waited.payment_id.is_some());
    assert_eq!(waited.discount, Some(Decimal::ZERO));
    assert_eq!(waited.charged, Some((cny(1234), "CNY".parse().unwrap())));

    let close = cashier.close_order(&order.id).await.unwrap_err();
    assert_eq!(close.kind(), Some(&ErrorKind::AlreadyPaid));
    let events = cashier.order_events(&order.id).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["created", "paid"]
    );
}

#[tokio::test]
async fn the_sdk_closes_lists_and_renders_orders() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let cashier = sdk(&app, &merchant.cashier_key);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            cashier
                .create_order(&NewOrder::new(
                    cny(100 + i),
                    "CNY".parse().unwrap(),
                    format!("L-{i}"),
                ))
                .await
                .unwrap()
                .id,
        );
    }
    let closed = cashier.close_order(&ids[0]).await.unwrap();
    assert_eq!(closed.status, OrderStatus::Closed);

    let first = cashier
        .list_orders(&ListOrders {
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = cashier
        .list_orders(&ListOrders {
            limit: Some(2),
            cursor: first.next_cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next_cursor.is_none());
    let only_closed = cashier
        .list_orders(&ListOrders {
            status: Some(OrderStatus::Closed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        only_closed
            .items
            .iter()
            .map(|o| o.id.clone())
            .collect::<Vec<_>>(),
        [ids[0].clone()]
    );

    assert!(cashier
        .order_qr_svg(&ids[1])
        .await
        .unwrap()
        .contains("<svg"));
    assert_eq!(
        &cashier.order_qr_png(&ids[1]).await.unwrap()[..4],
        b"\x89PNG"
    );
}

#[tokio::test]
async fn the_sdk_reports_balances_with_the_reports_scope_only() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let accounts = sdk(&app, &merchant.manager_key).accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, merchant.account_id);
    assert_eq!(accounts[0].balance, Decimal::ZERO);
    assert_eq!(
        sdk(&app, &merchant.manager_key)
            .account(&merchant.account_id)
            .await
            .unwrap(),
        accounts[0]
    );

    let err = sdk(&app, &merchant.cashier_key)
        .accounts()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::Forbidden));
    assert!(err.to_string().contains("reports"), "{err}");
}

#[tokio::test]
async fn the_sdk_maps_the_gateways_errors() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let cashier = sdk(&app, &merchant.cashier_key);
    let order = NewOrder::new(cny(100), "CNY".parse().unwrap(), "DUP");
    cashier.create_order(&order).await.unwrap();

    let dup = cashier.create_order(&order).await.unwrap_err();
    assert_eq!(dup.kind(), Some(&ErrorKind::DuplicateReference));
    let wrong_currency = cashier
        .create_order(&NewOrder::new(cny(100), "HKD".parse().unwrap(), "HK"))
        .await
        .unwrap_err();
    assert_eq!(wrong_currency.kind(), Some(&ErrorKind::CurrencyMismatch));
    let missing = cashier.get_order("ord_doesnotexist").await.unwrap_err();
    assert_eq!(missing.kind(), Some(&ErrorKind::NotFound));
    let stranger = sdk(&app, "key_nope.nope")
        .get_order("ord_x")
        .await
        .unwrap_err();
    assert_eq!(stranger.kind(), Some(&ErrorKind::Unauthenticated));
    let unreachable = Client::builder("http://127.0.0.1:9", "k.k")
        .retry_policy(merchant_sdk::RetryPolicy::none())
        .build()
        .unwrap()
        .get_order("ord_x")
        .await
        .unwrap_err();
    assert!(matches!(unreachable, Error::Transport(_)));
}

#[tokio::test]
async fn the_sdk_pays_out_and_reads_statements_reports_and_deliveries() {
    let app = spawn_app().await;
    let merchant = app
        .create_merchant_with(serde_json::json!({"fee_rate_bps": 0}))
        .await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let owner = app.funded_customer(&wallet, "0").await;
    let order = app.create_order(&merchant.cashier_key, "40.00").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    app.allow_payout_account(&merchant.id, &owner).await;
    let manager = sdk(&app, &merchant.manager_key);

    let payout = manager
        .payout(&owner, cny(1500), "CNY".parse().unwrap(), "po-1")
        .await
        .unwrap();
    assert_eq!(payout.amount, cny(1500));
    let again = manager
        .payout(&owner, cny(1500), "CNY".parse().unwrap(), "po-1")
        .await
        .unwrap();
    assert_eq!(again.id, payout.id);

    let first = manager
        .statement(&merchant.account_id, None, Some(1))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].kind, "payment");
    assert_eq!(first.items[0].balance_after, cny(4000));
    // A line shows once every older writer has finished (stable pages): other tests'
    // transactions may hold the payout back for a moment.
    let mut rest = manager
        .statement(&merchant.account_id, first.next_cursor.as_deref(), Some(10))
        .await
        .unwrap();
    for _ in 0..100 {
        if !rest.items.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        rest = manager
            .statement(&merchant.account_id, first.next_cursor.as_deref(), Some(10))
            .await
            .unwrap();
    }
    assert_eq!(rest.items[0].kind, "payout");
    assert_eq!(rest.items[0].amount, cny(-1500));
    assert_eq!(rest.items[0].balance_after, cny(2500));

    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .date_naive();
    let report = manager.settlement_report(today).await.unwrap();
    assert_eq!(report.payments_count, 1);
    assert_eq!(report.payouts_amount, cny(1500));
    assert_eq!(report.opening_balance + report.net, report.closing_balance);
    assert_eq!(report.closing_balance, cny(2500));

    assert!(
        manager.webhook_deliveries().await.unwrap().is_empty(),
        "no webhook URL, no events"
    );
    let secret = manager.rotate_webhook_secret().await.unwrap();
    assert!(secret.starts_with("whsec_"));
}

#[tokio::test]
async fn the_sdk_opens_a_checkout_session_and_follows_it_to_complete() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let client = sdk(&app, &merchant.cashier_key);
    let currency = "CNY".parse().unwrap();
    let session = NewCheckoutSession {
        order: NewOrder::new(cny(1550), currency, "WEB-9"),
        return_url: "https://shop.example/thanks".into(),
        cancel_url: "https://shop.example/cart".into(),
        line_items: vec![LineItem {
            name: "Tea".into(),
            quantity: 2,
            amount: cny(775),
        }],
    };
    let created = client.create_checkout_session(&session).await.unwrap();
    assert_eq!(created.status, CheckoutStatus::Open);
    assert!(created.url.as_deref().unwrap().contains("/pay/"));
    let order = app.order(&merchant.cashier_key, &created.order.id).await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    let read = client.checkout_session(&created.id).await.unwrap();
    assert_eq!(read.status, CheckoutStatus::Complete);
    assert_eq!(read.url, None);
    assert_eq!(read.order.status, OrderStatus::Paid);
    // Items that cannot be written in the currency are refused before sending.
    let mut bad = session.clone();
    bad.line_items[0].amount = Decimal::new(7751, 3);
    assert!(matches!(
        client.create_checkout_session(&bad).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn the_sdk_lists_refunds_payouts_and_static_codes() {
    let app = spawn_app().await;
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "100.00").await;
    let owner = app.funded_customer(&wallet, "0").await;
    let manager = sdk(&app, &merchant.manager_key);
    let order = app.create_order(&merchant.cashier_key, "40.00").await;
    let order_id = order["id"].as_str().unwrap();
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    manager
        .refund(order_id, cny(500), "r-1", None)
        .await
        .unwrap();
    manager
        .refund(order_id, cny(250), "r-2", None)
        .await
        .unwrap();
    let refunds = manager.order_refunds(order_id).await.unwrap();
    assert_eq!(
        refunds.iter().map(|r| r.amount).collect::<Vec<_>>(),
        vec![cny(500), cny(250)]
    );
    assert_eq!(
        manager.get_order(order_id).await.unwrap().refunded,
        cny(750)
    );

    app.allow_payout_account(&merchant.id, &owner).await;
    for reference in ["po-1", "po-2"] {
        manager
            .payout(&owner, cny(100), "CNY".parse().unwrap(), reference)
            .await
            .unwrap();
    }
    let payouts = manager.payouts(None).await.unwrap();
    assert_eq!(payouts.items.len(), 2);
    assert_eq!(payouts.items[0].payout_reference, "po-2");

    let code = manager.create_static_code("Counter", None).await.unwrap();
    assert!(matches!(
        merchant_sdk::MerchantQr::parse(&code.qr_payload),
        Ok(merchant_sdk::MerchantQr::Static(_))
    ));
    assert!(merchant_sdk::lint(&code.qr_payload).is_empty());
    assert_eq!(
        manager.static_codes(false).await.unwrap(),
        vec![code.clone()]
    );
    let revoked = manager.revoke_static_code(&code.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(manager.static_codes(false).await.unwrap().is_empty());
    assert_eq!(manager.static_codes(true).await.unwrap(), vec![revoked]);
}
