//! The wallet providers' API (`/v1/wallets/{wallet_id}/*`), every call signed with
//! Standard Webhooks. Checks run in the order of docs/contract.md §6: body size and content
//! type → signature and timestamp → webhook-id → JSON schema → wallet_txn_id → QR →
//! order → amount and currency → funds → settle. From the webhook-id on, a money call
//! is one database function (pay_order, top_up): one round trip, one commit.

use crate::{
    api::orders::account_json,
    auth::{verify_wallet, WalletCall},
    db::is_retryable,
    error::{ApiError, ApiResult, ErrorCode},
    http::{
        account_id_field, currency_field, money_field, parse_json, read_body,
        require_json_content_type, sha256, timestamp,
    },
    state::AppState,
};
use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use deadpool_postgres::GenericClient;
use qrgate_domain::{
    emv::{MerchantQr, OrderQr},
    ids::{self, ClientId},
    money::format_minor,
    text::AsciiText,
    Currency, Money,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_postgres::Row;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/v1/wallets/{wallet_id}/customers",
        web::post().to(open_customer),
    )
    .route("/v1/wallets/{wallet_id}/top-ups", web::post().to(top_up))
    .route(
        "/v1/wallets/{wallet_id}/transfers",
        web::post().to(transfer),
    )
    .route("/v1/wallets/{wallet_id}/quotes", web::post().to(quote))
    .route("/v1/wallets/{wallet_id}/payments", web::post().to(pay))
    .route(
        "/v1/wallets/{wallet_id}/payments/{wallet_txn_id}",
        crate::http::get().to(get_payment),
    )
    .route(
        "/v1/wallets/{wallet_id}/accounts/{id}",
        crate::http::get().to(get_account),
    )
    .route(
        "/v1/wallets/{wallet_id}/accounts/{id}/statement",
        crate::http::get().to(get_statement),
    );
}

const CUSTOMER_REFERENCE_CHARS_MAX: usize = 64;
/// The longest voucher code a payment may carry (the gateway issues 19 characters).
const VOUCHER_CODE_CHARS_MAX: usize = 32;
const REFERRAL_CODE_CHARS: usize = 10;

/// A signed POST: its raw body, its caller, and the digest that identifies the
/// message (method, path and body) for webhook-id replay detection.
pub(crate) struct SignedPost {
    pub(crate) call: WalletCall,
    pub(crate) body: web::Bytes,
    pub(crate) message_sha256: Vec<u8>,
}

pub(crate) async fn signed_post(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    wallet_id: &str,
) -> ApiResult<SignedPost> {
    let body = read_body(payload, req, state.settings.limits.body_bytes_max).await?;
    require_json_content_type(req)?;
    let call = verify_wallet(state, req, wallet_id, &body).await?;
    let message_sha256 = sha256(&[b"POST", req.path().as_bytes(), &body]);
    Ok(SignedPost {
        call,
        body,
        message_sha256,
    })
}

/// Claims the webhook-id of a message answered outside the money functions, with the one
/// SQL claim they use too (`wallet_message_claim`). Returns the stored answer when the
/// very same message was answered before.
pub(crate) async fn claim_message(
    client: &impl GenericClient,
    call: &WalletCall,
    sha: &[u8],
    is_get: bool,
) -> ApiResult<Option<HttpResponse>> {
    let row = client
        .query_one(
            "SELECT verdict, http_status, response FROM wallet_message_claim($1, $2, $3, NULL)",
            &[&call.wallet_id, &call.message_id, &sha],
        )
        .await?;
    let verdict: &str = row.get(0);
    let stored: (Option<i16>, Option<Value>) = (row.get(1), row.get(2));
    match (verdict, stored) {
        ("new", _) => Ok(None),
        // A POST sent again as it was gets its stored answer; a GET's id is spent.
        ("repeat", (Some(status), Some(body))) if !is_get => Ok(Some(stored_answer(status, body))),
        _ => Err(ApiError::new(
            ErrorCode::ReplayedMessage,
            "this webhook-id was already used",
        )),
    }
}

fn stored_answer(status: i16, body: Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK)).json(body)
}

