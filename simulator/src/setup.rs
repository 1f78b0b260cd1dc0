//! Sets up a simulated world through the admin and wallet APIs: merchants with
//! cashier keys, wallets, funded customers, and customers with nothing.

use crate::wallet::WalletClient;
use anyhow::{anyhow, bail};
use futures_util::{stream, StreamExt, TryStreamExt};
use merchant_sdk::{Client, NewReward, RetryPolicy};
use qrgate_domain::signing::SigningSecret;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Setup requests in flight at once.
const SETUP_CONCURRENCY: usize = 32;
/// Each funded customer starts with this much CNY: hundreds of payments of up to
/// 200.00; 100,000 customers over two wallets stay within each funding limit.
pub const CUSTOMER_BALANCE: &str = "50000.00";
/// Wallets share the customers (a realistic few providers).
const WALLETS: usize = 2;

/// Attempts of one admin call before its failure is reported.
const ADMIN_ATTEMPTS_MAX: u32 = 3;

enum Failure {
    Transient(anyhow::Error),
    Final(anyhow::Error),
}

/// The operator's side of the API.
#[derive(Clone)]
pub struct Admin {
    pub base_url: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    /// The HTTP client it calls with, for calls made with other credentials.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn new(base_url: &str, token: &str, http: reqwest::Client) -> Self {
        Admin {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        }
    }

    /// One admin call. A transient failure (no answer, 503, 429) is tried again, at
    /// most `ADMIN_ATTEMPTS_MAX` times in all; any other error answer is final.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut attempt = 1;
        loop {
            match self.request_once(method.clone(), path, body).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Transient(e)) if attempt < ADMIN_ATTEMPTS_MAX => {
                    eprintln!("simulator: {e:#}; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                        .await;
                    attempt += 1;
                }
                Err(Failure::Transient(e) | Failure::Final(e)) => return Err(e),
            }
        }
    }

    async fn request_once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Transient(anyhow!(e).context(format!("calling {path}"))))?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| {
            Failure::Transient(anyhow!(e).context(format!("reading the answer of {path}")))
        })?;
        match status {
            s if s.is_success() => Ok(answer),
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => Err(
                Failure::Transient(anyhow!("{path} answered {status}: {answer}")),
            ),
            _ => Err(Failure::Final(anyhow!(
                "{path} answered {status}: {answer}"
            ))),
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }
}

/// A merchant the simulator charges for.
pub struct Merchant {
    pub id: String,
    pub account_id: String,
    pub cashier: Client,
    /// The shop's printed code, for the static-code scenario.
    pub static_code: merchant_sdk::StaticCode,
    /// The shop's own voucher (one point for `VOUCHER_VALUE`), for the voucher scenario.
    /// The shop lists it (a manager key), not the platform: every run makes new shops, so
    /// runs against one gateway never fill the platform's catalogue (1,000 live rewards;
    /// `bench/run`'s ladder once stopped there after twenty runs).
    pub voucher_reward_id: String,
}

/// What the voucher scenario's reward takes off a payment.
pub const VOUCHER_VALUE: &str = "0.50";

/// A customer account and the wallet it belongs to.
#[derive(Clone, Debug)]
pub struct Customer {
    pub wallet: usize,
    pub account_id: String,
}

pub struct World {
    pub merchants: Vec<Merchant>,
    pub wallets: Vec<WalletClient>,
    pub customers: Vec<Customer>,
    /// One empty account per wallet, for the insufficient-funds scenario.
    pub broke: Vec<Customer>,
}

