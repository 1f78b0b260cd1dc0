//! The API described: `/openapi.json` (OpenAPI 3.1) and `/docs`, an interactive page
//! served from assets bundled in the binary (it works with no network). The document
//! is built here from the operation table below and the schemas in `schemas.json`; the
//! error-code catalogue, the currencies and the limits come from the code itself. Tests
//! hold it to the code both ways: every route and method actix serves is in the table
//! (and nothing else is), and with `QRGATE_OPENAPI_CHECK=1` every request the gateway
//! accepted and every JSON response it sent in the integration tests is validated
//! against it (`check`).

pub mod check;

use crate::{config::Limits, error::ErrorCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", crate::http::get().to(openapi_json))
        .route(
            "/docs",
            crate::http::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .route("/docs/", crate::http::get().to(docs_page))
        .route(
            "/docs/swagger-ui-bundle.js",
            crate::http::get().to(|req: HttpRequest| async move {
                docs_asset(&req, "text/javascript; charset=utf-8", SWAGGER_UI_JS_GZ)
            }),
        )
        .route(
            "/docs/swagger-ui.css",
            crate::http::get().to(|req: HttpRequest| async move {
                docs_asset(&req, "text/css; charset=utf-8", SWAGGER_UI_CSS_GZ)
            }),
        );
}

/// swagger-ui's files, gzipped, in the binary (`gateway/assets/swagger-ui/README.md`).
const SWAGGER_UI_JS_GZ: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js.gz");
const SWAGGER_UI_CSS_GZ: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css.gz");

/// The interactive page: swagger-ui over `/openapi.json`, every asset from this server.
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>qrgate API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css" />
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
window.onload = () => { window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' }); };
</script>
</body>
</html>"#,
    )
}

/// A gzipped asset: as it is to a client that accepts gzip, inflated for one that does not.
fn docs_asset(req: &HttpRequest, content_type: &str, gzipped: &'static [u8]) -> HttpResponse {
    let accepts_gzip = req
        .headers()
        .get_all(actix_web::http::header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"));
    if accepts_gzip {
        return response
            .insert_header(("Content-Encoding", "gzip"))
            .body(gzipped);
    }
    let mut inflated = Vec::new();
    use std::io::Read;
    match flate2::read::GzDecoder::new(gzipped).read_to_end(&mut inflated) {
        Ok(_) => response.body(inflated),
        Err(e) => crate::error::ApiError::internal(
            anyhow::Error::new(e).context("inflating a bundled asset"),
        )
        .error_response(),
    }
}

/// The methods the API serves at a concrete request path (HEAD wherever GET is), by the
/// operation table: what a `405` lists in `Allow`. Empty: no such path.
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<&'static str> = OPERATIONS
        .iter()
        .filter(|(_, template, ..)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s)
        })
        .map(|(method, ..)| *method)
        .collect();
    if methods.contains(&"get") {
        methods.push("head");
    }
    methods.sort_unstable();
    methods.dedup();
    methods
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// Who may call an operation, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anyone,
    Metrics,
    Admin,
    Merchant(&'static str),
    Wallet,
}