/// A signed message whose body is not a valid request: its webhook-id is still spent.
async fn reject_malformed(
    state: &AppState,
    post: &SignedPost,
    error: ApiError,
) -> ApiResult<HttpResponse> {
    let client = state.pool.get().await?;
    claim_message(&client, &post.call, &post.message_sha256, false).await?;
    Err(error)
}

/// The signed POST bodies this API parses, by the last segment of their path.
#[derive(Clone, Copy, Debug)]
pub enum WalletPost {
    Customers,
    TopUps,
    Transfers,
    Quotes,
    Payments,
}

/// Parses a signed body exactly as its handler does, up to the database. The entry
/// point of the `wallet_request` fuzz target (`fuzz/`); the handlers call the same
/// parsers.
pub fn parse_wallet_post(kind: WalletPost, body: &[u8]) -> ApiResult<()> {
    match kind {
        WalletPost::Customers => parse_open_customer(body).map(drop),
        WalletPost::TopUps => parse_top_up(body).map(drop),
        WalletPost::Transfers => parse_transfer(body).map(drop),
        WalletPost::Quotes => parse_quote(body).map(drop),
        WalletPost::Payments => parse_payment(body).map(drop),
    }
}

/// The canonical digest of a parsed request: equal for equal requests however the
/// JSON was formatted.
pub(crate) fn request_sha256<T: Serialize>(kind: &str, request: &T) -> Vec<u8> {
    let canonical =
        serde_json::to_vec(&serde_json::to_value(request).expect("a request serializes"))
            .expect("a value serializes");
    sha256(&[kind.as_bytes(), &canonical])
}

pub(crate) fn wallet_txn_id(s: &str) -> ApiResult<ClientId> {
    ClientId::parse(s).map_err(|e| ApiError::invalid("wallet_txn_id", e))
}

