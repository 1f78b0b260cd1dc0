//! The merchant API's objects, with money as `Decimal` + [`Currency`].

use crate::Error;
use chrono::{DateTime, Utc};
use qrgate_domain::{tips::TipPolicy, Currency, Money};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::{fmt, str::FromStr};

/// Where an order is in its life: `pending` → `paid` | `expired` | `closed`;
/// `paid` → `partially_refunded` → `refunded`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Waiting to be paid.
    Pending,
    /// Paid in full.
    Paid,
    /// Not paid before `expires_at`.
    Expired,
    /// Closed by the merchant before it was paid.
    Closed,
    /// Paid, and part of it refunded.
    PartiallyRefunded,
    /// Paid, and all of it refunded.
    Refunded,
}

impl OrderStatus {
    /// The wire name (`pending`, `paid`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Expired => "expired",
            OrderStatus::Closed => "closed",
            OrderStatus::PartiallyRefunded => "partially_refunded",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Whether the order was paid (refunded or not).
    pub fn is_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded
        )
    }
}

impl FromStr for OrderStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Expired,
            OrderStatus::Closed,
            OrderStatus::PartiallyRefunded,
            OrderStatus::Refunded,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
        .ok_or_else(|| Error::InvalidInput(format!("unknown order status `{s}`")))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order as the gateway reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// `ord_…`.
    pub id: String,
    /// Where the order is in its life.
    pub status: OrderStatus,
    /// What the customer is asked to pay, at the currency's scale.
    pub amount: Decimal,
    /// The merchant's currency.
    pub currency: Currency,
    /// The shop's reference for the bill.
    pub merchant_reference: String,
    /// What is being paid for.
    pub description: Option<String>,
    /// The till that made the order.
    pub terminal_id: Option<String>,
    /// The EMV payload to show as a QR code.
    pub qr_payload: String,
    /// When the code stops being payable.
    pub expires_at: DateTime<Utc>,
    /// When the order was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed (orders webhook events).
    pub updated_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// The payment that settled it.
    pub payment_id: Option<String>,
    /// Once paid: the campaign discount, in the order's currency.
    pub discount: Option<Decimal>,
    /// Once paid: what the customer's account was charged, and in which currency.
    pub charged: Option<(Decimal, Currency)>,
    /// The API key (staff key) that made the order.
    pub created_by_key_id: Option<String>,
    /// The static code the customer scanned, when the payment made the order.
    pub static_code_id: Option<String>,
    /// Refunded so far, in the order's currency.
    pub refunded: Decimal,
    /// What the customer may or must add (EMV tags 55–57).
    pub tip_policy: TipPolicy,
    /// The convenience fee charged on top of the amount (fixed or percentage orders).
    pub convenience_fee: Option<Decimal>,
    /// Once paid: the tip the customer added.
    pub tip: Option<Decimal>,
}

/// Parses a wire amount in `currency` into a `Decimal` at the currency's scale.
fn decimal(amount: &str, currency: Currency) -> Result<Decimal, Error> {
    Money::parse(amount, currency)
        .map(Money::to_decimal)
        .map_err(|e| Error::UnexpectedResponse(format!("amount {amount:?}: {e}")))
}

fn status(s: &str) -> Result<OrderStatus, Error> {
    s.parse()
        .map_err(|_| Error::UnexpectedResponse(format!("order status {s:?}")))
}

#[derive(Deserialize)]
pub(crate) struct OrderWire {
    id: String,
    status: String,
    amount: String,
    currency: Currency,
    merchant_reference: String,
    description: Option<String>,
    terminal_id: Option<String>,
    qr_payload: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    payment_id: Option<String>,
    #[serde(default)]
    discount: Option<String>,
    #[serde(default)]
    charged: Option<String>,
    #[serde(default)]
    charged_currency: Option<Currency>,
    #[serde(default)]
    created_by_key_id: Option<String>,
    #[serde(default)]
    static_code_id: Option<String>,
    #[serde(default)]
    refunded: Option<String>,
    #[serde(default)]
    tip_policy: Option<String>,
    #[serde(default)]
    convenience_fee: Option<String>,
    #[serde(default)]
    convenience_fee_percent: Option<String>,
    #[serde(default)]
    tip: Option<String>,
}