/// What a successful call answers.
#[derive(Clone, Copy)]
enum Answer {
    Json(u16, &'static str),
    /// JSON, or CSV with `format=csv`.
    JsonOrCsv(u16, &'static str),
    Media(&'static str),
}

/// One operation: `(method, path, summary, caller, query parameters, request body
/// schema, success answer, error statuses beyond those its caller and body imply)`.
type Operation = (
    &'static str,
    &'static str,
    &'static str,
    Caller,
    &'static [&'static str],
    Option<&'static str>,
    Answer,
    &'static [u16],
);

const PAGE: &[&str] = &["cursor", "limit"];
const STATEMENT: &[&str] = &["from", "to", "cursor", "limit", "format"];

#[rustfmt::skip]
const OPERATIONS: &[Operation] = {
    use Answer::*;
    use Caller::*;
    &[
        ("get", "/healthz", "The process is up", Anyone, &[], None, Json(200, "Health"), &[]),
        ("get", "/readyz", "The database answers", Anyone, &[], None, Json(200, "Ready"), &[503]),
        ("get", "/metrics", "Prometheus metrics (404 while QRGATE_METRICS_TOKEN is unset)", Metrics, &[], None, Media("text/plain"), &[404]),
        ("get", "/openapi.json", "This document", Anyone, &[], None, Json(200, "OpenApiDocument"), &[]),
        ("post", "/v1/admin/merchants", "Register a merchant", Admin, &[], Some("MerchantCreate"), Json(201, "Merchant"), &[]),
        ("post", "/v1/admin/merchants/{id}/api-keys", "Issue an API key", Admin, &[], Some("ApiKeyCreate"), Json(201, "ApiKeyCreated"), &[404, 422]),
        ("get", "/v1/admin/merchants/{id}/api-keys", "List a merchant's API keys", Admin, PAGE, None, Json(200, "ApiKeyPage"), &[404]),
        ("delete", "/v1/admin/merchants/{id}/api-keys/{key_id}", "Revoke an API key", Admin, &[], None, Json(200, "Revoked"), &[404]),
        ("post", "/v1/admin/merchants/{id}/payout-accounts", "Allow a payout account", Admin, &[], Some("PayoutAccountAllow"), Json(201, "PayoutAccountAllowed"), &[404, 422]),
        ("get", "/v1/admin/merchants/{id}/payout-accounts", "The accounts a merchant may pay out to", Admin, &[], None, Json(200, "PayoutAccountList"), &[404]),
        ("delete", "/v1/admin/merchants/{id}/payout-accounts/{account_id}", "Stop a merchant paying out to an account", Admin, &[], None, Json(200, "PayoutAccountRemoved"), &[404]),
        ("post", "/v1/admin/merchants/{id}/webhook-secret", "Rotate a merchant's webhook secret", Admin, &[], Some("Empty"), Json(201, "WebhookSecretRotated"), &[404]),
        ("post", "/v1/admin/merchants/{id}/block", "Block a merchant", Admin, &[], Some("Empty"), Json(200, "BlockState"), &[404]),
        ("post", "/v1/admin/merchants/{id}/unblock", "Unblock a merchant", Admin, &[], Some("Empty"), Json(200, "BlockState"), &[404]),
        ("post", "/v1/admin/accounts/{id}/block", "Block a customer account", Admin, &[], Some("Empty"), Json(200, "BlockState"), &[404]),
        ("post", "/v1/admin/accounts/{id}/unblock", "Unblock a customer account", Admin, &[], Some("Empty"), Json(200, "BlockState"), &[404]),
        ("post", "/v1/admin/fx-rates", "Set an exchange rate", Admin, &[], Some("FxRateCreate"), Json(201, "FxRate"), &[]),
        ("get", "/v1/admin/fx-rates", "The rate in force for each currency pair", Admin, &[], None, Json(200, "FxRateList"), &[]),
        ("get", "/v1/admin/fx-rates/{base}/{quote}", "Every rate a pair has had, newest first", Admin, PAGE, None, Json(200, "FxRatePage"), &[]),
        ("post", "/v1/admin/campaigns", "Start a campaign", Admin, &[], Some("CampaignCreate"), Json(201, "Campaign"), &[404]),
        ("get", "/v1/admin/campaigns", "List campaigns, newest first", Admin, &["status=CampaignStatus", "merchant_id=Id", "currency=Currency", "cursor", "limit"], None, Json(200, "CampaignPage"), &[]),
        ("get", "/v1/admin/campaigns/{id}", "A campaign, with what it has spent", Admin, &[], None, Json(200, "Campaign"), &[404]),
        ("patch", "/v1/admin/campaigns/{id}", "Move a campaign's window or budget (never below what it spent)", Admin, &[], Some("CampaignEdit"), Json(200, "Campaign"), &[404, 409]),
        ("post", "/v1/admin/campaigns/{id}/pause", "Pause a campaign: it discounts nothing until resumed", Admin, &[], Some("Empty"), Json(200, "Campaign"), &[404, 409]),
        ("post", "/v1/admin/campaigns/{id}/resume", "Resume a paused campaign", Admin, &[], Some("Empty"), Json(200, "Campaign"), &[404, 409]),
        ("post", "/v1/admin/campaigns/{id}/end", "End a campaign early, for good", Admin, &[], Some("Empty"), Json(200, "Campaign"), &[404]),
        ("post", "/v1/admin/wallets", "Register a wallet provider", Admin, &[], Some("WalletCreate"), Json(201, "WalletCreated"), &[]),
        ("post", "/v1/admin/wallets/{id}/secrets", "Add a wallet signing secret", Admin, &[], Some("Empty"), Json(201, "WalletSecret"), &[404, 422]),
        ("post", "/v1/admin/rewards", "List a platform reward: a gift, or a voucher the platform funds at one shop", Admin, &[], Some("PlatformRewardCreate"), Json(201, "Reward"), &[404, 422]),
        ("get", "/v1/admin/rewards", "Every reward, newest first", Admin, PAGE, None, Json(200, "RewardPage"), &[]),
        ("post", "/v1/admin/rewards/{id}/end", "End any reward", Admin, &[], Some("Empty"), Json(200, "Reward"), &[404]),
        ("put", "/v1/admin/wallets/{id}/webhook", "Point a wallet's events (its customers' refunds, points, referrals, payouts) at a URL; the first time, its signing secret is made and shown once", Admin, &[], Some("WalletWebhookSet"), Json(200, "WalletWebhook"), &[404]),
        ("delete", "/v1/admin/wallets/{id}/webhook", "Stop a wallet's events and forget their secret", Admin, &[], None, Json(200, "WalletWebhook"), &[404]),
        ("post", "/v1/admin/wallets/{id}/webhook/secret", "Rotate a wallet's webhook secret: the new one shown once, the old one signing beside it for a day", Admin, &[], Some("Empty"), Json(201, "WebhookSecretRotated"), &[404]),
        ("delete", "/v1/admin/wallets/{id}/secrets/{secret_id}", "Retire a wallet signing secret (not its last one)", Admin, &[], None, Json(200, "WalletSecretRetired"), &[400, 404]),
        ("post", "/v1/admin/wallets/{id}/funding-limits", "Set a wallet's funding limit", Admin, &[], Some("FundingLimitSet"), Json(201, "FundingLimit"), &[404]),
        ("get", "/v1/admin/wallets/{id}/funding-limits", "A wallet's funding limits", Admin, &[], None, Json(200, "FundingLimitList"), &[404]),
        ("get", "/v1/admin/wallets/{id}/sca", "A wallet's SCA rules", Admin, &[], None, Json(200, "ScaRuleList"), &[404]),
        ("put", "/v1/admin/wallets/{id}/sca/{currency}", "Set a wallet's SCA rule for a currency", Admin, &[], Some("ScaRuleSet"), Json(200, "ScaRule"), &[404]),
        ("delete", "/v1/admin/wallets/{id}/sca/{currency}", "Remove a wallet's SCA rule", Admin, &[], Some("Empty"), Json(200, "ScaRuleRemoved"), &[404]),
        ("get", "/v1/admin/wallets/{id}/cross-provider-transfers", "The currencies in which a wallet takes part in transfers across providers", Admin, &[], None, Json(200, "CrossProviderTransfersList"), &[404]),
        ("put", "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}", "Let a wallet's customers send to and receive from other wallets' customers in a currency, up to a maximum a transfer", Admin, &[], Some("CrossProviderTransfersSet"), Json(200, "CrossProviderTransfers"), &[404]),
        ("delete", "/v1/admin/wallets/{id}/cross-provider-transfers/{currency}", "Stop a wallet's transfers across providers in a currency", Admin, &[], Some("Empty"), Json(200, "CrossProviderTransfersRemoved"), &[404]),
        ("get", "/v1/admin/risk-limits", "Every currency's risk limits", Admin, &[], None, Json(200, "RiskLimitsList"), &[]),
        ("put", "/v1/admin/risk-limits/{currency}", "Replace a currency's risk limits", Admin, &[], Some("RiskLimitsSet"), Json(200, "RiskLimits"), &[]),
        ("post", "/v1/admin/tokens", "Issue a named admin token", Admin, &[], Some("AdminTokenCreate"), Json(201, "AdminTokenCreated"), &[]),
        ("delete", "/v1/admin/tokens/{id}", "Revoke a named admin token", Admin, &[], None, Json(200, "Revoked"), &[404]),
        ("post", "/v1/admin/second-factor", "Enroll the calling named token's second factor (TOTP; shown once)", Admin, &[], Some("Empty"), Json(201, "SecondFactorEnrollment"), &[409]),
        ("post", "/v1/admin/second-factor/confirm", "Confirm the enrollment with a first code", Admin, &[], Some("SecondFactorConfirm"), Json(200, "SecondFactorConfirmed"), &[404]),
        ("delete", "/v1/admin/tokens/{id}/second-factor", "Remove a named token's second factor (a lost phone)", Admin, &[], None, Json(200, "SecondFactorRemoved"), &[404]),
        ("get", "/v1/admin/audit", "The audit log of admin actions", Admin, PAGE, None, Json(200, "AuditPage"), &[]),
        ("get", "/v1/admin/search", "Find orders, payments and refunds for a customer's question", Admin, &["q!", "merchant_id", "wallet_id", "amount", "from", "to", "max_results"], None, Json(200, "DeskSearch"), &[]),
        ("get", "/v1/admin/ledger/invariants", "Check the six ledger invariants", Admin, &[], None, Json(200, "LedgerInvariants"), &[]),
        ("post", "/v1/admin/reconciliation/payments", "Check that payments settled exactly once", Admin, &[], Some("ReconcilePayments"), Json(200, "PaymentsReconciled"), &[]),
        ("post", "/v1/orders", "Create an order and its QR", Merchant("orders"), &[], Some("OrderCreate"), Json(201, "Order"), &[409, 422]),
        ("get", "/v1/orders", "List orders, newest first", Merchant("orders"), &["q", "status", "from", "to", "key_id=Id", "static_code_id=Id", "cursor", "limit"], None, Json(200, "OrderPage"), &[]),
        ("get", "/v1/orders/{id}", "An order (long-polls with wait_seconds)", Merchant("orders"), &["wait_seconds"], None, Json(200, "Order"), &[404]),
        ("get", "/v1/orders/{id}/qr.svg", "The order's QR as SVG", Merchant("orders"), &[], None, Media("image/svg+xml"), &[404]),
        ("get", "/v1/orders/{id}/qr.png", "The order's QR as PNG", Merchant("orders"), &[], None, Media("image/png"), &[404]),
        ("post", "/v1/orders/{id}/close", "Close a pending order", Merchant("orders"), &[], Some("Empty"), Json(200, "Order"), &[404, 409]),
        ("get", "/v1/orders/{id}/events", "The order's timeline", Merchant("orders"), &[], None, Json(200, "OrderTimeline"), &[404]),
        ("get", "/v1/orders/{id}/stream", "The order's state as server-sent events (Last-Event-ID honoured)", Merchant("orders"), &[], None, Media("text/event-stream"), &[404]),
        ("post", "/v1/static-codes", "Issue a static code to print (the wallet asks the customer for the amount)", Merchant("orders"), &[], Some("StaticCodeCreate"), Json(201, "StaticCode"), &[409, 422]),
        ("get", "/v1/static-codes", "List the shop's static codes, newest first", Merchant("orders"), &["include_revoked", "cursor", "limit"], None, Json(200, "StaticCodePage"), &[]),
        ("get", "/v1/static-codes/{id}", "A static code", Merchant("orders"), &[], None, Json(200, "StaticCode"), &[404]),
        ("get", "/v1/static-codes/{id}/qr.svg", "The static code's QR as SVG", Merchant("orders"), &[], None, Media("image/svg+xml"), &[404]),
        ("get", "/v1/static-codes/{id}/qr.png", "The static code's QR as PNG", Merchant("orders"), &[], None, Media("image/png"), &[404]),
        ("post", "/v1/static-codes/{id}/revoke", "Revoke a static code: payments through it are refused from then on", Merchant("orders"), &[], Some("Empty"), Json(200, "StaticCode"), &[404]),
        ("post", "/v1/checkout-sessions", "Open a checkout session: an order with a hosted payment page", Merchant("orders"), &[], Some("CheckoutSessionCreate"), Json(201, "CheckoutSession"), &[409, 422]),
        ("get", "/v1/checkout-sessions/{id}", "A checkout session", Merchant("orders"), &[], None, Json(200, "CheckoutSession"), &[404]),
        ("get", "/v1/campaigns", "The campaigns that may discount this shop's orders (not ended)", Merchant("orders"), &[], None, Json(200, "CampaignList"), &[]),
        ("get", "/v1/me", "The merchant and the key this call was made with", Merchant("any"), &[], None, Json(200, "Me"), &[]),
        ("post", "/v1/me/second-factor", "Enroll the calling key's second factor (TOTP; shown once)", Merchant("any"), &[], Some("Empty"), Json(201, "SecondFactorEnrollment"), &[409]),
        ("post", "/v1/me/second-factor/confirm", "Confirm the enrollment with a first code", Merchant("any"), &[], Some("SecondFactorConfirm"), Json(200, "SecondFactorConfirmed"), &[404]),
        ("put", "/v1/me/tip-policy", "Set the shop's default tip policy (orders that name none take it) and its tip cap", Merchant("keys"), &[], Some("TipSettingsSet"), Json(200, "TipSettings"), &[]),
        ("put", "/v1/me/refund-second-factor", "Set the refund amount above which a refund needs the refunding key's second factor", Merchant("keys"), &[], Some("RefundSecondFactorSet"), Json(200, "RefundSecondFactor"), &[]),
        ("delete", "/v1/keys/{key_id}/second-factor", "Remove one of the merchant's keys' second factor", Merchant("keys"), &[], None, Json(200, "SecondFactorRemoved"), &[404]),
        ("post", "/v1/keys", "Issue a staff key (its scopes at most the caller's)", Merchant("keys"), &[], Some("ApiKeyCreate"), Json(201, "ApiKeyCreated"), &[422]),
        ("get", "/v1/keys", "List the merchant's keys", Merchant("keys"), PAGE, None, Json(200, "ApiKeyPage"), &[]),
        ("delete", "/v1/keys/{key_id}", "Revoke one of the merchant's keys", Merchant("keys"), &[], None, Json(200, "Revoked"), &[404]),
        ("get", "/v1/reports/shift", "A shift close: paid and refunded since, by staff key", Merchant("orders"), &["since"], None, Json(200, "ShiftReport"), &[]),
        ("get", "/cashier", "The cashier's till, a web page", Anyone, &[], None, Media("text/html"), &[]),
        ("get", "/pay/{token}", "A checkout session's payment page", Anyone, &[], None, Media("text/html"), &[]),
        ("get", "/pay/{token}/session", "What the payment page shows", Anyone, &[], None, Json(200, "PaymentPageSession"), &[404]),
        ("get", "/pay/{token}/stream", "The payment page's session as server-sent events", Anyone, &[], None, Media("text/event-stream"), &[404, 429]),
        ("get", "/pay/{token}/qr.svg", "The open session's QR as SVG", Anyone, &[], None, Media("image/svg+xml"), &[404, 409]),
        ("post", "/pay/{token}/cancel", "The customer cancels: the order is closed if still open", Anyone, &[], Some("Empty"), Json(200, "PaymentPageSession"), &[404]),
        ("get", "/assets/web/{name}", "A file of the web pages (CSS, JavaScript)", Anyone, &[], None, Media("text/plain"), &[404]),
        ("post", "/v1/orders/{id}/refunds", "Refund a paid order, in part or whole", Merchant("refunds"), &[], Some("RefundCreate"), Json(201, "Refund"), &[404, 409, 422]),
        ("get", "/v1/orders/{id}/refunds", "An order's refunds, oldest first", Merchant("orders"), &[], None, Json(200, "RefundList"), &[404]),
        ("post", "/v1/payouts", "Pay out to an allowed account", Merchant("refunds"), &[], Some("PayoutCreate"), Json(201, "Payout"), &[404, 409, 422]),
        ("get", "/v1/payouts", "The merchant's payouts, newest first", Merchant("refunds"), PAGE, None, Json(200, "PayoutPage"), &[]),
        ("get", "/v1/accounts", "The merchant's accounts", Merchant("reports"), &[], None, Json(200, "AccountList"), &[]),
        ("get", "/v1/accounts/{id}", "An account's balance", Merchant("reports"), &[], None, Json(200, "Account"), &[404]),
        ("get", "/v1/accounts/{id}/statement", "An account's statement", Merchant("reports"), STATEMENT, None, JsonOrCsv(200, "Statement"), &[404]),
        ("get", "/v1/reports/settlement", "The daily settlement report", Merchant("reports"), &["date", "format"], None, JsonOrCsv(200, "SettlementReport"), &[]),
        ("post", "/v1/rewards", "List a reward for points: a voucher worth an amount off at this shop, or a gift (a manager key)", Merchant("keys"), &[], Some("RewardCreate"), Json(201, "Reward"), &[409, 422]),
        ("get", "/v1/rewards", "The shop's rewards, newest first", Merchant("orders"), PAGE, None, Json(200, "RewardPage"), &[]),
        ("get", "/v1/rewards/{id}", "A reward, with how many were redeemed, used and expired unused", Merchant("orders"), &[], None, Json(200, "Reward"), &[404]),
        ("post", "/v1/rewards/{id}/end", "End a reward: no more redemptions (issued vouchers stay good until they expire)", Merchant("keys"), &[], Some("Empty"), Json(200, "Reward"), &[404]),
        ("get", "/v1/webhooks/deliveries", "Webhook deliveries, newest first", Merchant("reports"), PAGE, None, Json(200, "WebhookDeliveryPage"), &[]),
        ("post", "/v1/webhooks/deliveries/{id}/retry", "Deliver an event again", Merchant("reports"), &[], Some("Empty"), Json(200, "WebhookRetry"), &[404]),
        ("post", "/v1/webhooks/secret", "Rotate the webhook secret", Merchant("reports"), &[], Some("Empty"), Json(201, "WebhookSecretRotated"), &[]),
        ("post", "/v1/wallets/{wallet_id}/customers", "Open a customer's account", Wallet, &[], Some("CustomerOpen"), Json(201, "CustomerOpened"), &[404]),
        ("post", "/v1/wallets/{wallet_id}/top-ups", "Top up a customer's account", Wallet, &[], Some("TopUp"), Json(200, "TopUpDone"), &[404, 422]),
        ("post", "/v1/wallets/{wallet_id}/transfers", "Move money between two customers", Wallet, &[], Some("Transfer"), Json(200, "TransferDone"), &[404, 422]),
        ("post", "/v1/wallets/{wallet_id}/quotes", "What paying a scanned QR would charge", Wallet, &[], Some("QuoteRequest"), Json(200, "Quote"), &[404, 409, 422]),
        ("post", "/v1/wallets/{wallet_id}/payments", "Pay a scanned order", Wallet, &[], Some("PaymentRequest"), Json(200, "Payment"), &[404, 422]),
        ("get", "/v1/wallets/{wallet_id}/payments/{wallet_txn_id}", "The stored answer to a payment", Wallet, &[], None, Json(200, "Payment"), &[404, 409, 422]),
        ("get", "/v1/wallets/{wallet_id}/rewards", "The live rewards catalogue to show customers, newest first", Wallet, PAGE, None, Json(200, "RewardCatalogue"), &[]),
        ("post", "/v1/wallets/{wallet_id}/rewards/redemptions", "Redeem a customer's points for a reward", Wallet, &[], Some("RedemptionCreate"), Json(201, "Redemption"), &[404, 409, 422]),
        ("get", "/v1/wallets/{wallet_id}/rewards/redemptions", "A customer's redemptions (vouchers and gifts), newest first", Wallet, &["customer_account_id!", "cursor", "limit"], None, Json(200, "RedemptionPage"), &[404]),
        ("get", "/v1/wallets/{wallet_id}/webhooks/deliveries", "The wallet's events and their delivery state, newest first", Wallet, PAGE, None, Json(200, "WalletWebhookDeliveryPage"), &[]),
        ("post", "/v1/wallets/{wallet_id}/webhooks/deliveries/{id}/retry", "Deliver one of the wallet's events again", Wallet, &[], Some("Empty"), Json(200, "WebhookRetry"), &[404]),
        ("get", "/v1/wallets/{wallet_id}/accounts/{id}", "A customer account's balance", Wallet, &[], None, Json(200, "CustomerAccount"), &[404]),
        ("get", "/v1/wallets/{wallet_id}/accounts/{id}/statement", "A customer account's statement", Wallet, STATEMENT, None, JsonOrCsv(200, "Statement"), &[404]),
    ]
};

/// The document, built once.
pub fn document() -> Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build).clone()
}

