//! `cashier`: a shop's till on the command line. Charges by QR code and waits for the
//! customer's wallet to pay; shows, lists and closes orders; shows the balance.
//!
//! Exit codes: 0 paid (or the command succeeded), 1 error, 2 usage, 3 the order
//! expired, 4 the order was closed, 130 interrupted (Ctrl-C; a pending charge is closed).

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use merchant_sdk::{
    terminal, Client, Currency, Error, ErrorKind, LineItem, ListOrders, NewCheckoutSession,
    NewOrder, Order, OrderStatus, TipPolicy,
};
use rust_decimal::Decimal;
use std::{io::Write, process::ExitCode, str::FromStr, time::Duration};

const EXIT_ERROR: u8 = 1;
const EXIT_EXPIRED: u8 = 3;
const EXIT_CLOSED: u8 = 4;
const EXIT_INTERRUPTED: u8 = 130;
/// How long past `expires_at` to keep waiting for the gateway to report the outcome.
const EXPIRY_GRACE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "cashier",
    version,
    about = "qrgate's command-line till: charge by QR code and wait for payment.",
    after_help = "Exit codes: 0 paid / success, 1 error, 2 usage, 3 expired, 4 closed, 130 interrupted."
)]
struct Cli {
    /// Gateway base URL.
    #[arg(long, env = "QRGATE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Merchant API key (`key_….secret`); charging needs the `orders` scope, `balance` needs `reports`.
    #[arg(long, env = "QRGATE_API_KEY", hide_env_values = true)]
    api_key: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an order, draw its QR code, and wait until it is paid, expires or is closed.
    Charge {
        /// Amount, e.g. 12.34 (at most the currency's decimal places).
        amount: String,
        /// Currency: the merchant's own (ISO 4217).
        #[arg(long, env = "QRGATE_CURRENCY", default_value = "CNY")]
        currency: String,
        /// The shop's reference for the bill (1–25 ASCII characters); generated when omitted.
        #[arg(long)]
        reference: Option<String>,
        /// Till or terminal id printed on the code (1–25 ASCII characters).
        #[arg(long)]
        terminal: Option<String>,
        /// What is being paid for.
        #[arg(long)]
        description: Option<String>,
        /// How long the code stays payable (30..86400, default 300).
        #[arg(long)]
        expires_in_seconds: Option<u32>,
        /// Also write the QR code as a PNG image to this file.
        #[arg(long)]
        png: Option<std::path::PathBuf>,
        /// Let the customer tip (`prompt`), charge a convenience fee (`fee:1.50`,
        /// `fee:2.5%`), or neither (`none`); default: the shop's policy.
        #[arg(long)]
        tip: Option<String>,
    },
    /// Set the shop's tipping: `prompt`, `fee:1.50`, `fee:2.5%` or `none` for orders that
    /// name none, and the largest tip (needs a manager key, scope `keys`).
    TipPolicy {
        policy: String,
        /// The largest tip, in percent of an order's amount (0..100); unchanged when omitted.
        #[arg(long)]
        max_percent: Option<u8>,
        /// The shop's currency (a fixed fee is in it).
        #[arg(long, env = "QRGATE_CURRENCY", default_value = "CNY")]
        currency: String,
    },
    /// Show an order.
    Status { order_id: String },
    /// Stop a pending order from being paid.
    Close { order_id: String },
    /// List recent orders as a table, newest first.
    Orders {
        /// Only orders in this status (pending, paid, expired, closed, partially_refunded, refunded).
        #[arg(long)]
        status: Option<String>,
        /// Only orders created at or after this time (RFC 3339, e.g. 2026-11-25T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many orders (1..200).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Show the merchant's balances (needs an API key with the `reports` scope).
    Balance,
    /// Refund all or part of a paid order (needs the `refunds` scope).
    Refund {
        order_id: String,
        /// Amount to refund, e.g. 5.00.
        amount: String,
        /// The shop's reference for this refund (repeating it repeats nothing); generated when omitted.
        #[arg(long)]
        reference: Option<String>,
        /// Why, for the customer's records.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The settlement account's statement, oldest first (needs `reports`).
    Statement {
        /// At most this many lines (1..200).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Online checkout: a payment link for a web shop's customer.
    Checkout {
        #[command(subcommand)]
        action: CheckoutCommand,
    },
    /// Static codes to print: customers scan one and enter the amount in their wallet.
    StaticCode {
        #[command(subcommand)]
        action: StaticCodeCommand,
    },
    /// The daily settlement report (needs `reports`).
    Report {
        /// The day, YYYY-MM-DD, in the merchant's time zone (default: today on this machine).
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Subcommand)]
enum CheckoutCommand {
    /// Open a checkout session: prints its payment link and, in a terminal, the link's QR code.
    Create {
        /// Amount, e.g. 25.50 (at most the currency's decimal places).
        amount: String,
        /// Where the customer returns once paid (https://; `session_id` is added).
        #[arg(long)]
        return_url: String,
        /// Where the customer goes on cancelling (https://).
        #[arg(long)]
        cancel_url: String,
        /// Currency: the merchant's own (ISO 4217).
        #[arg(long, env = "QRGATE_CURRENCY", default_value = "CNY")]
        currency: String,
        /// The shop's reference for the order (1–25 ASCII characters); generated when omitted.
        #[arg(long)]
        reference: Option<String>,
        /// What is being paid for.
        #[arg(long)]
        description: Option<String>,
        /// How long the link stays payable (30..86400, default 300).
        #[arg(long)]
        expires_in_seconds: Option<u32>,
        /// A line item, `NAME:QUANTITY:PRICE` (e.g. "Tea:2:5.50"); repeat for more. They
        /// must add up to the amount.
        #[arg(long = "item")]
        items: Vec<String>,
    },
}

#[derive(Subcommand)]
enum StaticCodeCommand {
    /// Issue a code for a counter or till: prints its id, its payload and, in a
    /// terminal, the QR to print.
    Create {
        /// Where it hangs, printed in the code: "Counter", "Till 2" (1–25 ASCII characters).
        name: String,
    },
    /// The shop's live codes (with --all, revoked ones too).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Revoke a code: payments through it are refused from now on.
    Revoke { code_id: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match Client::builder(&cli.url, &cli.api_key).build() {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let result = match cli.command {
        Command::Charge {
            amount,
            currency,
            reference,
            terminal,
            description,
            expires_in_seconds,
            png,
            tip,
        } => {
            let order = new_order(
                &amount,
                &currency,
                reference,
                terminal,
                description,
                expires_in_seconds,
            )
            .and_then(|order| {
                let tip_policy = tip
                    .as_deref()
                    .map(|t| tip_policy(t, order.currency))
                    .transpose()?;
                Ok(NewOrder {
                    tip_policy,
                    ..order
                })
            });
            match order {
                Ok(order) => charge(&client, order, png).await,
                Err(e) => return fail(&e),
            }
        }
        Command::TipPolicy {
            policy,
            max_percent,
            currency,
        } => set_tip_policy(&client, &policy, max_percent, &currency).await,
        Command::Status { order_id } => client.get_order(&order_id).await.map(|o| {
            print_order(&o);
            ExitCode::SUCCESS
        }),
        Command::Close { order_id } => client.close_order(&order_id).await.map(|o| {
            print_order(&o);
            ExitCode::SUCCESS
        }),
        Command::Orders {
            status,
            since,
            limit,
        } => orders(&client, status, since, limit).await,
        Command::Balance => balance(&client).await,
        Command::Refund {
            order_id,
            amount,
            reference,
            reason,
        } => refund(&client, &order_id, &amount, reference, reason).await,
        Command::Statement { limit } => statement(&client, limit).await,
        Command::Report { date } => settlement_report(&client, date).await,
        Command::StaticCode { action } => static_code(&client, action).await,
        Command::Checkout {
            action:
                CheckoutCommand::Create {
                    amount,
                    return_url,
                    cancel_url,
                    currency,
                    reference,
                    description,
                    expires_in_seconds,
                    items,
                },
        } => {
            let session = new_order(
                &amount,
                &currency,
                reference,
                None,
                description,
                expires_in_seconds,
            )
            .and_then(|order| {
                Ok(NewCheckoutSession {
                    order,
                    return_url,
                    cancel_url,
                    line_items: items
                        .iter()
                        .map(|i| line_item(i))
                        .collect::<Result<_, _>>()?,
                })
            });
            match session {
                Ok(session) => checkout_create(&client, &session).await,
                Err(e) => return fail(&e),
            }
        }
    };
    result.unwrap_or_else(|e| fail(&e))
}

/// `none`, `prompt`, `fee:1.50` (fixed, in `currency`) or `fee:2.5%`.
fn tip_policy(text: &str, currency: Currency) -> Result<TipPolicy, Error> {
    let parsed = match text.strip_prefix("fee:") {
        Some(fee) => match fee.strip_suffix('%') {
            Some(percent) => TipPolicy::parse("percentage_fee", None, Some(percent), currency),
            None => TipPolicy::parse("fixed_fee", Some(fee), None, currency),
        },
        None => TipPolicy::parse(text, None, None, currency),
    };
    parsed.map_err(|e| {
        Error::InvalidInput(format!(
            "--tip {text:?}: {e} (write prompt, none, fee:1.50 or fee:2.5%)"
        ))
    })
}

async fn set_tip_policy(
    client: &Client,
    policy: &str,
    max_percent: Option<u8>,
    currency: &str,
) -> Result<ExitCode, Error> {
    let policy = tip_policy(policy, currency.parse()?)?;
    let settings = client.set_tip_policy(policy, max_percent).await?;
    println!(
        "tip policy {}; tips up to {}% of an order",
        describe_tip_policy(settings.policy),
        settings.tip_max_percent
    );
    Ok(ExitCode::SUCCESS)
}

fn describe_tip_policy(policy: TipPolicy) -> String {
    match policy {
        TipPolicy::None => "none".into(),
        TipPolicy::Prompt => "prompt (the wallet asks for a tip)".into(),
        TipPolicy::FixedFee(fee) => format!("convenience fee {fee}"),
        TipPolicy::PercentageFee(p) => format!("convenience fee {p}%"),
    }
}

fn fail(e: &Error) -> ExitCode {
    eprintln!("cashier: {e}");
    ExitCode::from(EXIT_ERROR)
}

fn new_order(
    amount: &str,
    currency: &str,
    reference: Option<String>,
    terminal: Option<String>,
    description: Option<String>,
    expires_in_seconds: Option<u32>,
) -> Result<NewOrder, Error> {
    let amount = Decimal::from_str(amount).map_err(|_| {
        Error::InvalidInput(format!("amount {amount:?} is not a number like 12.34"))
    })?;
    let currency = currency.parse()?;
    let reference =
        reference.unwrap_or_else(|| format!("POS-{}", Utc::now().format("%Y%m%d-%H%M%S%3f")));
    Ok(NewOrder {
        terminal_id: terminal,
        description,
        expires_in_seconds,
        ..NewOrder::new(amount, currency, reference)
    })
}

async fn charge(
    client: &Client,
    order: NewOrder,
    png: Option<std::path::PathBuf>,
) -> Result<ExitCode, Error> {
    let order = client.create_order(&order).await?;
    println!(
        "Order {} — {} {} (ref {})",
        order.id, order.amount, order.currency, order.merchant_reference
    );
    match terminal::encode(&order.qr_payload) {
        Some(code) => print!("{}", terminal::render(&code)),
        None => println!("(the payload does not fit a QR code)"),
    }
    if let Some(path) = png {
        let image = client.order_qr_png(&order.id).await?;
        std::fs::write(&path, image)
            .map_err(|e| Error::InvalidInput(format!("writing {}: {e}", path.display())))?;
        println!("QR image written to {}", path.display());
    }
    println!("Scan to pay.");
    let outcome = wait_with_countdown(client, &order).await?;
    Ok(report(&outcome))
}

/// `NAME:QUANTITY:PRICE`; the name may itself hold colons (the last two fields are split off).
fn line_item(text: &str) -> Result<LineItem, Error> {
    let bad = || {
        Error::InvalidInput(format!(
            "--item {text:?}: write NAME:QUANTITY:PRICE, e.g. Tea:2:5.50"
        ))
    };
    let mut parts = text.rsplitn(3, ':');
    let (price, quantity, name) = (parts.next(), parts.next(), parts.next());
    let (Some(price), Some(quantity), Some(name)) = (price, quantity, name) else {
        return Err(bad());
    };
    Ok(LineItem {
        name: name.to_owned(),
        quantity: quantity.parse().map_err(|_| bad())?,
        amount: Decimal::from_str(price).map_err(|_| bad())?,
    })
}

async fn checkout_create(client: &Client, session: &NewCheckoutSession) -> Result<ExitCode, Error> {
    let created = client.create_checkout_session(session).await?;
    let url = created.url.clone().unwrap_or_default();
    println!(
        "Checkout session {} — {} {} (ref {}), payable until {}",
        created.id,
        created.order.amount,
        created.order.currency,
        created.order.merchant_reference,
        created.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    println!("{url}");
    print_qr_in_terminal(&url);
    Ok(ExitCode::SUCCESS)
}

/// `text` as a QR drawn in the terminal, when standard output is one.
fn print_qr_in_terminal(text: &str) {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() {
        if let Some(code) = terminal::encode(text) {
            print!("{}", terminal::render(&code));
        }
    }
}

async fn static_code(client: &Client, action: StaticCodeCommand) -> Result<ExitCode, Error> {
    let print = |c: &merchant_sdk::StaticCode| {
        let revoked = c
            .revoked_at
            .map(|t| format!(", revoked {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        println!("{}  {:<25} {}{revoked}", c.id, c.name, c.currency);
    };
    match action {
        StaticCodeCommand::Create { name } => {
            let code = client.create_static_code(&name, None).await?;
            print(&code);
            println!("{}", code.qr_payload);
            print_qr_in_terminal(&code.qr_payload);
        }
        StaticCodeCommand::List { all } => client.static_codes(all).await?.iter().for_each(print),
        StaticCodeCommand::Revoke { code_id } => print(&client.revoke_static_code(&code_id).await?),
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for the outcome, redrawing a countdown each second; Ctrl-C closes the order.
async fn wait_with_countdown(client: &Client, order: &Order) -> Result<Order, Error> {
    let until_expiry = (order.expires_at - Utc::now()).to_std().unwrap_or_default();
    let wait = client.wait_for_payment(&order.id, until_expiry + EXPIRY_GRACE);
    // One listener for the whole wait: a Ctrl-C between two ticks is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(wait, interrupted);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            // A Ctrl-C is answered first; closing tells the truth if the payment won.
            biased;
            _ = &mut interrupted => {
                eprintln!("\ninterrupted: closing the order so it cannot be paid");
                return close_on_interrupt(client, &order.id).await;
            }
            outcome = &mut wait => {
                eprintln!();
                let outcome = outcome?;
                // Past the wait with the order still pending: ask once more for the final word.
                return if outcome.status == OrderStatus::Pending { client.get_order(&order.id).await } else { Ok(outcome) };
            }
            _ = tick.tick() => countdown(order.expires_at),
        }
    }
}

/// Closes the order after Ctrl-C. A payment that landed just before it wins: closing
/// answers `already_paid`, and the charge ends PAID (exit 0), not as an error.
async fn close_on_interrupt(client: &Client, order_id: &str) -> Result<Order, Error> {
    match client.close_order(order_id).await {
        Ok(closed) if closed.status.is_paid() => Ok(closed),
        Ok(closed) => {
            print_order(&closed);
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        Err(e) if e.kind() == Some(&ErrorKind::AlreadyPaid) => client.get_order(order_id).await,
        Err(e) => Err(e),
    }
}

fn countdown(expires_at: DateTime<Utc>) {
    let left = (expires_at - Utc::now()).num_seconds().max(0);
    eprint!(
        "\rwaiting for payment… {:02}:{:02} left ",
        left / 60,
        left % 60
    );
    let _ = std::io::stderr().flush();
}

fn report(order: &Order) -> ExitCode {
    match order.status {
        status if status.is_paid() => {
            let at = order.paid_at.map(|t| t.to_rfc3339()).unwrap_or_default();
            println!(
                "PAID {} {} — payment {} at {at}",
                order.amount,
                order.currency,
                order.payment_id.as_deref().unwrap_or("-")
            );
            print_extras(order);
            ExitCode::SUCCESS
        }
        OrderStatus::Expired => {
            println!(
                "EXPIRED — order {} was not paid in time; charge again for a new code",
                order.id
            );
            ExitCode::from(EXIT_EXPIRED)
        }
        OrderStatus::Closed => {
            println!("CLOSED — order {} was closed before it was paid", order.id);
            ExitCode::from(EXIT_CLOSED)
        }
        status => {
            println!("order {} is still {status}", order.id);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn print_order(o: &Order) {
    println!(
        "{}  {}  {} {}  ref {}",
        o.id, o.status, o.amount, o.currency, o.merchant_reference
    );
    println!(
        "  created {}  expires {}",
        o.created_at.to_rfc3339(),
        o.expires_at.to_rfc3339()
    );
    if let (Some(paid_at), Some(payment)) = (o.paid_at, &o.payment_id) {
        println!("  paid {} (payment {payment})", paid_at.to_rfc3339());
    }
    print_extras(o);
}

/// The tip and the convenience fee on top of the amount, when there are any.
fn print_extras(o: &Order) {
    if let Some(tip) = o.tip.filter(|t| !t.is_zero()) {
        println!("  tip {tip} {}", o.currency);
    }
    if let Some(fee) = o.convenience_fee {
        println!("  convenience fee {fee} {}", o.currency);
    }
}

async fn orders(
    client: &Client,
    status: Option<String>,
    since: Option<String>,
    limit: u32,
) -> Result<ExitCode, Error> {
    let status = status.map(|s| s.parse::<OrderStatus>()).transpose()?;
    let from = since
        .map(|s| DateTime::parse_from_rfc3339(&s).map(|t| t.with_timezone(&Utc)))
        .transpose()
        .map_err(|_| {
            Error::InvalidInput("--since must be RFC 3339, e.g. 2026-11-25T00:00:00Z".into())
        })?;
    let page = client
        .list_orders(&ListOrders {
            status,
            from,
            limit: Some(limit),
            ..Default::default()
        })
        .await?;
    let header = ["ORDER", "STATUS", "AMOUNT", "CUR", "REFERENCE", "CREATED"];
    println!(
        "{:<25} {:<18} {:>14} {:<4} {:<25} {}",
        header[0], header[1], header[2], header[3], header[4], header[5]
    );
    for o in &page.items {
        println!(
            "{:<25} {:<18} {:>14} {:<4} {:<25} {}",
            o.id,
            o.status.as_str(),
            o.amount.to_string(),
            o.currency.code(),
            o.merchant_reference,
            o.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    if page.items.is_empty() {
        println!("(no orders)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn balance(client: &Client) -> Result<ExitCode, Error> {
    match client.accounts().await {
        Ok(accounts) => {
            for a in accounts {
                println!("{}  {} {}", a.id, a.balance, a.currency);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Api {
            kind: ErrorKind::Forbidden,
            ..
        }) => {
            eprintln!("cashier: this API key cannot see balances (it lacks the `reports` scope); ask the shop owner for a manager key");
            Ok(ExitCode::from(EXIT_ERROR))
        }
        Err(e) => Err(e),
    }
}

async fn refund(
    client: &Client,
    order_id: &str,
    amount: &str,
    reference: Option<String>,
    reason: Option<String>,
) -> Result<ExitCode, Error> {
    let amount = Decimal::from_str(amount)
        .map_err(|_| Error::InvalidInput(format!("amount {amount:?} is not a number like 5.00")))?;
    let reference =
        reference.unwrap_or_else(|| format!("RF-{}", Utc::now().format("%Y%m%d-%H%M%S%3f")));
    let refund = client
        .refund(order_id, amount, &reference, reason.as_deref())
        .await?;
    println!(
        "REFUNDED {} {} — refund {} (ref {}); order is now {}",
        refund.amount, refund.currency, refund.id, reference, refund.order_status
    );
    Ok(ExitCode::SUCCESS)
}

/// The merchant's own settlement account (the first it has).
async fn settlement_account(client: &Client) -> Result<merchant_sdk::Account, Error> {
    client
        .accounts()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::UnexpectedResponse("the merchant has no account".into()))
}

async fn statement(client: &Client, limit: u32) -> Result<ExitCode, Error> {
    let account = settlement_account(client).await?;
    let page = client.statement(&account.id, None, Some(limit)).await?;
    let header = ["POSTED", "KIND", "AMOUNT", "BALANCE", "DESCRIPTION"];
    println!(
        "{:<20} {:<9} {:>14} {:>14}  {}",
        header[0], header[1], header[2], header[3], header[4]
    );
    for line in &page.items {
        println!(
            "{:<20} {:<9} {:>14} {:>14}  {}",
            line.posted_at.format("%Y-%m-%d %H:%M:%S"),
            line.kind,
            line.amount.to_string(),
            line.balance_after.to_string(),
            line.description.as_deref().unwrap_or("")
        );
    }
    if page.next_cursor.is_some() {
        println!("(more lines: use a larger --limit or the SDK's cursor)");
    }
    Ok(ExitCode::SUCCESS)
}

async fn settlement_report(client: &Client, date: Option<String>) -> Result<ExitCode, Error> {
    let date = match date {
        Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map_err(|_| Error::InvalidInput("--date must be YYYY-MM-DD".into()))?,
        None => chrono::Local::now().date_naive(),
    };
    let r = client.settlement_report(date).await?;
    println!("Settlement report {} ({})", r.date, r.currency);
    for (label, value) in [
        ("opening balance", r.opening_balance.to_string()),
        (
            "payments",
            format!("{} × {}", r.payments_count, r.payments_amount),
        ),
        ("discounts", r.discounts_amount.to_string()),
        (
            "refunds",
            format!("{} × {}", r.refunds_count, r.refunds_amount),
        ),
        ("refunded disc.", r.refunded_discounts_amount.to_string()),
        ("fees", r.fees.to_string()),
        ("payouts", r.payouts_amount.to_string()),
        ("net", r.net.to_string()),
        ("closing balance", r.closing_balance.to_string()),
    ] {
        println!("  {label:<16} {value:>18}");
    }
    Ok(ExitCode::SUCCESS)
}