impl TryFrom<OrderWire> for Order {
    type Error = Error;
    fn try_from(w: OrderWire) -> Result<Self, Error> {
        let tip_policy = order_tip_policy(&w)?;
        let optional = |a: Option<&str>| a.map(|a| signed_decimal(a, w.currency)).transpose();
        Ok(Order {
            tip_policy,
            convenience_fee: optional(w.convenience_fee.as_deref())?,
            tip: optional(w.tip.as_deref())?,
            status: status(&w.status)?,
            amount: decimal(&w.amount, w.currency)?,
            id: w.id,
            currency: w.currency,
            merchant_reference: w.merchant_reference,
            description: w.description,
            terminal_id: w.terminal_id,
            qr_payload: w.qr_payload,
            expires_at: w.expires_at,
            created_at: w.created_at,
            updated_at: w.updated_at,
            paid_at: w.paid_at,
            payment_id: w.payment_id,
            discount: w
                .discount
                .as_deref()
                .map(|d| signed_decimal(d, w.currency))
                .transpose()?,
            charged: match (w.charged.as_deref(), w.charged_currency) {
                (Some(c), Some(currency)) => Some((signed_decimal(c, currency)?, currency)),
                _ => None,
            },
            created_by_key_id: w.created_by_key_id,
            static_code_id: w.static_code_id,
            refunded: match w.refunded.as_deref() {
                Some(r) => signed_decimal(r, w.currency)?,
                None => Decimal::ZERO,
            },
        })
    }
}

/// An order's tip policy as the gateway states it (a gateway older than tips: none).
fn order_tip_policy(w: &OrderWire) -> Result<TipPolicy, Error> {
    let bad = |e: String| Error::UnexpectedResponse(format!("tip policy: {e}"));
    let policy = w.tip_policy.as_deref().unwrap_or("none");
    // A percentage order shows both its fee and its percentage; the policy is the percentage.
    let fee = (policy == "fixed_fee")
        .then_some(w.convenience_fee.as_deref())
        .flatten();
    TipPolicy::parse(
        policy,
        fee,
        w.convenience_fee_percent.as_deref(),
        w.currency,
    )
    .map_err(|e| bad(e.to_string()))
}

/// What a cashier asks for. Checked locally (amount scale, lengths) before sending.
#[derive(Clone, Debug)]
pub struct NewOrder {
    /// What to charge; at most the currency's decimal places.
    pub amount: Decimal,
    /// The merchant's own currency.
    pub currency: Currency,
    /// 1–25 printable ASCII characters, unique among the merchant's live orders.
    pub merchant_reference: String,
    /// What is being paid for (≤ 500 characters).
    pub description: Option<String>,
    /// The till (1–25 printable ASCII), printed in the QR's additional data.
    pub terminal_id: Option<String>,
    /// 30..86400; the gateway's default is 300.
    pub expires_in_seconds: Option<u32>,
    /// A tip prompt or a convenience fee for this order; `None`: the shop's default.
    pub tip_policy: Option<TipPolicy>,
}

impl NewOrder {
    /// An order for `amount` with the gateway's defaults for everything optional.
    pub fn new(amount: Decimal, currency: Currency, merchant_reference: impl Into<String>) -> Self {
        NewOrder {
            amount,
            currency,
            merchant_reference: merchant_reference.into(),
            description: None,
            terminal_id: None,
            expires_in_seconds: None,
            tip_policy: None,
        }
    }

    /// The request body, amount in canonical form. Refuses amounts the currency
    /// cannot hold (too many decimals, zero, negative, too long).
    pub(crate) fn body(&self) -> Result<serde_json::Value, Error> {
        let text = self.amount.normalize().to_string();
        let money = Money::parse(&text, self.currency)
            .map_err(|e| Error::InvalidInput(format!("amount {text}: {e}")))?;
        let mut body = serde_json::json!({
            "amount": money.to_string(),
            "currency": self.currency,
            "merchant_reference": self.merchant_reference,
            "description": self.description,
            "terminal_id": self.terminal_id,
            "expires_in_seconds": self.expires_in_seconds,
        });
        if let Some(policy) = self.tip_policy {
            for (field, value) in tip_policy_fields(policy) {
                body[field] = value;
            }
        }
        Ok(body)
    }
}