fn build() -> Value {
    let mut paths = Map::new();
    for row in OPERATIONS {
        let (method, path, ..) = *row;
        paths.entry(path).or_insert_with(|| json!({}))[method] = operation(row);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "qrgate",
            "version": "1",
            "description": "QR acquiring gateway: merchants create orders and show their QR; wallets pay them with signed requests; operators run it. Amounts are decimal strings. See docs/api.md for the rules behind each call.",
        },
        "tags": [
            {"name": "Cashier and merchant", "description": "A shop's till and back office, with a merchant API key: orders and their QR codes, refunds, payouts, balances, statements, the daily report, webhooks. Each call names the scope its key needs (orders, refunds, reports)."},
            {"name": "Wallet provider", "description": "A wallet app's server, signing every request (Standard Webhooks): customers' accounts, top-ups, quotes, payments of scanned QR codes, transfers, statements."},
            {"name": "Operator", "description": "Whoever runs the gateway, with the admin token or a named admin token: merchants, keys, wallets, limits, rates, campaigns, blocking, reconciliation, the audit log; /metrics with its own token."},
            {"name": "Public", "description": "No credentials: health, readiness and this document."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "responses": error_responses(),
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "QRGATE_ADMIN_TOKEN, or a named admin token `adm_….<secret>`."},
                "merchant": {"type": "http", "scheme": "bearer", "description": "A merchant API key `key_….<secret>`; each operation names the scope it needs."},
                "metrics": {"type": "http", "scheme": "bearer", "description": "QRGATE_METRICS_TOKEN."},
                "walletId": {"type": "apiKey", "in": "header", "name": "webhook-id", "description": "Standard Webhooks: a unique message id, at most once per 10 minutes."},
                "walletTimestamp": {"type": "apiKey", "in": "header", "name": "webhook-timestamp", "description": "Unix seconds, within 5 minutes of the gateway's clock."},
                "walletSignature": {"type": "apiKey", "in": "header", "name": "webhook-signature", "description": "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` under a secret of the wallet; space-separated during rotation."},
            },
        },
    })
}

