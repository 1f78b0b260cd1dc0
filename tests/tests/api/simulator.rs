//! The simulator against the real gateway: a short load run proves the ledger whole.

use crate::helpers::spawn_app;
use simulator::{load::LoadConfig, scenario::Mix};

#[tokio::test]
async fn a_short_load_run_settles_everything_and_reconciles() {
    let app = spawn_app().await;
    let config = LoadConfig {
        gateway: app.address.clone(),
        admin_token: app.admin_token.clone(),
        merchants: 3,
        customers: 12,
        rate: 40.0,
        duration_seconds: 2.0,
        seed: 7,
        hot_merchant: false,
        // Expiry takes 30 s at the least; the CLI tests cover it with a clock shift.
        mix:
            "pay=30,insufficient=5,replay=10,tamper=5,double_pay=10,static_code=10,refund=10,tip=10,voucher=10"
                .parse::<Mix>()
                .unwrap(),
        overload: false,
        show_progress: false,
    };

    let report = simulator::load::run(config).await.unwrap();

    assert_eq!(report.unexpected_outcomes, 0, "{}", report.to_json());
    assert!(report.invariants_ok, "{}", report.to_json());
    assert!(report.passed, "{}", report.to_json());
    assert_eq!(report.arrivals, 80);
    assert!(report.settled > 40, "{}", report.to_json());
    assert_eq!(report.reconciliation.settled_once, report.settled);
    for scenario in [
        simulator::scenario::Scenario::StaticCode,
        simulator::scenario::Scenario::Refund,
        simulator::scenario::Scenario::Tip,
        simulator::scenario::Scenario::Voucher,
    ] {
        let seen = report.scenarios.get(&scenario).map_or(0, |c| c.ok);
        assert!(seen > 0, "{scenario}: {}", report.to_json());
    }
    assert_eq!(
        report.latency_ms["pay"].count,
        report.scenarios.values().map(|c| c.ok).sum::<u64>()
            - report
                .scenarios
                .get(&simulator::scenario::Scenario::DoublePay)
                .map_or(0, |c| c.ok)
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    for field in [
        "settled",
        "settled_per_second",
        "unexpected_outcomes",
        "scenarios",
        "latency_ms",
        "invariants_ok",
        "seed",
        "parameters",
    ] {
        assert!(!json[field].is_null(), "{field} missing");
    }
    assert!(
        json["latency_ms"]["pay_to_cashier_paid"]["p99"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(report.plot_svg().starts_with("<svg"));
    // The same settlements seen from the database, the tips among them.
    assert_eq!(
        app.count("SELECT count(*) FROM payments").await as u64,
        report.settled
    );
    assert!(
        app.count("SELECT count(*) FROM payments WHERE tip_minor > 0")
            .await
            > 0
    );
}

#[tokio::test]
async fn a_hot_merchant_run_reconciles_too() {
    let app = spawn_app().await;
    let config = LoadConfig {
        gateway: app.address.clone(),
        admin_token: app.admin_token.clone(),
        merchants: 2,
        customers: 20,
        rate: 50.0,
        duration_seconds: 1.0,
        seed: 11,
        hot_merchant: true,
        mix: "pay=1".parse().unwrap(),
        overload: false,
        show_progress: false,
    };
    let report = simulator::load::run(config).await.unwrap();
    assert!(report.passed, "{}", report.to_json());
    assert_eq!(report.settled, 50);
}

#[tokio::test]
async fn the_demo_walks_through_a_sale() {
    let app = spawn_app().await;
    simulator::demo::run(&app.address, &app.admin_token)
        .await
        .unwrap();
}

#[test]
fn the_simulator_refuses_a_gateway_off_this_machine() {
    for url in [
        "http://10.0.0.1:8080",
        "http://example.com",
        "https://192.168.1.2",
    ] {
        assert!(!simulator::load::is_loopback_url(url), "{url}");
    }
    for url in [
        "http://127.0.0.1:8080",
        "http://localhost:9",
        "http://[::1]:8080",
        "http://127.1.2.3",
    ] {
        assert!(simulator::load::is_loopback_url(url), "{url}");
    }
}