/// A tip policy as the API's fields: `tip_policy` and its fee, when it has one.
pub(crate) fn tip_policy_fields(policy: TipPolicy) -> Vec<(&'static str, serde_json::Value)> {
    let mut fields = vec![("tip_policy", serde_json::json!(policy.name()))];
    match policy {
        TipPolicy::FixedFee(fee) => {
            fields.push(("convenience_fee", serde_json::json!(fee.to_string())))
        }
        TipPolicy::PercentageFee(p) => {
            fields.push(("convenience_fee_percent", serde_json::json!(p.to_string())))
        }
        TipPolicy::None | TipPolicy::Prompt => {}
    }
    fields
}

/// A shop's tipping as [`crate::Client::set_tip_policy`] left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TipSettings {
    /// What an order that names no policy lets the customer add.
    pub policy: TipPolicy,
    /// The largest tip, in percent of an order's amount.
    pub tip_max_percent: u8,
}

/// Filters for [`crate::Client::list_orders`].
#[derive(Clone, Debug, Default)]
pub struct ListOrders {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders created at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only orders created before this time.
    pub to: Option<DateTime<Utc>>,
    /// Where the previous page ended (its `next_cursor`).
    pub cursor: Option<String>,
    /// 1..200 (gateway default 50).
    pub limit: Option<u32>,
}

/// One page of a list; pass `next_cursor` back to get the next.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// A merchant account and its balance.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// `acc_…`.
    pub id: String,
    /// The account's currency.
    pub currency: Currency,
    /// The balance (the sum of the account's ledger postings).
    pub balance: Decimal,
}

#[derive(Deserialize)]
pub(crate) struct AccountWire {
    id: String,
    currency: Currency,
    balance: String,
}

impl TryFrom<AccountWire> for Account {
    type Error = Error;
    fn try_from(w: AccountWire) -> Result<Self, Error> {
        // A balance may be zero, which `Money` (strictly positive) refuses.
        let minor = qrgate_domain::money::parse_minor(&w.balance, w.currency)
            .map_err(|e| Error::UnexpectedResponse(format!("balance {:?}: {e}", w.balance)))?;
        Ok(Account {
            id: w.id,
            currency: w.currency,
            balance: Decimal::new(minor, w.currency.minor_units()),
        })
    }
}

/// One entry of an order's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct OrderEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// `created`, `payment_failed`, `paid`, `closed`, `expired`.
    pub kind: String,
    /// The reason code of a failed attempt.
    pub code: Option<String>,
    /// The risk rule that declined an attempt (`daily_amount`, `sca_threshold`, …).
    pub rule: Option<String>,
    /// The paying account, masked.
    pub customer_account: Option<String>,
}

/// A refund as the gateway reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Refund {
    /// `rfd_…`.
    pub id: String,
    /// The refunded amount, in the order's currency.
    pub amount: Decimal,
    /// The order's currency.
    pub currency: Currency,
    /// The order after this refund: `partially_refunded` or `refunded`.
    pub order_status: OrderStatus,
    /// Why, as the merchant said.
    pub reason: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The tip's share given back with it, on top of `amount`.
    pub tip_refunded: Decimal,
    /// The convenience fee's share given back with it, on top of `amount`.
    pub convenience_fee_refunded: Decimal,
}

#[derive(Deserialize)]
pub(crate) struct RefundWire {
    id: String,
    amount: String,
    currency: Currency,
    order_status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    #[serde(default)]
    tip_refunded: Option<String>,
    #[serde(default)]
    convenience_fee_refunded: Option<String>,
}

impl TryFrom<RefundWire> for Refund {
    type Error = Error;
    fn try_from(w: RefundWire) -> Result<Self, Error> {
        Ok(Refund {
            amount: decimal(&w.amount, w.currency)?,
            order_status: status(&w.order_status)?,
            id: w.id,
            currency: w.currency,
            reason: w.reason,
            created_at: w.created_at,
            tip_refunded: optional_amount(w.tip_refunded.as_deref(), w.currency)?,
            convenience_fee_refunded: optional_amount(
                w.convenience_fee_refunded.as_deref(),
                w.currency,
            )?,
        })
    }
}