fn operation(row: &Operation) -> Value {
    let &(method, path, summary, caller, query, request, answer, errors) = row;
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = match name {
                "currency" | "base" | "quote" => schema_ref("Currency"),
                _ => json!({"type": "string", "minLength": 1}),
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    parameters.extend(query.iter().map(|name| query_parameter(name)));
    if takes_second_factor(caller, method, path) {
        parameters.push(json!({
            "name": "Qrgate-OTP", "in": "header", "required": false,
            "schema": {"type": "string", "pattern": "^[0-9]{6}$"},
            "description": "The caller's second factor's current code (TOTP). Needed when the caller has one \
                            (a named admin token: always for this call; a merchant key: for a refund above \
                            the shop's threshold, or a change of the threshold or of a factor); \
                            without it `403 second_factor_required`, wrong or spent `403 second_factor_invalid`.",
        }));
    }
    let mut responses = Map::new();
    match answer {
        Answer::Json(status, schema) => {
            responses.insert(status.to_string(), json!({"description": "Success", "content": {"application/json": {"schema": schema_ref(schema)}}}));
        }
        Answer::JsonOrCsv(status, schema) => {
            responses.insert(
                status.to_string(),
                json!({"description": "Success: JSON, or CSV with format=csv", "content": {
                    "application/json": {"schema": schema_ref(schema)},
                    "text/csv": {"schema": {"type": "string"}},
                }}),
            );
        }
        Answer::Media(media) => {
            responses.insert("200".into(), json!({"description": "Success", "content": {media: {"schema": {"type": "string"}}}}));
        }
    }
    for status in error_statuses(caller, path, query, request, errors) {
        responses.insert(
            status.to_string(),
            json!({"$ref": format!("#/components/responses/E{status}")}),
        );
    }
    let tag = match caller {
        Caller::Anyone => "Public",
        Caller::Metrics | Caller::Admin => "Operator",
        Caller::Merchant(_) => "Cashier and merchant",
        Caller::Wallet => "Wallet provider",
    };
    let mut op = json!({
        "tags": [tag],
        "summary": summary,
        "operationId": operation_id(method, path),
        "parameters": parameters,
        "responses": responses,
    });
    match caller {
        Caller::Anyone => op["security"] = json!([]),
        Caller::Metrics => op["security"] = json!([{"metrics": []}]),
        Caller::Admin => op["security"] = json!([{"admin": []}]),
        Caller::Merchant("any") => {
            op["security"] = json!([{"merchant": []}]);
            op["description"] = "Any of the merchant's API keys.".into();
        }
        Caller::Merchant(scope) => {
            op["security"] = json!([{"merchant": []}]);
            op["description"] = format!("Needs an API key with the `{scope}` scope.").into();
        }
        Caller::Wallet => {
            op["security"] = json!([{"walletId": [], "walletTimestamp": [], "walletSignature": []}])
        }
    }
    if let Some(schema) = request {
        op["requestBody"] = json!({"required": schema != "Empty", "content": {"application/json": {"schema": schema_ref(schema)}}});
    }
    op
}

/// Operations that may ask for the caller's second factor's code.
fn takes_second_factor(caller: Caller, method: &str, path: &str) -> bool {
    match caller {
        Caller::Admin => crate::roles::needs_second_factor(method, path),
        Caller::Merchant(_) => matches!(
            (method, path),
            ("post", "/v1/orders/{id}/refunds")
                | (_, "/v1/me/refund-second-factor")
                | (_, "/v1/keys/{key_id}/second-factor")
        ),
        _ => false,
    }
}

/// Every error status an operation can answer: its own, and those of its caller's
/// checks, its path, its body and its query.
fn error_statuses(
    caller: Caller,
    path: &str,
    query: &[&str],
    request: Option<&str>,
    own: &[u16],
) -> Vec<u16> {
    let mut statuses = vec![500];
    if caller != Caller::Anyone {
        statuses.push(503); // the database or its pool did not answer in time
    }
    match caller {
        Caller::Anyone => {}
        Caller::Metrics => statuses.push(401),
        Caller::Admin => statuses.extend([401, 403, 429]),
        Caller::Merchant(_) => statuses.extend([401, 403, 429]),
        Caller::Wallet => statuses.extend([401, 409, 429]),
    }
    if request.is_some() {
        statuses.extend([400, 413, 415]);
    }
    if !query.is_empty() {
        statuses.push(400);
    }
    if path.contains('{') {
        statuses.push(404); // a path value that names nothing (a NUL in it, say)
    }
    statuses.extend(own);
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// One shared response per error status, each the one error shape.
fn error_responses() -> Value {
    let described = [
        (400, "The request is malformed; the message names the field"),
        (
            401,
            "Missing or wrong credentials, or a signature that does not verify",
        ),
        (
            403,
            "The API key lacks the scope, the operator's role does not allow the call, or the call needs a second factor's code (`second_factor_required`, `second_factor_invalid`)",
        ),
        (404, "No such object, or another merchant's or wallet's"),
        (
            409,
            "Conflicts with the state or an earlier request (replays, references, order state)",
        ),
        (413, "The body is larger than QRGATE_BODY_BYTES_MAX"),
        (415, "The body is not application/json"),
        (
            422,
            "Well-formed but refused: see the code (and `rule` for a risk decline)",
        ),
        (
            429,
            "Too many requests or failed authentications; see Retry-After",
        ),
        (500, "Our bug; the request id finds it in the log"),
        (
            503,
            "The database is unreachable or busy; retry with backoff",
        ),
    ];
    let mut responses = Map::new();
    for (status, description) in described {
        let mut response = json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}});
        if status == 429 || status == 503 {
            response["headers"] = json!({"Retry-After": {"description": "Whole seconds to wait", "schema": {"type": "integer", "minimum": 1}}});
        }
        responses.insert(format!("E{status}"), response);
    }
    Value::Object(responses)
}

