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
    /// Replicas of a gateway binary under faults (SIGKILL, connections cut, a database
    /// restart) and load; checks that nothing acknowledged is lost or paid twice.
    Chaos {
        /// The gateway binary to run as replicas.
        #[arg(long)]
        gateway_binary: std::path::PathBuf,
        /// The database the replicas share (a fresh one: the run checks all of it).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The operator's admin token the replicas are given.
        #[arg(long, env = "QRGATE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
        /// Gateway processes (2..=4).
        #[arg(long, default_value_t = 2)]
        replicas: usize,
        /// How long arrivals keep coming (1..=3600).
        #[arg(long, default_value_t = 20.0)]
        duration_seconds: f64,
        /// Arrivals per second (1..=500).
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Seed of the scenarios and of the fault schedule.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Replicas killed with SIGKILL (and restarted) during the run.
        #[arg(long, default_value_t = 5)]
        replica_kills: usize,
        /// Times every database connection is terminated (pg_terminate_backend).
        #[arg(long, default_value_t = 1)]
        connection_kills: usize,
        /// Herds of more concurrent sales on one replica than its pool has connections.
        #[arg(long, default_value_t = 1)]
        herds: usize,
        /// Each replica's database connections (1..=64); the gateway's default is 16.
        #[arg(long, default_value_t = 16)]
        pool_size: usize,
        /// How long a replica's request waits for a connection before 503 (10..=10000 ms).
        #[arg(long, default_value_t = 2_000)]
        pool_wait_timeout_ms: u64,
        /// A database fault, `NAME=SHELL COMMAND`, run once mid-run; repeatable. E.g.
        /// `restart=pg_ctl restart -m fast -D …`, `failover=./dev ha failover`.
        #[arg(long = "db-fault")]
        db_faults: Vec<String>,
        /// Write the JSON report here.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
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
        /// Scenario weights (pay, insufficient, expire, replay, tamper, double_pay,
        /// static_code, refund, tip, voucher), e.g. pay=90,refund=10.
        #[arg(long, default_value_t = Mix::default())]
        mix: Mix,
        /// Offer more than the gateway sustains: `503 unavailable` then counts as shed
        /// work (reported as `shed`), not as an unexpected answer.
        #[arg(long)]
        overload: bool,
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
        Command::Chaos {
            gateway_binary,
            database_url,
            admin_token,
            replicas,
            duration_seconds,
            rate,
            seed,
            replica_kills,
            connection_kills,
            herds,
            pool_size,
            pool_wait_timeout_ms,
            db_faults,
            report,
        } => {
            let mut named = Vec::new();
            for fault in &db_faults {
                match fault.split_once('=') {
                    Some((name, command)) if !name.is_empty() && !command.is_empty() => {
                        named.push((name.to_owned(), command.to_owned()))
                    }
                    _ => {
                        eprintln!("simulator: --db-fault {fault:?}: write NAME=COMMAND");
                        return ExitCode::from(2);
                    }
                }
            }
            if !(2..=4).contains(&replicas)
                || !(1.0..=3600.0).contains(&duration_seconds)
                || !(1.0..=500.0).contains(&rate)
                || !(1..=64).contains(&pool_size)
                || !(10..=10_000).contains(&pool_wait_timeout_ms)
            {
                eprintln!(
                    "simulator: --replicas 2..=4, --duration-seconds 1..=3600, --rate 1..=500, \
                     --pool-size 1..=64, --pool-wait-timeout-ms 10..=10000"
                );
                return ExitCode::from(2);
            }
            let config = simulator::chaos::ChaosConfig {
                gateway_binary,
                database_url,
                admin_token,
                replicas,
                duration_seconds,
                rate,
                seed,
                replica_kills,
                connection_kills,
                herds,
                pool_size,
                pool_wait_timeout_ms,
                db_faults: named,
            };
            let result = match simulator::chaos::run(config).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("simulator: chaos (seed {seed}): {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let json = serde_json::to_string_pretty(&result).expect("JSON");
            if !write_if_asked(report.as_deref(), &json) {
                return ExitCode::FAILURE;
            }
            println!("{json}");
            if result["passed"] == true {
                ExitCode::SUCCESS
            } else {
                eprintln!("simulator: chaos FAILED — replay with --seed {seed}");
                ExitCode::FAILURE
            }
        }
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
            overload,
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
                overload,
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
            if !write_if_asked(report.as_deref(), &json) {
                return ExitCode::FAILURE;
            }
            if !write_if_asked(plot.as_deref(), &result.plot_svg()) {
                return ExitCode::FAILURE;
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

/// Writes `text` to `path` when one was given; false (and why, on stderr) if it failed.
fn write_if_asked(path: Option<&std::path::Path>, text: &str) -> bool {
    let Some(path) = path else { return true };
    std::fs::write(path, text)
        .map_err(|e| eprintln!("simulator: writing {}: {e}", path.display()))
        .is_ok()
}