/// A scanned QR's text as the wallet sent it: 1 to 512 characters (EMVCo's most). Whether
/// this gateway issued it is the payment's or the quote's question.
fn qr_payload_field(s: &str) -> ApiResult<String> {
    if s.is_empty() || s.chars().count() > qrgate_domain::emv::PAYLOAD_CHARS_MAX {
        return Err(ApiError::invalid(
            "qr_payload",
            format!(
                "must be 1 to {} characters",
                qrgate_domain::emv::PAYLOAD_CHARS_MAX
            ),
        ));
    }
    Ok(s.to_owned())
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OpenCustomerRequest {
    customer_reference: String,
    currency: String,
    referral_code: Option<String>,
}

type CustomerReference = AsciiText<CUSTOMER_REFERENCE_CHARS_MAX>;

fn parse_open_customer(
    body: &[u8],
) -> ApiResult<(OpenCustomerRequest, CustomerReference, Currency)> {
    let request: OpenCustomerRequest = parse_json(body)?;
    let reference = CustomerReference::parse(&request.customer_reference)
        .map_err(|e| ApiError::invalid("customer_reference", e))?;
    let currency = currency_field("currency", &request.currency)?;
    Ok((request, reference, currency))
}

/// Opens a customer's account in a currency. Opening the same customer's account in
/// the same currency again answers that account (201, idempotent).
async fn open_customer(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let (request, reference, currency) = match parse_open_customer(&post.body) {
        Ok(p) => p,
        Err(e) => return reject_malformed(&state, &post, e).await,
    };
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = claim_message(&tx, &post.call, &post.message_sha256, false).await? {
        return Ok(stored);
    }
    let wallet_id = &post.call.wallet_id;
    let existing = tx
        .query_opt(
            "SELECT id, referral_code FROM accounts
             WHERE kind = 'customer' AND wallet_id = $1 AND customer_reference = $2 AND currency = $3",
            &[wallet_id, &reference.as_str(), &currency.code()],
        )
        .await?;
    let (account_id, referral_code) = match existing {
        Some(row) => (row.get::<_, String>(0), row.get::<_, String>(1)),
        None => {
            open_account(
                &tx,
                wallet_id,
                reference.as_str(),
                currency,
                request.referral_code.as_deref(),
            )
            .await?
        }
    };
    // The customer's points account is opened with their first account, so a wallet can
    // read its balance and statement from the start (issue 11).
    let points_account_id: String = tx
        .query_one(
            "SELECT points_account($1, $2, false)",
            &[wallet_id, &account_id],
        )
        .await?
        .get(0);
    let body = json!({
        "account_id": account_id,
        "customer_reference": reference.as_str(),
        "currency": currency,
        "referral_code": referral_code,
        "points_account_id": points_account_id,
    });
    tx.execute(
        "UPDATE wallet_messages SET http_status = 201, response = $3 WHERE wallet_id = $1 AND message_id = $2",
        &[wallet_id, &post.call.message_id, &body],
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(body))
}

async fn open_account(
    tx: &deadpool_postgres::Transaction<'_>,
    wallet_id: &str,
    reference: &str,
    currency: Currency,
    referred_by: Option<&str>,
) -> ApiResult<(String, String)> {
    if let Some(code) = referred_by {
        let known: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE kind = 'customer' AND wallet_id = $1 AND referral_code = $2
                                AND customer_reference <> $3)",
                &[&wallet_id, &code, &reference],
            )
            .await?
            .get(0);
        if !known {
            // Well-formed, but names nobody: like an unknown id, 404.
            return Err(ApiError::new(
                crate::error::ErrorCode::NotFound,
                "referral_code: no other customer in this wallet has this code",
            ));
        }
    }
    // One referral code per customer, shared by all their accounts.
    let own_code: Option<String> = tx
        .query_opt(
            "SELECT referral_code FROM accounts WHERE kind = 'customer' AND wallet_id = $1 AND customer_reference = $2 LIMIT 1",
            &[&wallet_id, &reference],
        )
        .await?
        .map(|r| r.get(0));
    let referral_code =
        own_code.unwrap_or_else(|| ids::random_base32(REFERRAL_CODE_CHARS).to_uppercase());
    let account_id = ids::mint("acc");
    tx.execute(
        "SELECT ledger_open_account($1, 'customer', $2, $3, NULL, $4, 1::smallint)",
        &[&account_id, &currency.code(), &wallet_id, &reference],
    )
    .await?;
    tx.execute(
        "UPDATE accounts SET referral_code = $2, referred_by_code = $3 WHERE id = $1",
        &[&account_id, &referral_code, &referred_by],
    )
    .await?;
    Ok((account_id, referral_code))
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TopUpRequest {
    wallet_txn_id: String,
    account_id: String,
    amount: String,
    currency: String,
}

fn parse_top_up(body: &[u8]) -> ApiResult<(Vec<u8>, ClientId, String, Money)> {
    let r: TopUpRequest = parse_json(body)?;
    let txn = wallet_txn_id(&r.wallet_txn_id)?;
    let account = account_id_field("account_id", &r.account_id)?;
    let currency = currency_field("currency", &r.currency)?;
    let amount = money_field("amount", &r.amount, currency)?;
    Ok((request_sha256("top_up", &r), txn, account, amount))
}

async fn top_up(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let parsed = parse_top_up(&post.body);
    let (request_sha, txn, account, amount) = match parsed {
        Ok(p) => p,
        Err(e) => return reject_malformed(&state, &post, e).await,
    };
    let row = call_with_retry(
        &state,
        "SELECT * FROM top_up($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &post.call.wallet_id,
            &post.call.message_id,
            &post.message_sha256,
            &txn.as_str(),
            &request_sha,
            &account,
            &amount.minor(),
            &amount.currency().code(),
        ],
    )
    .await?;
    answer(&row, |_| {
        json!({
            "status": "succeeded",
            "wallet_txn_id": txn.as_str(),
            "account_id": account,
            "amount": amount.to_string(),
            "currency": amount.currency(),
        })
    })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TransferRequest {
    wallet_txn_id: String,
    from_account_id: String,
    to_account_id: String,
    amount: String,
    currency: String,
    customer_authentication: Option<CustomerAuthentication>,
}

