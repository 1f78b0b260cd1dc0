//! `simulator demo` narrates one sale; `simulator load` load-tests a gateway on this
//! machine and exits non-zero unless the ledger is whole and every answer was expected.

use clap::{Parser, Subcommand};
use simulator::{load::LoadConfig, scenario::Mix};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "simulator",
    version,
    about = "Plays qrgate's cashiers and wallets: a demo, and a load test that proves nothing was lost."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One narrated sale: set-up, top-up, charge, scan, pay, balances.
    Demo {
        /// Gateway base URL.
        #[arg(long, env = "QRGATE_URL", default_value = "http://127.0.0.1:8080")]
        gateway: String,
        /// The operator's admin token.
        #[arg(long, env = "QRGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Open-loop load at a fixed arrival rate; verifies the ledger at the end.
    Load {
        /// Gateway base URL (this machine only).
        #[arg(long, env = "QRGATE_URL", default_value = "http://127.0.0.1:8080")]
        gateway: String,
        /// The operator's admin token.
        #[arg(long, env = "QRGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
        /// Merchants to create (1..=1000).
        #[arg(long, default_value_t = 10)]
        merchants: usize,
        /// Funded customers to create (2..=100000).
        #[arg(long, default_value_t = 100)]
        customers: usize,
        /// Arrivals per second (each a full sale).
        #[arg(long, default_value_t = 50.0)]
        rate: f64,
        /// How long arrivals keep coming (outstanding flows then get up to 45 s).
        #[arg(long, default_value_t = 10.0)]
        duration_seconds: f64,
        /// Seed of the scenario sequence: the same seed, the same run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Send every order to one merchant.
        #[arg(long)]
        hot_merchant: bool,
        /// Scenario weights, e.g. pay=90,insufficient=2,expire=1,replay=3,tamper=2,double_pay=2.
        #[arg(
            long,
            default_value = "pay=90,insufficient=2,expire=1,replay=3,tamper=2,double_pay=2"
        )]
        mix: Mix,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
        /// Write a latency plot (SVG) here.
        #[arg(long)]
        plot: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo {
            gateway,
            admin_token,
        } => match simulator::demo::run(&gateway, &admin_token).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("simulator: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Load {
            gateway,
            admin_token,
            merchants,
            customers,
            rate,
            duration_seconds,
            seed,
            hot_merchant,
            mix,
            report,
            plot,
        } => {
            let config = LoadConfig {
                gateway,
                admin_token,
                merchants,
                customers,
                rate,
                duration_seconds,
                seed,
                hot_merchant,
                mix,
                show_progress: true,
            };
            let result = match simulator::load::run(config).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("simulator: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let json = result.to_json();
            if let Some(path) = report {
                if let Err(e) = std::fs::write(&path, &json) {
                    eprintln!("simulator: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if let Some(path) = plot {
                if let Err(e) = std::fs::write(&path, result.plot_svg()) {
                    eprintln!("simulator: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            println!("{json}");
            if result.passed {
                ExitCode::SUCCESS
            } else {
                eprintln!("simulator: FAILED — unexpected outcomes or a ledger that does not reconcile (see the report)");
                ExitCode::FAILURE
            }
        }
    }
}