/// A query parameter by name; `name!` is required; `name=Schema` takes that schema.
fn query_parameter(name: &str) -> Value {
    if let Some((name, schema)) = name.split_once('=') {
        return json!({"name": name, "in": "query", "required": false, "schema": schema_ref(schema)});
    }
    let (name, required) = match name.strip_suffix('!') {
        Some(name) => (name, true),
        None => (name, matches!(name, "date" | "since")),
    };
    let limits = Limits::default();
    let schema = match name {
        "limit" => {
            json!({"type": "integer", "minimum": 1, "maximum": limits.page_size_max, "default": limits.page_size_default})
        }
        "wait_seconds" => {
            json!({"type": "integer", "minimum": 0, "maximum": limits.long_poll_seconds_max})
        }
        "status" => schema_ref("OrderStatus"),
        "from" | "to" => schema_ref("RequestTimestamp"),
        "since" => {
            json!({"allOf": [schema_ref("RequestTimestamp")], "description": "When the shift opened: in the past, at most 31 days ago."})
        }
        "include_revoked" => json!({"type": "boolean", "default": false}),
        "date" => {
            json!({"type": "string", "format": "date", "pattern": "^(19[7-9][0-9]|[2-9][0-9]{3})-"})
        }
        "cursor" => {
            json!({"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_-]+$", "description": "The next_cursor of the previous page, as it was."})
        }
        "format" => json!({"type": "string", "enum": ["json", "csv"], "default": "json"}),
        "q" => {
            json!({"type": "string", "pattern": "^[ -~]{1,100}$", "description": "An order, payment, refund or customer account id; a wallet_txn_id (with wallet_id); a merchant reference (with merchant_id)."})
        }
        "merchant_id" | "wallet_id" => json!({"type": "string", "pattern": "^[ -~]{1,64}$"}),
        "amount" => {
            json!({"type": "string", "pattern": "^(0|[1-9][0-9]*)(\\.[0-9]+)?$", "maxLength": 13, "description": "Only orders of this amount (a decimal string, as amounts are written), in each order's currency."})
        }
        "max_results" => json!({"type": "integer", "minimum": 1, "maximum": 20, "default": 10}),
        "customer_account_id" => schema_ref("Id"),
        _ => json!({"type": "string"}),
    };
    json!({"name": name, "in": "query", "required": required, "schema": schema})
}

fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "v1")
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}')
                .replace(['-', '.'], "_")
        })
        .collect();
    format!("{method}_{}", words.join("_"))
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Request bodies that carry a `currency` and amounts in it.
const AMOUNTS_WITH_CURRENCY: &[(&str, &[&str])] = &[
    ("OrderCreate", &["amount", "convenience_fee"]),
    ("PayoutCreate", &["amount"]),
    (
        "CampaignCreate",
        &["budget", "max_discount", "amount_off", "min_amount"],
    ),
    ("TopUp", &["amount"]),
    ("Transfer", &["amount"]),
    ("PaymentRequest", &["amount", "tip"]),
    ("FundingLimitSet", &["limit"]),
    ("CheckoutSessionCreate", &["amount"]),
];

/// Request bodies with a list of items whose amounts are in the body's `currency`.
const ITEM_AMOUNTS_WITH_CURRENCY: &[(&str, &str, &str)] =
    &[("CheckoutSessionCreate", "line_items", "amount")];

/// Text fields the server holds to `PlainText`: the document states its pattern.
const PLAIN_TEXT_FIELDS: &[(&str, &str)] = &[
    ("ApiKeyCreate", "name"),
    ("LineItem", "name"),
    ("MerchantCreate", "local_name"),
    ("MerchantCreate", "local_city"),
    ("AdminTokenCreate", "name"),
    ("RewardCreate", "name"),
    ("PlatformRewardCreate", "name"),
];