fn parse_transfer(body: &[u8]) -> ApiResult<(Vec<u8>, ClientId, String, String, Money, bool)> {
    let r: TransferRequest = parse_json(body)?;
    let txn = wallet_txn_id(&r.wallet_txn_id)?;
    let from = account_id_field("from_account_id", &r.from_account_id)?;
    let to = account_id_field("to_account_id", &r.to_account_id)?;
    if from == to {
        return Err(ApiError::invalid(
            "to_account_id",
            "must differ from from_account_id",
        ));
    }
    let currency = currency_field("currency", &r.currency)?;
    let amount = money_field("amount", &r.amount, currency)?;
    let mfa = CustomerAuthentication::is_mfa(r.customer_authentication);
    Ok((request_sha256("transfer", &r), txn, from, to, amount, mfa))
}

/// Between two accounts of this wallet's customers, in one currency.
async fn transfer(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let parsed = parse_transfer(&post.body);
    let (request_sha, txn, from, to, amount, mfa) = match parsed {
        Ok(p) => p,
        Err(e) => return reject_malformed(&state, &post, e).await,
    };
    let row = call_with_retry(
        &state,
        "SELECT * FROM transfer($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &post.call.wallet_id,
            &post.call.message_id,
            &post.message_sha256,
            &txn.as_str(),
            &request_sha,
            &from,
            &to,
            &amount.minor(),
            &amount.currency().code(),
            &mfa,
        ],
    )
    .await?;
    answer(&row, |_| {
        json!({
            "status": "succeeded",
            "wallet_txn_id": txn.as_str(),
            "from_account_id": from,
            "to_account_id": to,
            "amount": amount.to_string(),
            "currency": amount.currency(),
        })
    })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    wallet_txn_id: String,
    qr_payload: String,
    customer_account_id: String,
    amount: String,
    currency: String,
    quote_id: Option<String>,
    max_charged: Option<String>,
    use_points: Option<i64>,
    customer_authentication: Option<CustomerAuthentication>,
    /// The customer's tip, in the order's currency, where the QR asks for one (55=01).
    /// Left out of the request's digest when absent, as before tips existed: a repeat
    /// sent across an upgrade still matches its stored answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    tip: Option<String>,
    /// A voucher the customer redeemed points for, taken off like a discount.
    #[serde(skip_serializing_if = "Option::is_none")]
    voucher_code: Option<String>,
}

/// How the wallet verified its customer for this payment or transfer, asserted inside
/// its signed body. Only `mfa` satisfies strong customer authentication.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum CustomerAuthentication {
    None,
    Pin,
    Mfa,
}

impl CustomerAuthentication {
    fn is_mfa(asserted: Option<Self>) -> bool {
        asserted == Some(Self::Mfa)
    }
}

/// A payment request with every field parsed.
struct Payment {
    txn: ClientId,
    qr_payload: String,
    customer_account_id: String,
    amount: Money,
    /// In the paying account's currency, which only the database knows: kept as the
    /// decimal text the wallet sent (checked to be one) and converted there.
    max_charged: Option<String>,
    quote_id: Option<String>,
    mfa: bool,
    /// In the order's currency; zero or more (whether the order takes it is the
    /// ledger's call: the order's tip policy and the shop's cap).
    tip_minor: Option<i64>,
    voucher_code: Option<String>,
}

impl Payment {
    fn parse(r: &PayRequest) -> ApiResult<Self> {
        let txn = wallet_txn_id(&r.wallet_txn_id)?;
        let customer_account_id = account_id_field("customer_account_id", &r.customer_account_id)?;
        let currency = currency_field("currency", &r.currency)?;
        let amount = money_field("amount", &r.amount, currency)?;
        let max_charged = r
            .max_charged
            .as_deref()
            .map(|m| qrgate_domain::money::parse_decimal(m).map(|d| d.to_string()))
            .transpose()
            .map_err(|e| ApiError::invalid("max_charged", e))?;
        let quote_id = r
            .quote_id
            .as_deref()
            .map(|q| {
                if ids::is_gateway_id(q) {
                    Ok(q.to_owned())
                } else {
                    Err(ApiError::invalid("quote_id", "is not a quote id"))
                }
            })
            .transpose()?;
        if r.use_points.is_some_and(|p| p < 0) {
            return Err(ApiError::invalid(
                "use_points",
                "must be a whole number of points, zero or more",
            ));
        }
        let qr_payload = qr_payload_field(&r.qr_payload)?;
        let tip_minor = r
            .tip
            .as_deref()
            .map(|t| qrgate_domain::money::parse_minor(t, currency))
            .transpose()
            .map_err(|e| ApiError::invalid("tip", e))?;
        if r.voucher_code.as_deref().is_some_and(|c| {
            c.is_empty()
                || c.len() > VOUCHER_CODE_CHARS_MAX
                || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }) {
            return Err(ApiError::invalid(
                "voucher_code",
                format!("must be 1 to {VOUCHER_CODE_CHARS_MAX} letters, digits or hyphens"),
            ));
        }
        Ok(Payment {
            txn,
            qr_payload,
            customer_account_id,
            amount,
            max_charged,
            quote_id,
            mfa: CustomerAuthentication::is_mfa(r.customer_authentication),
            tip_minor,
            voucher_code: r.voucher_code.clone(),
        })
    }
}