/// An amount a gateway older than the field leaves out: zero then.
fn optional_amount(amount: Option<&str>, currency: Currency) -> Result<Decimal, Error> {
    amount.map_or(Ok(Decimal::ZERO), |a| signed_decimal(a, currency))
}

/// One line of an account statement.
#[derive(Clone, Debug, PartialEq)]
pub struct StatementLine {
    /// When the ledger transaction was committed.
    pub posted_at: DateTime<Utc>,
    /// The ledger transaction the line belongs to.
    pub ledger_transaction_id: String,
    /// `payment`, `refund`, `fee`, `transfer`, `top_up`, `payout`, …
    pub kind: String,
    /// The counterparty, for a person.
    pub description: Option<String>,
    /// Signed: money in is positive.
    pub amount: Decimal,
    /// The account's balance after this line.
    pub balance_after: Decimal,
}

#[derive(Deserialize)]
pub(crate) struct StatementWire {
    pub(crate) currency: Currency,
    pub(crate) items: Vec<StatementLineWire>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct StatementLineWire {
    posted_at: DateTime<Utc>,
    ledger_transaction_id: String,
    kind: String,
    description: Option<String>,
    amount: String,
    balance_after: String,
}

/// A signed wire amount (statement lines may be negative) at the currency's scale.
fn signed_decimal(amount: &str, currency: Currency) -> Result<Decimal, Error> {
    let (negative, digits) = amount
        .strip_prefix('-')
        .map_or((false, amount), |d| (true, d));
    let minor = qrgate_domain::money::parse_minor(digits, currency)
        .map_err(|e| Error::UnexpectedResponse(format!("amount {amount:?}: {e}")))?;
    Ok(Decimal::new(
        if negative { -minor } else { minor },
        currency.minor_units(),
    ))
}

impl StatementLineWire {
    pub(crate) fn parse(self, currency: Currency) -> Result<StatementLine, Error> {
        Ok(StatementLine {
            amount: signed_decimal(&self.amount, currency)?,
            balance_after: signed_decimal(&self.balance_after, currency)?,
            posted_at: self.posted_at,
            ledger_transaction_id: self.ledger_transaction_id,
            kind: self.kind,
            description: self.description,
        })
    }
}

/// A payout from the merchant's settlement account.
#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    /// `po_…`.
    pub id: String,
    /// The customer account paid.
    pub to_account_id: String,
    /// How much.
    pub amount: Decimal,
    /// The merchant's currency.
    pub currency: Currency,
    /// The merchant's reference (its retries give the same payout).
    pub payout_reference: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
pub(crate) struct PayoutWire {
    id: String,
    to_account_id: String,
    amount: String,
    currency: Currency,
    payout_reference: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PayoutWire> for Payout {
    type Error = Error;
    fn try_from(w: PayoutWire) -> Result<Self, Error> {
        Ok(Payout {
            amount: decimal(&w.amount, w.currency)?,
            id: w.id,
            to_account_id: w.to_account_id,
            currency: w.currency,
            payout_reference: w.payout_reference,
            created_at: w.created_at,
        })
    }
}

/// One day of the merchant's settlement account, in its time zone.
#[derive(Clone, Debug, PartialEq)]
pub struct SettlementReport {
    /// The day reported.
    pub date: chrono::NaiveDate,
    /// The merchant's currency.
    pub currency: Currency,
    /// Balance at the start of the day.
    pub opening_balance: Decimal,
    /// Payments settled that day, and their total.
    pub payments_count: i64,
    /// Total of those payments (before fees and discounts).
    pub payments_amount: Decimal,
    /// Discounts the merchant funded on those payments (not credited to it).
    pub discounts_amount: Decimal,
    /// Refunds made that day.
    pub refunds_count: i64,
    /// Total of those refunds (of the orders' amounts).
    pub refunds_amount: Decimal,
    /// The share of merchant-funded discounts in those refunds (not taken from the
    /// merchant). `net = payments_amount − discounts_amount − fees − refunds_amount +
    /// refunded_discounts_amount − payouts_amount`.
    pub refunded_discounts_amount: Decimal,
    /// Fees charged that day, less fees returned by refunds.
    pub fees: Decimal,
    /// Paid out that day.
    pub payouts_amount: Decimal,
    /// The day's change: closing − opening.
    pub net: Decimal,
    /// Balance at the end of the day (or now, for today).
    pub closing_balance: Decimal,
}

#[derive(Deserialize)]
pub(crate) struct SettlementReportWire {
    date: chrono::NaiveDate,
    currency: Currency,
    opening_balance: String,
    payments_count: i64,
    payments_amount: String,
    discounts_amount: String,
    refunds_count: i64,
    refunds_amount: String,
    refunded_discounts_amount: String,
    fees: String,
    payouts_amount: String,
    net: String,
    closing_balance: String,
}

impl TryFrom<SettlementReportWire> for SettlementReport {
    type Error = Error;
    fn try_from(w: SettlementReportWire) -> Result<Self, Error> {
        let c = w.currency;
        Ok(SettlementReport {
            date: w.date,
            currency: c,
            opening_balance: signed_decimal(&w.opening_balance, c)?,
            payments_count: w.payments_count,
            payments_amount: signed_decimal(&w.payments_amount, c)?,
            discounts_amount: signed_decimal(&w.discounts_amount, c)?,
            refunds_count: w.refunds_count,
            refunds_amount: signed_decimal(&w.refunds_amount, c)?,
            refunded_discounts_amount: signed_decimal(&w.refunded_discounts_amount, c)?,
            fees: signed_decimal(&w.fees, c)?,
            payouts_amount: signed_decimal(&w.payouts_amount, c)?,
            net: signed_decimal(&w.net, c)?,
            closing_balance: signed_decimal(&w.closing_balance, c)?,
        })
    }
}

/// One webhook event and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WebhookDelivery {
    /// The event's `webhook-id`.
    pub id: String,
    /// `order.paid`, `order.expired`, `order.closed`, `refund.succeeded`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The order or refund it is about.
    pub object_id: String,
    /// `pending`, `delivered`, `failed` (given up) or `gone` (the endpoint answered 410).
    pub status: String,
    /// Attempts so far.
    pub attempts: i32,
    /// The endpoint's last HTTP status, if it answered.
    pub last_http_status: Option<i16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// One line of a checkout session: what it is, how many, and the price of one.
#[derive(Clone, Debug, PartialEq)]
pub struct LineItem {
    /// 1–100 printable characters.
    pub name: String,
    /// 1..9999.
    pub quantity: u32,
    /// The price of one, in the session's currency.
    pub amount: Decimal,
}

/// What a web shop asks for: an order with a hosted payment page. Checked locally
/// (amount scale, lengths) before sending; the gateway checks the URLs and that the
/// line items add up to the amount.
#[derive(Clone, Debug)]
pub struct NewCheckoutSession {
    /// The order to pay.
    pub order: NewOrder,
    /// Where the customer returns once paid (`session_id` is added): https://.
    pub return_url: String,
    /// Where the customer goes on cancelling: https://.
    pub cancel_url: String,
    /// Optional; when given, quantity × amount adds up to the order's amount.
    pub line_items: Vec<LineItem>,
}

impl NewCheckoutSession {
    pub(crate) fn body(&self) -> Result<serde_json::Value, Error> {
        let mut body = self.order.body()?;
        let object = body.as_object_mut().expect("an order body is an object");
        object.remove("terminal_id");
        object.insert("return_url".into(), self.return_url.clone().into());
        object.insert("cancel_url".into(), self.cancel_url.clone().into());
        let mut items = Vec::with_capacity(self.line_items.len());
        for item in &self.line_items {
            let text = item.amount.normalize().to_string();
            let money = Money::parse(&text, self.order.currency).map_err(|e| {
                Error::InvalidInput(format!("line item {:?}: amount {text}: {e}", item.name))
            })?;
            items.push(serde_json::json!({"name": item.name, "quantity": item.quantity, "amount": money.to_string()}));
        }
        object.insert("line_items".into(), items.into());
        Ok(body)
    }
}

/// Where a checkout session is: `open` while its order is pending, then `complete`
/// (paid), `expired` or `cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutStatus {
    /// The order is pending: the page shows its QR.
    Open,
    /// Paid (refunds afterwards do not reopen it).
    Complete,
    /// The order expired unpaid.
    Expired,
    /// The customer cancelled, or the merchant closed the order.
    Cancelled,
}

/// A checkout session as the gateway reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// Where it is in its life.
    pub status: CheckoutStatus,
    /// The payment page to send the customer to; only when the session was created (the
    /// gateway keeps only a hash of it).
    pub url: Option<String>,
    /// The order the page pays.
    pub order: Order,
    /// Where the customer returns once paid.
    pub return_url: String,
    /// Where the customer goes on cancelling.
    pub cancel_url: String,
    /// When the page stops being payable (the order's expiry).
    pub expires_at: DateTime<Utc>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
pub(crate) struct CheckoutSessionWire {
    id: String,
    status: String,
    #[serde(default)]
    url: Option<String>,
    order: OrderWire,
    return_url: String,
    cancel_url: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

impl TryFrom<CheckoutSessionWire> for CheckoutSession {
    type Error = Error;
    fn try_from(w: CheckoutSessionWire) -> Result<Self, Error> {
        let status = match w.status.as_str() {
            "open" => CheckoutStatus::Open,
            "complete" => CheckoutStatus::Complete,
            "expired" => CheckoutStatus::Expired,
            "cancelled" => CheckoutStatus::Cancelled,
            other => {
                return Err(Error::UnexpectedResponse(format!(
                    "checkout status {other:?}"
                )))
            }
        };
        Ok(CheckoutSession {
            id: w.id,
            status,
            url: w.url,
            order: w.order.try_into()?,
            return_url: w.return_url,
            cancel_url: w.cancel_url,
            expires_at: w.expires_at,
            created_at: w.created_at,
        })
    }
}

/// A shop's printed code (EMV point of initiation 11): no amount — the customer's
/// wallet asks for it — and no expiry until revoked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct StaticCode {
    /// `sqr_…`.
    pub id: String,
    /// The counter or till it hangs at ("Counter", "Till 2"); its orders' `terminal_id`.
    pub name: String,
    /// What a payment through it must be in.
    pub currency: Currency,
    /// The EMV payload to print as a QR code.
    pub qr_payload: String,
    /// The key that issued it.
    pub created_by_key_id: Option<String>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// Once revoked, payments through it are refused (`static_code_revoked`).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a shop offers for points (see [`crate::Client::create_reward`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewReward {
    /// `value` off a payment at this shop, good for `valid_days` after it is redeemed
    /// (the gateway's default is 30); the shop funds it.
    Voucher {
        /// For people (1–100 characters): "¥5 off".
        name: String,
        /// What it costs in whole points.
        points_cost: u64,
        /// What it takes off, in the shop's currency.
        value: Decimal,
        /// How long it is good after it is redeemed (1–366 days).
        valid_days: Option<u16>,
        /// How many may be redeemed (None: no limit).
        stock: Option<u32>,
    },
    /// Something the shop hands over.
    Gift {
        /// For people (1–100 characters): "Tote bag".
        name: String,
        /// What it costs in whole points.
        points_cost: u64,
        /// How many may be redeemed (None: no limit).
        stock: Option<u32>,
    },
}

impl NewReward {
    pub(crate) fn body(&self) -> serde_json::Value {
        match self {
            NewReward::Voucher {
                name,
                points_cost,
                value,
                valid_days,
                stock,
            } => serde_json::json!({
                "kind": "voucher", "name": name, "points_cost": points_cost,
                "value": value.normalize().to_string(), "valid_days": valid_days, "stock": stock,
            }),
            NewReward::Gift {
                name,
                points_cost,
                stock,
            } => serde_json::json!({
                "kind": "gift", "name": name, "points_cost": points_cost, "stock": stock,
            }),
        }
    }
}

/// A listed reward, with how it has gone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Reward {
    /// `rwd_…`.
    pub id: String,
    /// `voucher` or `gift`.
    pub kind: String,
    /// For people.
    pub name: String,
    /// Whole points, as the API writes them.
    pub points_cost: String,
    /// `active` or `ended`.
    pub status: String,
    /// How many are left (None: no limit).
    pub stock_left: Option<u32>,
    /// How many were redeemed.
    pub redeemed_count: u64,
    /// Vouchers a payment took.
    pub used_count: u64,
    /// Vouchers that expired unused (they return nothing).
    pub expired_count: u64,
    /// When it was listed.
    pub created_at: DateTime<Utc>,
}
