//! The merchant API client.

use crate::{
    types::{
        AccountWire, CheckoutSessionWire, OrderWire, PayoutWire, RefundWire, SettlementReportWire,
        StatementWire,
    },
    Account, CheckoutSession, Currency, Error, ErrorKind, ListOrders, NewCheckoutSession, NewOrder,
    NewReward, Order, OrderEvent, OrderStatus, Page, Payout, Refund, RetryPolicy, Reward,
    SettlementReport, StatementLine, StaticCode, TipPolicy, TipSettings, WebhookDelivery,
};
use reqwest::{header::RETRY_AFTER, Method, Response, StatusCode};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The longest `wait_seconds` the gateway accepts in one long-poll.
const LONG_POLL_SECONDS_MAX: u64 = 30;

/// Builds a [`Client`]; every setting has a documented default.
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// Whole-request timeout for ordinary calls (default 10 s; long-polls add their wait).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// TCP connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// When to retry (default [`RetryPolicy::default`]).
    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The client; refuses a URL that is not http(s) or an empty key.
    pub fn build(self) -> Result<Client, Error> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(Error::InvalidInput(format!(
                "gateway URL must start with http:// or https://, got {:?}",
                self.base_url
            )));
        }
        if self.api_key.is_empty() {
            return Err(Error::InvalidInput("an API key is required".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .build()
            .map_err(|e| Error::Transport(e.to_string()))?;
        Ok(Client {
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            api_key: self.api_key,
            timeout: self.timeout,
            retry: self.retry,
            http,
        })
    }
}

/// A merchant's connection to the gateway, authenticated by one API key. Cheap to
/// clone; share one per process.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    api_key: String,
    timeout: Duration,
    retry: RetryPolicy,
    http: reqwest::Client,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

/// A fresh Idempotency-Key for one logical call.
fn idempotency_key() -> String {
    format!("sdk_{}", qrgate_domain::ids::random_base32(26))
}

impl Client {
    /// `base_url` such as `https://gateway.example`; `api_key` as issued (`key_….secret`).
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }

    /// Creates an order and returns it with its QR payload.
    pub async fn create_order(&self, order: &NewOrder) -> Result<Order, Error> {
        let body = order.body()?;
        let wire: OrderWire = self
            .call(Method::POST, "/v1/orders", Some(body), self.timeout)
            .await?;
        wire.try_into()
    }

    /// Opens a checkout session: an order with a hosted payment page (`url`) to send a
    /// web shop's customer to. Needs the `orders` scope.
    pub async fn create_checkout_session(
        &self,
        session: &NewCheckoutSession,
    ) -> Result<CheckoutSession, Error> {
        let body = session.body()?;
        let wire: CheckoutSessionWire = self
            .call(
                Method::POST,
                "/v1/checkout-sessions",
                Some(body),
                self.timeout,
            )
            .await?;
        wire.try_into()
    }

    /// A checkout session as it is now (without its page address).
    pub async fn checkout_session(&self, session_id: &str) -> Result<CheckoutSession, Error> {
        let path = format!("/v1/checkout-sessions/{}", encode_segment(session_id));
        let wire: CheckoutSessionWire = self.call(Method::GET, &path, None, self.timeout).await?;
        wire.try_into()
    }

    /// Issues a static code to print for a counter or till (`name`, at most 25
    /// printable ASCII characters): customers scan it and enter the amount in their
    /// wallet. `currency` defaults to the merchant's (the only one it may be).
    pub async fn create_static_code(
        &self,
        name: &str,
        currency: Option<Currency>,
    ) -> Result<StaticCode, Error> {
        let body = serde_json::json!({"name": name, "currency": currency.map(|c| c.code())});
        self.call(Method::POST, "/v1/static-codes", Some(body), self.timeout)
            .await
    }

    /// Lists a reward customers can redeem points for (a manager key: `keys`).
    pub async fn create_reward(&self, reward: &NewReward) -> Result<Reward, Error> {
        self.call(
            Method::POST,
            "/v1/rewards",
            Some(reward.body()),
            self.timeout,
        )
        .await
    }

    /// The shop's rewards, newest first (the first page).
    pub async fn rewards(&self) -> Result<Vec<Reward>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<Reward>,
        }
        let wire: Wire = self
            .call(Method::GET, "/v1/rewards", None, self.timeout)
            .await?;
        Ok(wire.items)
    }

    /// Ends a reward: no more redemptions (vouchers issued stay good until they expire).
    pub async fn end_reward(&self, reward_id: &str) -> Result<Reward, Error> {
        let path = format!("/v1/rewards/{}/end", encode_segment(reward_id));
        self.call(
            Method::POST,
            &path,
            Some(Value::Object(Default::default())),
            self.timeout,
        )
        .await
    }

    /// The shop's static codes, newest first (the first page; revoked ones on request).
    pub async fn static_codes(&self, include_revoked: bool) -> Result<Vec<StaticCode>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<StaticCode>,
        }
        let path = format!("/v1/static-codes?include_revoked={include_revoked}");
        let wire: Wire = self.call(Method::GET, &path, None, self.timeout).await?;
        Ok(wire.items)
    }

    /// Revokes a static code: payments through it are refused from now on.
    pub async fn revoke_static_code(&self, code_id: &str) -> Result<StaticCode, Error> {
        let path = format!("/v1/static-codes/{}/revoke", encode_segment(code_id));
        self.call(
            Method::POST,
            &path,
            Some(Value::Object(Default::default())),
            self.timeout,
        )
        .await
    }

    /// The order as it is now.
    pub async fn get_order(&self, order_id: &str) -> Result<Order, Error> {
        let wire: OrderWire = self
            .call(Method::GET, &order_path(order_id, ""), None, self.timeout)
            .await?;
        wire.try_into()
    }

    /// Waits until the order leaves `pending` or `timeout` passes, with the gateway's
    /// long-poll (no busy polling), and returns the order as it then is.
    pub async fn wait_for_payment(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<Order, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = left.as_secs().min(LONG_POLL_SECONDS_MAX);
            let path = format!("{}?wait_seconds={wait}", order_path(order_id, ""));
            let wire: OrderWire = self
                .call(
                    Method::GET,
                    &path,
                    None,
                    self.timeout + Duration::from_secs(wait),
                )
                .await?;
            let order: Order = wire.try_into()?;
            if order.status != OrderStatus::Pending || wait == 0 {
                return Ok(order);
            }
        }
    }

    /// Makes a pending order unpayable. Closing a closed or expired order returns it.
    pub async fn close_order(&self, order_id: &str) -> Result<Order, Error> {
        let wire: OrderWire = self
            .call(
                Method::POST,
                &order_path(order_id, "/close"),
                Some(Value::Object(Default::default())),
                self.timeout,
            )
            .await?;
        wire.try_into()
    }

    /// Refunds `amount` (in the order's currency) of a paid order; needs the `refunds`
    /// scope. `refund_reference` makes it safe to repeat: the same reference and amount
    /// give the same refund.
    pub async fn refund(
        &self,
        order_id: &str,
        amount: Decimal,
        refund_reference: &str,
        reason: Option<&str>,
    ) -> Result<Refund, Error> {
        let body = serde_json::json!({
            "amount": amount.normalize().to_string(),
            "refund_reference": refund_reference,
            "reason": reason,
        });
        let wire: RefundWire = self
            .call(
                Method::POST,
                &order_path(order_id, "/refunds"),
                Some(body),
                self.timeout,
            )
            .await?;
        wire.try_into()
    }

    /// Pays `amount` out of the settlement account to a customer account the operator
    /// allowed for this merchant; needs the `refunds` scope. `payout_reference` makes it
    /// safe to repeat.
    pub async fn payout(
        &self,
        to_account_id: &str,
        amount: Decimal,
        currency: crate::Currency,
        payout_reference: &str,
    ) -> Result<Payout, Error> {
        let body = serde_json::json!({
            "to_account_id": to_account_id,
            "amount": amount.normalize().to_string(),
            "currency": currency,
            "payout_reference": payout_reference,
        });
        let wire: PayoutWire = self
            .call(Method::POST, "/v1/payouts", Some(body), self.timeout)
            .await?;
        wire.try_into()
    }

    /// The merchant's payouts, newest first, a page at a time (`cursor` from the last
    /// page; needs the `refunds` scope).
    pub async fn payouts(&self, cursor: Option<&str>) -> Result<Page<Payout>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<PayoutWire>,
            next_cursor: Option<String>,
        }
        let path = match cursor {
            Some(c) => format!("/v1/payouts?cursor={}", encode_segment(c)),
            None => "/v1/payouts".to_owned(),
        };
        let wire: Wire = self.call(Method::GET, &path, None, self.timeout).await?;
        Ok(Page {
            items: wire
                .items
                .into_iter()
                .map(Payout::try_from)
                .collect::<Result<_, _>>()?,
            next_cursor: wire.next_cursor,
        })
    }

    /// An order's refunds, oldest first (its `refunded` is their total).
    pub async fn order_refunds(&self, order_id: &str) -> Result<Vec<Refund>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<RefundWire>,
        }
        let wire: Wire = self
            .call(
                Method::GET,
                &order_path(order_id, "/refunds"),
                None,
                self.timeout,
            )
            .await?;
        wire.items.into_iter().map(Refund::try_from).collect()
    }

    /// One page of an account's statement, oldest first, with running balances (needs
    /// the `reports` scope). Pass the returned cursor back for the next page.
    pub async fn statement(
        &self,
        account_id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<StatementLine>, Error> {
        let mut query = Vec::new();
        if let Some(c) = cursor {
            query.push(format!("cursor={c}"));
        }
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        let path = format!(
            "/v1/accounts/{}/statement?{}",
            encode_segment(account_id),
            query.join("&")
        );
        let wire: StatementWire = self.call(Method::GET, &path, None, self.timeout).await?;
        let currency = wire.currency;
        Ok(Page {
            items: wire
                .items
                .into_iter()
                .map(|l| l.parse(currency))
                .collect::<Result<_, _>>()?,
            next_cursor: wire.next_cursor,
        })
    }

    /// The daily settlement report for `date` in the merchant's time zone (needs `reports`).
    pub async fn settlement_report(
        &self,
        date: chrono::NaiveDate,
    ) -> Result<SettlementReport, Error> {
        let wire: SettlementReportWire = self
            .call(
                Method::GET,
                &format!("/v1/reports/settlement?date={date}"),
                None,
                self.timeout,
            )
            .await?;
        wire.try_into()
    }

    /// Recent webhook events and their delivery state (needs `reports`).
    pub async fn webhook_deliveries(&self) -> Result<Vec<WebhookDelivery>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<WebhookDelivery>,
        }
        let wire: Wire = self
            .call(Method::GET, "/v1/webhooks/deliveries", None, self.timeout)
            .await?;
        Ok(wire.items)
    }

    /// Queues a webhook event for delivery again now (needs `reports`).
    pub async fn retry_webhook(&self, event_id: &str) -> Result<(), Error> {
        let path = format!("/v1/webhooks/deliveries/{}/retry", encode_segment(event_id));
        let _: Value = self
            .call(
                Method::POST,
                &path,
                Some(Value::Object(Default::default())),
                self.timeout,
            )
            .await?;
        Ok(())
    }

    /// Starts using a new webhook signing secret and returns it; the old one keeps
    /// signing alongside for a day (needs `reports`).
    pub async fn rotate_webhook_secret(&self) -> Result<String, Error> {
        let answer: Value = self
            .call(
                Method::POST,
                "/v1/webhooks/secret",
                Some(Value::Object(Default::default())),
                self.timeout,
            )
            .await?;
        answer["webhook_secret"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::UnexpectedResponse("no webhook_secret".into()))
    }

    /// Sets the shop's tipping: the policy an order takes when it names none, and
    /// (when given) the largest tip it accepts, in percent of an order's amount.
    /// Needs a manager key (`keys`).
    pub async fn set_tip_policy(
        &self,
        policy: TipPolicy,
        tip_max_percent: Option<u8>,
    ) -> Result<TipSettings, Error> {
        let mut body = serde_json::json!({ "tip_max_percent": tip_max_percent });
        for (field, value) in crate::types::tip_policy_fields(policy) {
            body[field] = value;
        }
        let answer: Value = self
            .call(Method::PUT, "/v1/me/tip-policy", Some(body), self.timeout)
            .await?;
        let tip_max_percent = answer["tip_max_percent"]
            .as_u64()
            .and_then(|p| u8::try_from(p).ok())
            .ok_or_else(|| Error::UnexpectedResponse("no tip_max_percent".into()))?;
        Ok(TipSettings {
            policy,
            tip_max_percent,
        })
    }

    /// One page of orders, newest first.
    pub async fn list_orders(&self, filter: &ListOrders) -> Result<Page<Order>, Error> {
        let mut query = Vec::new();
        if let Some(s) = filter.status {
            query.push(format!("status={s}"));
        }
        let time = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        if let Some(t) = filter.from {
            query.push(format!("from={}", time(t)));
        }
        if let Some(t) = filter.to {
            query.push(format!("to={}", time(t)));
        }
        if let Some(c) = &filter.cursor {
            query.push(format!("cursor={c}"));
        }
        if let Some(l) = filter.limit {
            query.push(format!("limit={l}"));
        }
        let path = if query.is_empty() {
            "/v1/orders".to_owned()
        } else {
            format!("/v1/orders?{}", query.join("&"))
        };
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<OrderWire>,
            next_cursor: Option<String>,
        }
        let wire: Wire = self.call(Method::GET, &path, None, self.timeout).await?;
        Ok(Page {
            items: wire
                .items
                .into_iter()
                .map(Order::try_from)
                .collect::<Result<_, _>>()?,
            next_cursor: wire.next_cursor,
        })
    }

    /// The order's QR code as SVG.
    pub async fn order_qr_svg(&self, order_id: &str) -> Result<String, Error> {
        let response = self
            .send(
                Method::GET,
                &order_path(order_id, "/qr.svg"),
                None,
                self.timeout,
            )
            .await?;
        response
            .text()
            .await
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// The order's QR code as PNG bytes.
    pub async fn order_qr_png(&self, order_id: &str) -> Result<Vec<u8>, Error> {
        let response = self
            .send(
                Method::GET,
                &order_path(order_id, "/qr.png"),
                None,
                self.timeout,
            )
            .await?;
        Ok(response
            .bytes()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?
            .to_vec())
    }

    /// The order's timeline, oldest first.
    pub async fn order_events(&self, order_id: &str) -> Result<Vec<OrderEvent>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<OrderEvent>,
        }
        let wire: Wire = self
            .call(
                Method::GET,
                &order_path(order_id, "/events"),
                None,
                self.timeout,
            )
            .await?;
        Ok(wire.items)
    }

    /// The merchant's own accounts (needs the `reports` scope).
    pub async fn accounts(&self) -> Result<Vec<Account>, Error> {
        #[derive(serde::Deserialize)]
        struct Wire {
            items: Vec<AccountWire>,
        }
        let wire: Wire = self
            .call(Method::GET, "/v1/accounts", None, self.timeout)
            .await?;
        wire.items.into_iter().map(Account::try_from).collect()
    }

    /// One of the merchant's accounts (needs the `reports` scope).
    pub async fn account(&self, account_id: &str) -> Result<Account, Error> {
        let path = format!("/v1/accounts/{}", encode_segment(account_id));
        let wire: AccountWire = self.call(Method::GET, &path, None, self.timeout).await?;
        wire.try_into()
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<T, Error> {
        let response = self.send(method, path, body, timeout).await?;
        let text = response
            .text()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::UnexpectedResponse(format!("{e} in {}", truncate(&text))))
    }

    /// Sends with retries. A POST carries one Idempotency-Key across all its attempts.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let key = (method == Method::POST).then(idempotency_key);
        let url = format!("{}{}", self.base_url, path);
        let mut retry = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.api_key)
                .timeout(timeout);
            if let Some(key) = &key {
                request = request.header("Idempotency-Key", key);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let last = retry + 1 >= self.retry.attempts_max;
            match request.send().await {
                Err(_) if !last => tokio::time::sleep(self.retry.backoff(retry)).await,
                Err(e) => return Err(Error::Transport(e.to_string())),
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let error = api_error(response).await;
                    let code = error.kind().map(|k| k.code().to_owned());
                    let wait = retry_after.unwrap_or_else(|| self.retry.backoff(retry));
                    if last
                        || !RetryPolicy::is_retryable_status(status.as_u16(), code.as_deref())
                        || wait > self.retry.retry_after_max
                    {
                        return Err(error);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
            retry += 1;
        }
    }
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The gateway's error body as an [`Error`].
async fn api_error(response: Response) -> Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let error = &body["error"];
    match error["code"].as_str() {
        Some(code) => Error::Api {
            kind: ErrorKind::from_code(code),
            status: status.as_u16(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            request_id: error["request_id"].as_str().unwrap_or("-").to_owned(),
        },
        None if status == StatusCode::NOT_FOUND => Error::Api {
            kind: ErrorKind::NotFound,
            status: 404,
            message: "not found".into(),
            request_id: "-".into(),
        },
        None => Error::UnexpectedResponse(format!("HTTP {status}: {}", truncate(&text))),
    }
}

fn order_path(order_id: &str, suffix: &str) -> String {
    format!("/v1/orders/{}{suffix}", encode_segment(order_id))
}

/// Ids are `[A-Za-z0-9_]`; anything else is percent-encoded so it cannot change the path.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}