fn parse_payment(body: &[u8]) -> ApiResult<(Payment, PayRequest)> {
    let request: PayRequest = parse_json(body)?;
    Ok((Payment::parse(&request)?, request))
}

async fn pay(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let parsed = parse_payment(&post.body);
    let (payment, request) = match parsed {
        Ok(p) => p,
        Err(e) => return reject_malformed(&state, &post, e).await,
    };
    // The QR is only parsed here; whether we issued it is decided against the stored
    // payload inside pay_order, after the wallet_txn_id check. A static code's payment
    // makes its order there, under an id minted here.
    let (order_id, static_code_id) = match MerchantQr::parse(&payment.qr_payload)
        .ok()
        .filter(|qr| qr.gateway_guid() == state.settings.gateway_guid)
    {
        Some(MerchantQr::Dynamic(qr)) => (Some(qr.order_id), None),
        Some(MerchantQr::Static(qr)) => (Some(ids::mint("ord")), Some(qr.code_id)),
        None => (None, None),
    };
    let payment_id = ids::mint("pay");
    let shard_seed = i32::from(rand::random::<u16>());
    let settling = std::time::Instant::now();
    let row = call_with_retry(
        &state,
        "SELECT * FROM pay_order(ROW($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::numeric, $13, $14, $15, $16, $17, $18, $19, $20)::payment_request)",
        &[
            &post.call.wallet_id,
            &post.call.message_id,
            &post.message_sha256,
            &payment.txn.as_str(),
            &request_sha256("payment", &request),
            &payment_id,
            &order_id,
            &payment.qr_payload,
            &payment.customer_account_id,
            &payment.amount.minor(),
            &payment.amount.currency().code(),
            &payment.max_charged,
            &payment.quote_id,
            &request.use_points,
            &payment.mfa,
            &shard_seed,
            &state.settings.limits.timeline_entries_per_order_max,
            &static_code_id,
            &payment.tip_minor,
            &payment.voucher_code,
        ],
    )
    .await?;
    state
        .metrics
        .payment(row.get("outcome"), settling.elapsed());
    if row.get::<_, &str>("outcome") == "succeeded" {
        state
            .order_waiters
            .settled_with(row.get("order_id"), Some(order_settled_fields(&row)));
        if state.drop_payment_answer() {
            // A crash between the commit and the answer, staged: the wallet must retry.
            return Err(ApiError::unavailable(anyhow::anyhow!(
                "fault injected: payment {} committed, its answer dropped",
                row.get::<_, &str>("payment_id")
            )));
        }
    }
    answer(&row, payment_json)
}

/// Runs one ledger function in its own transaction, again (a bounded number of
/// times) when it lost a race to a concurrent request.
async fn call_with_retry(
    state: &AppState,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> ApiResult<Row> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(sql).await?;
    let mut attempt = 0;
    loop {
        match client.query_one(&stmt, params).await {
            Err(e) if is_retryable(&e) && attempt < state.settings.limits.db_retry_max => {
                attempt += 1;
                tracing::debug!(attempt, error = %e, "ledger call lost a race; retrying");
            }
            result => return Ok(result?),
        }
    }
}