/// `schemas.json`, and the schemas the code itself defines: the error catalogue, the
/// currencies (and how many decimals an amount in each may have), countries and time
/// zones.
fn schemas() -> Value {
    let mut schemas: Map<String, Value> =
        serde_json::from_str(include_str!("schemas.json")).expect("schemas.json is a JSON object");
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    schemas.insert("ErrorCode".into(), json!({"type": "string", "enum": codes}));
    let money: Vec<qrgate_domain::Currency> = qrgate_domain::Currency::all()
        .filter(|c| *c != qrgate_domain::Currency::points())
        .collect();
    let codes_of = |scale: Option<u32>| -> Vec<&str> {
        money
            .iter()
            .filter(|c| scale.is_none_or(|s| c.minor_units() == s))
            .map(|c| c.code())
            .collect()
    };
    schemas.insert("Currency".into(), json!({"type": "string", "enum": codes_of(None), "description": "ISO 4217: a currency money is stated in."}));
    let mut ledger = codes_of(None);
    ledger.push(qrgate_domain::Currency::points().code());
    schemas.insert("LedgerCurrency".into(), json!({"type": "string", "enum": ledger, "description": "An account's currency: ISO 4217, or PTS for a loyalty points account."}));
    let countries: Vec<&str> = qrgate_domain::country::all().to_vec();
    schemas.insert("Country".into(), json!({"type": "string", "enum": countries, "description": "An assigned ISO 3166-1 alpha-2 code."}));
    let zones: Vec<&str> = qrgate_domain::time_zone::all().collect();
    schemas.insert("TimeZone".into(), json!({"type": "string", "enum": zones, "description": "An IANA time zone: Area/Location, or UTC."}));
    for (schema, field) in PLAIN_TEXT_FIELDS {
        let property = &mut schemas[*schema]["properties"][*field];
        let text = match property.get_mut("oneOf").and_then(Value::as_array_mut) {
            Some(branches) => branches
                .iter_mut()
                .find(|b| b["type"] == "string")
                .expect("a nullable text field has a string branch"),
            None => property,
        };
        text["pattern"] = qrgate_domain::text::PLAIN_TEXT_PATTERN.into();
    }
    // An amount is written with no more decimals than the currency in the same body has.
    let scales: std::collections::BTreeSet<u32> = money.iter().map(|c| c.minor_units()).collect();
    for (schema, fields) in AMOUNTS_WITH_CURRENCY {
        let rules: Vec<Value> = scales
            .iter()
            .map(|&scale| {
                // At most 13 characters written at the currency's scale.
                let pattern = match scale {
                    0 => "^[0-9]{1,13}$".to_owned(),
                    n => format!("^[0-9]{{1,{}}}(\\.[0-9]{{1,{n}}})?$", 12 - n),
                };
                let mut properties: Map<String, Value> = fields
                    .iter()
                    .map(|f| (f.to_string(), json!({"pattern": pattern})))
                    .collect();
                for (_, list, field) in ITEM_AMOUNTS_WITH_CURRENCY.iter().filter(|(s, ..)| s == schema) {
                    properties.insert(
                        list.to_string(),
                        json!({"items": {"properties": {*field: {"pattern": pattern}}}}),
                    );
                }
                json!({
                    "if": {"required": ["currency"], "properties": {"currency": {"enum": codes_of(Some(scale))}}},
                    "then": {"properties": properties},
                })
            })
            .collect();
        let target = schemas.get_mut(*schema).expect("a schema of schemas.json");
        match target.get_mut("allOf").and_then(Value::as_array_mut) {
            Some(all) => all.extend(rules),
            None => target["allOf"] = Value::Array(rules),
        }
    }
    schemas.insert("Error".into(), json!({
        "type": "object", "additionalProperties": false, "required": ["error"],
        "properties": {"error": {
            "type": "object", "additionalProperties": false, "required": ["code", "message", "request_id"],
            "properties": {
                "code": schema_ref("ErrorCode"),
                "message": {"type": "string", "description": "For a person; may change."},
                "request_id": {"type": "string", "description": "Finds the request in the gateway's logs."},
                "rule": schema_ref("RiskRule"),
            },
        }},
    }));
    Value::Object(schemas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{http::StatusCode, test as actix_test, App, HttpRequest};
    use std::collections::BTreeSet;

    /// Every full path actix routes, read from its resource map (its `Debug` output:
    /// actix has no public way to list routes). Scopes nest, so a pattern is appended
    /// to the prefixes that enclose it.
    fn actix_paths(resource_map: &str) -> Vec<String> {
        let lines: Vec<&str> = resource_map.lines().collect();
        let mut prefixes: Vec<(usize, String)> = Vec::new();
        let mut paths = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "patterns: Single(" {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            let pattern = lines[i + 1]
                .trim()
                .trim_end_matches(',')
                .trim_matches('"')
                .to_owned();
            let is_prefix = lines[i + 3].trim() == "is_prefix: true,";
            while prefixes.last().is_some_and(|(depth, _)| *depth >= indent) {
                prefixes.pop();
            }
            let full: String = prefixes
                .iter()
                .map(|(_, p)| p.as_str())
                .chain([pattern.as_str()])
                .collect();
            if is_prefix {
                prefixes.push((indent, pattern));
            } else {
                paths.push(full);
            }
        }
        paths
    }

    #[actix_web::test]
    async fn every_route_actix_serves_is_documented_with_its_methods_and_nothing_else() {
        // A pool that never connects (nothing listens on port 1): the probes below are
        // answered by authentication or by 503, never by a database.
        let vars = std::collections::HashMap::from([
            (
                "DATABASE_URL".to_owned(),
                "postgres://probe@127.0.0.1:1/none".to_owned(),
            ),
            (
                "QRGATE_ADMIN_TOKEN".to_owned(),
                "probe-admin-token-0123456789".to_owned(),
            ),
            ("QRGATE_DEVELOPMENT".to_owned(), "1".to_owned()),
        ]);
        let settings = crate::Settings::from_vars(&vars).unwrap();
        let state = crate::state::AppState::new(crate::db::pool(&settings).unwrap(), settings);
        let app = actix_test::init_service(
            App::new()
                .app_data(web::Data::new(state))
                .configure(crate::api::routes)
                .route(
                    "/__resource_map",
                    web::get()
                        .to(|req: HttpRequest| async move { format!("{:#?}", req.resource_map()) }),
                ),
        )
        .await;
        let request = actix_test::TestRequest::get()
            .uri("/__resource_map")
            .to_request();
        let map = String::from_utf8(actix_test::call_and_read_body(&app, request).await.to_vec())
            .unwrap();
        let paths = actix_paths(&map);
        assert!(
            paths.len() > 50,
            "the resource map did not parse: {paths:?}"
        );

        let mut served = BTreeSet::new();
        for path in paths
            .iter()
            .filter(|p| *p != "/__resource_map" && !p.starts_with("/docs"))
        {
            let concrete: String = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for method in ["get", "post", "put", "delete", "patch"] {
                let request = actix_test::TestRequest::default()
                    .method(method.to_uppercase().parse().unwrap())
                    .uri(&concrete)
                    .to_request();
                // Without credentials a routed method is refused by its handler, with
                // the error body; actix answers any other an empty 404 (or 405).
                let response = actix_test::call_service(&app, request).await;
                let status = response.status();
                let body = actix_test::read_body(response).await;
                let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                    || (status == StatusCode::NOT_FOUND && body.is_empty());
                if !unrouted {
                    served.insert((method.to_owned(), path.clone()));
                }
            }
        }
        let documented: BTreeSet<(String, String)> = OPERATIONS
            .iter()
            .map(|(method, path, ..)| (method.to_string(), path.to_string()))
            .collect();
        let undocumented: Vec<_> = served.difference(&documented).collect();
        let unserved: Vec<_> = documented.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from OPERATIONS: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "documented operations actix does not serve: {unserved:?}"
        );
    }

    /// Every `$ref` in the document names something the document defines.
    #[test]
    fn every_reference_resolves_and_every_schema_is_used() {
        let document = document();
        let mut references = Vec::new();
        collect_refs(&document, &mut references);
        for reference in &references {
            let pointer = reference.strip_prefix('#').unwrap_or(reference);
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in schemas.keys() {
            let wanted = format!("#/components/schemas/{name}");
            assert!(references.contains(&wanted), "schema {name} is never used");
        }
        assert_eq!(document["openapi"], "3.1.0");
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(r)) = fields.get("$ref") {
                    out.push(r.clone());
                }
                fields.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
