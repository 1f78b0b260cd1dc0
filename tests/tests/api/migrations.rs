//! Migrations on a database that has them: nothing is applied twice, and a change to
//! `migrations/functions/` replaces every function in one go, leaving the ledger
//! working and no stale definition behind.

use crate::helpers::{json_ok, spawn_app};
use gateway::{db, Settings};
use reqwest::StatusCode;
use std::collections::HashMap;

#[tokio::test]
async fn functions_are_reapplied_when_they_change_and_payments_still_settle() {
    let app = spawn_app().await;
    let vars = HashMap::from([
        ("DATABASE_URL".to_owned(), app.db_url.clone()),
        ("QRGATE_ADMIN_TOKEN".to_owned(), app.admin_token.clone()),
        ("QRGATE_SECRETS_KEY".to_owned(), app.secrets_key.clone()),
    ]);
    let pool = db::pool(&Settings::from_vars(&vars).unwrap()).unwrap();
    assert!(
        db::migrate(&pool).await.unwrap().is_empty(),
        "already migrated"
    );

    // A stale overload, as an older functions text could have left, and a changed text.
    let client = app.db().await;
    client
        .batch_execute(
            "CREATE FUNCTION refund_share(p bigint) RETURNS bigint LANGUAGE sql AS 'SELECT p';
             UPDATE schema_migrations SET checksum = 'older' WHERE version = 'functions'",
        )
        .await
        .unwrap();
    assert_eq!(db::migrate(&pool).await.unwrap(), vec!["functions"]);
    let overloads = app
        .count("SELECT count(*) FROM pg_proc WHERE proname = 'refund_share'")
        .await;
    assert_eq!(overloads, 1, "the stale overload is gone");
    let triggers = app
        .count(
            "SELECT count(*) FROM pg_trigger WHERE tgname IN ('orders_webhook', 'refunds_webhook')",
        )
        .await;
    assert_eq!(triggers, 2, "the triggers are back");

    // A database migrated by a gateway that knows more (or an older layout) is refused.
    client
        .execute(
            "INSERT INTO schema_migrations (version, checksum) VALUES ('9999_from_the_future', 'x')",
            &[],
        )
        .await
        .unwrap();
    let refused = db::migrate(&pool).await.unwrap_err().to_string();
    assert!(refused.contains("9999_from_the_future"), "{refused}");
    client
        .execute(
            "DELETE FROM schema_migrations WHERE version = '9999_from_the_future'",
            &[],
        )
        .await
        .unwrap();

    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "10.00").await;
    let order = app.create_order(&merchant.cashier_key, "4.20").await;
    json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
}