/// Turns a `wallet_outcome` row into the response: `render` for success, else the
/// stored error with this request's id.
fn answer(row: &Row, render: impl FnOnce(&Row) -> Value) -> ApiResult<HttpResponse> {
    match crate::idempotency::outcome_error(row) {
        None => Ok(HttpResponse::Ok().json(render(row))),
        Some(error) => Err(error),
    }
}

/// The order's fields a successful payment set, as `orders::order_json` writes them
/// (`pay_order` sets `updated_at` to `paid_at`).
fn order_settled_fields(row: &Row) -> Value {
    let currency = Currency::parse(row.get("currency")).expect("stored currencies are known");
    let charged_currency =
        Currency::parse(row.get("charged_currency")).expect("stored currencies are known");
    let paid_at = timestamp(row.get("paid_at"));
    json!({
        "status": "paid",
        "updated_at": paid_at,
        "paid_at": paid_at,
        "payment_id": row.get::<_, &str>("payment_id"),
        // The order's discount is everything taken off: the campaign's and a voucher's.
        "discount": format_minor(
            row.get::<_, i64>("discount_minor") + row.get::<_, Option<i64>>("voucher_minor").unwrap_or(0),
            currency
        ),
        "charged": format_minor(row.get("charged_minor"), charged_currency),
        "charged_currency": charged_currency,
        "tip": format_minor(row.get("tip_minor"), currency),
    })
}

fn payment_json(row: &Row) -> Value {
    let currency = Currency::parse(row.get("currency")).expect("stored currencies are known");
    let charged_currency =
        Currency::parse(row.get("charged_currency")).expect("stored currencies are known");
    json!({
        "payment_id": row.get::<_, &str>("payment_id"),
        "order_id": row.get::<_, &str>("order_id"),
        "status": "succeeded",
        "amount": format_minor(row.get("amount_minor"), currency),
        "currency": currency,
        "discount": format_minor(row.get("discount_minor"), currency),
        "points_used": row.get::<_, i64>("points_used").to_string(),
        "charged": format_minor(row.get("charged_minor"), charged_currency),
        "charged_currency": charged_currency,
        "fee": format_minor(row.get("fee_minor"), currency),
        "tip": format_minor(row.get("tip_minor"), currency),
        "convenience_fee": format_minor(row.get("convenience_fee_minor"), currency),
        "voucher": format_minor(row.get::<_, Option<i64>>("voucher_minor").unwrap_or(0), currency),
        "points_earned": row.get::<_, i64>("points_earned").to_string(),
        "paid_at": timestamp(row.get("paid_at")),
    })
}

/// A signed GET: the signature covers the request target exactly as sent.
pub(crate) async fn signed_get(
    state: &AppState,
    req: &HttpRequest,
    wallet_id: &str,
) -> ApiResult<(WalletCall, deadpool_postgres::Object)> {
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or(req.path())
        .to_owned();
    let call = verify_wallet(state, req, wallet_id, target.as_bytes()).await?;
    let client = state.pool.get().await?;
    claim_message(&client, &call, &sha256(&[b"GET", target.as_bytes()]), true).await?;
    Ok((call, client))
}

async fn get_payment(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (wallet_id, txn) = path.into_inner();
    let (call, client) = signed_get(&state, &req, &wallet_id).await?;
    let row = client
        .query_opt(
            "SELECT a.* FROM wallet_txns t, LATERAL wallet_txn_answer(t.wallet_id, t.wallet_txn_id) a
             WHERE t.wallet_id = $1 AND t.wallet_txn_id = $2 AND t.kind = 'payment'",
            &[&call.wallet_id, &txn],
        )
        .await?
        .ok_or_else(|| ApiError::not_found("payment with that wallet_txn_id"))?;
    answer(&row, payment_json)
}