/// Creates `merchants` merchants and `customers` funded customers.
pub async fn build(
    admin: &Admin,
    http: &reqwest::Client,
    merchants: usize,
    customers: usize,
) -> anyhow::Result<World> {
    let merchants: Vec<Merchant> = stream::iter(0..merchants)
        .map(|i| create_merchant(admin, i))
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut wallets = Vec::new();
    for i in 0..WALLETS {
        wallets.push(create_wallet(admin, http, i).await?);
    }
    let wallets_ref = &wallets;
    let customers: Vec<Customer> = stream::iter(0..customers)
        .map(|i| async move {
            let wallet = i % WALLETS;
            let account_id =
                open_customer(&wallets_ref[wallet], &format!("sim-customer-{i}")).await?;
            top_up(&wallets_ref[wallet], &account_id, CUSTOMER_BALANCE).await?;
            Ok::<_, anyhow::Error>(Customer { wallet, account_id })
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    let mut broke = Vec::new();
    for (wallet, client) in wallets.iter().enumerate() {
        broke.push(Customer {
            wallet,
            account_id: open_customer(client, "sim-broke").await?,
        });
    }
    Ok(World {
        merchants,
        wallets,
        customers,
        broke,
    })
}

async fn create_merchant(admin: &Admin, i: usize) -> anyhow::Result<Merchant> {
    let merchant = admin
        .post(
            "/v1/admin/merchants",
            &json!({"name": format!("Sim Shop {i}"), "city": "Shanghai", "country": "CN", "mcc": "5812", "currency": "CNY"}),
        )
        .await?;
    let id = text(&merchant, "id")?;
    let key = admin
        .post(
            &format!("/v1/admin/merchants/{id}/api-keys"),
            // `refunds` too: the refund scenario refunds what it sold.
            &json!({"scopes": ["orders", "refunds"]}),
        )
        .await?;
    // The load generator counts every answer itself: no silent retries.
    let cashier = Client::builder(&admin.base_url, text(&key, "key")?)
        .retry_policy(RetryPolicy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let static_code = cashier.create_static_code("Counter", None).await?;
    let manager_key = admin
        .post(
            &format!("/v1/admin/merchants/{id}/api-keys"),
            &json!({"scopes": ["keys"]}),
        )
        .await?;
    let manager = Client::builder(&admin.base_url, text(&manager_key, "key")?)
        .retry_policy(RetryPolicy::none())
        .build()?;
    let reward = manager
        .create_reward(&NewReward::Voucher {
            name: "Sim voucher".into(),
            points_cost: 1,
            value: VOUCHER_VALUE.parse().expect("a decimal"),
            valid_days: None,
            stock: None,
        })
        .await?;
    Ok(Merchant {
        voucher_reward_id: reward.id,
        account_id: text(&merchant, "account_id")?,
        id,
        cashier,
        static_code,
    })
}

async fn create_wallet(
    admin: &Admin,
    http: &reqwest::Client,
    i: usize,
) -> anyhow::Result<WalletClient> {
    let wallet = admin
        .post(
            "/v1/admin/wallets",
            &json!({"name": format!("Sim Wallet {i}")}),
        )
        .await?;
    let id = text(&wallet, "id")?;
    admin
        .post(
            &format!("/v1/admin/wallets/{id}/funding-limits"),
            &json!({"currency": "CNY", "limit": "9999999999.99"}),
        )
        .await?;
    let secret = SigningSecret::parse(&text(&wallet, "secret")?)
        .map_err(|e| anyhow!("wallet secret: {e}"))?;
    Ok(WalletClient::new(
        &admin.base_url,
        &id,
        secret,
        http.clone(),
    ))
}

pub async fn open_customer(wallet: &WalletClient, reference: &str) -> anyhow::Result<String> {
    let response = wallet
        .post(
            "customers",
            &json!({"customer_reference": reference, "currency": "CNY"}),
        )
        .await?;
    let body = expect_status(response, StatusCode::CREATED).await?;
    text(&body, "account_id")
}

pub async fn top_up(wallet: &WalletClient, account_id: &str, amount: &str) -> anyhow::Result<()> {
    let body = json!({"wallet_txn_id": qrgate_domain::ids::mint("stu"), "account_id": account_id, "amount": amount, "currency": "CNY"});
    expect_status(wallet.post("top-ups", &body).await?, StatusCode::OK).await?;
    Ok(())
}

pub async fn expect_status(
    response: reqwest::Response,
    expected: StatusCode,
) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status != expected {
        bail!("expected {expected}, got {status}: {body}");
    }
    Ok(body)
}

pub fn text(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("answer has no `{field}`: {v}"))
}