async fn get_account(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (wallet_id, account_id) = path.into_inner();
    let (call, client) = signed_get(&state, &req, &wallet_id).await?;
    let mut account = account_json(
        &client,
        &account_id,
        "a.kind = 'customer' AND a.wallet_id",
        &call.wallet_id,
    )
    .await?;
    // The customer's points account (this one, for a PTS account; null for a customer
    // who has never had one: opened before points accounts came with the customer).
    let points: Option<String> = client
        .query_one(
            "SELECT p.id FROM accounts a
             LEFT JOIN accounts p ON p.kind = 'customer' AND p.wallet_id = a.wallet_id
                 AND p.customer_reference = a.customer_reference AND p.currency = 'PTS'
             WHERE a.id = $1",
            &[&account_id],
        )
        .await?
        .get(0);
    account["points_account_id"] = json!(points);
    Ok(HttpResponse::Ok().json(account))
}

async fn get_statement(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    query: web::Query<crate::api::statements::StatementQuery>,
) -> ApiResult<HttpResponse> {
    let (wallet_id, account_id) = path.into_inner();
    let (call, client) = signed_get(&state, &req, &wallet_id).await?;
    drop(client);
    let owner = "a.kind = 'customer' AND a.wallet_id";
    crate::api::statements::respond(
        &state,
        &account_id,
        owner,
        &call.wallet_id,
        query.into_inner(),
    )
    .await
}

/// How long a quote's charge holds.
const QUOTE_TTL_SECONDS: i32 = 60;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct QuoteRequest {
    qr_payload: String,
    customer_account_id: String,
    use_points: Option<i64>,
}

fn parse_quote(body: &[u8]) -> ApiResult<(String, String, Option<i64>)> {
    let r: QuoteRequest = parse_json(body)?;
    let qr_payload = qr_payload_field(&r.qr_payload)?;
    let account = account_id_field("customer_account_id", &r.customer_account_id)?;
    if r.use_points.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid(
            "use_points",
            "must be a whole number of points, zero or more",
        ));
    }
    Ok((qr_payload, account, r.use_points))
}

/// What the customer would be charged for a scanned QR, locked for a minute. Reserves
/// nothing: the payment checks everything again (and pays at the quote's rate).
async fn quote(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let post = signed_post(&state, &req, payload, &path).await?;
    let parsed = parse_quote(&post.body);
    let (qr_payload, account, use_points) = match parsed {
        Ok(p) => p,
        Err(e) => return reject_malformed(&state, &post, e).await,
    };
    let order_id = OrderQr::parse(&qr_payload)
        .ok()
        .filter(|qr| qr.gateway_guid == state.settings.gateway_guid)
        .map(|qr| qr.order_id);
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    if let Some(stored) = claim_message(&tx, &post.call, &post.message_sha256, false).await? {
        return Ok(stored);
    }
    let row = tx
        .query_one(
            "SELECT *, trim_scale(rate)::text AS rate_text FROM quote_order($1, $2, $3, $4, $5, $6, $7)",
            &[&post.call.wallet_id, &ids::mint("qt"), &order_id.unwrap_or_default(), &qr_payload, &account, &QUOTE_TTL_SECONDS, &use_points],
        )
        .await?;
    if let Some(error) = crate::idempotency::outcome_error(&row) {
        tx.commit().await?; // the webhook-id stays spent
        return Err(error);
    }
    let currency = Currency::parse(row.get("currency")).map_err(ApiError::internal_from)?;
    let charged_currency =
        Currency::parse(row.get("charged_currency")).map_err(ApiError::internal_from)?;
    let body = json!({
        "quote_id": row.get::<_, &str>("quote_id"),
        "order_id": row.get::<_, &str>("order_id"),
        "amount": format_minor(row.get("amount_minor"), currency),
        "currency": currency,
        "discount": format_minor(row.get("discount_minor"), currency),
        "points_used": row.get::<_, i64>("points_used").to_string(),
        "charged": format_minor(row.get("charged_minor"), charged_currency),
        "charged_currency": charged_currency,
        "rate": row.get::<_, Option<String>>("rate_text"),
        "spread_bps": row.get::<_, Option<i32>>("spread_bps"),
        "expires_at": timestamp(row.get("expires_at")),
    });
    tx.execute(
        "UPDATE wallet_messages SET http_status = 200, response = $3 WHERE wallet_id = $1 AND message_id = $2",
        &[&post.call.wallet_id, &post.call.message_id, &body],
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(body))
}
