//! TLS to PostgreSQL, against a cluster of the test's own that requires it of the
//! gateway's role: a self-signed CA, a server certificate for 127.0.0.1 only, and
//! `hostnossl … reject` for that role.

use crate::{
    certificates::{make_certificates, run},
    helpers::{json_ok, spawn_app_on},
};
use gateway::{Application, Settings};
use reqwest::StatusCode;
use std::{collections::HashMap, path::PathBuf, process::Command, time::Duration};

/// The role the gateway connects as: TLS only.
const GATEWAY_ROLE: &str = "gateway_tls";

struct TlsCluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// A PostgreSQL server command, as the postgres user when the tests run as root
/// (initdb and postgres refuse root).
fn server_command(bin: &std::path::Path, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (./dev test installs them)")
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("an initdb");
        let dir = std::env::temp_dir().join(format!(
            "qrgate-tls-{}",
            qrgate_domain::ids::random_base32(10).to_lowercase()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        make_certificates(&dir);
        if is_root() {
            run(
                "chown",
                Command::new("chown").args(["-R", "postgres"]).arg(&dir),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        run(
            "initdb",
            server_command(&bin, "initdb").arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]),
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 hostnossl all {GATEWAY_ROLE} 127.0.0.1/32 reject\n\
                 hostssl all {GATEWAY_ROLE} 127.0.0.1/32 trust\n\
                 host all postgres 127.0.0.1/32 trust\n"
            ),
        )
        .unwrap();
        let options = format!(
            "-p {port} -k {d} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file={d}/server.pem -c ssl_key_file={d}/server.key",
            d = dir.display()
        );
        run(
            "pg_ctl start",
            server_command(&bin, "pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        );
        let cluster = TlsCluster { dir, port, bin };
        run(
            "create the gateway's role",
            Command::new(cluster.bin.join("psql")).args([
                &cluster.plain_url(),
                "-qc",
                &format!("CREATE ROLE {GATEWAY_ROLE} LOGIN SUPERUSER"),
            ]),
        );
        cluster
    }

    /// The tests' own way in: the postgres role, no TLS.
    fn plain_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The gateway's URL of database `db_url`'s database on `host`, with `tls` options.
    fn gateway_url(&self, db_url: &str, host: &str, tls: &str) -> String {
        let db = db_url.rsplit('/').next().unwrap();
        let tls = tls.replace("{dir}", &self.dir.display().to_string());
        format!("postgres://{GATEWAY_ROLE}@{host}:{}/{db}?{tls}", self.port)
    }

    /// Every connection of the gateway's role, and how many of them are encrypted.
    async fn gateway_connections(&self) -> (i64, i64) {
        let (client, connection) =
            tokio_postgres::connect(&self.plain_url(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE a.usename = $1",
                &[&GATEWAY_ROLE],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = server_command(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starting a gateway that should not start: its error, within a bound (a certificate
/// that does not check out is not retried as a database that is not up yet).
async fn refused_start(database_url: String) -> String {
    let vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url),
        (
            "QRGATE_ADMIN_TOKEN".into(),
            "admin-token-0123456789abcdef".into(),
        ),
        (
            "QRGATE_SECRETS_KEY".into(),
            gateway::sealed::SecretsKey::generate_base64(),
        ),
        ("QRGATE_LISTEN".into(), "127.0.0.1:0".into()),
        ("QRGATE_DB_STARTUP_WAIT_SECONDS".into(), "60".into()),
    ]);
    let settings = Settings::from_vars(&vars).unwrap();
    let started = tokio::time::timeout(Duration::from_secs(20), Application::build(settings))
        .await
        .expect("refused at once, not retried for the start-up wait");
    format!("{:#}", started.err().expect("the gateway must not start"))
}

#[tokio::test]
async fn with_verify_full_the_gateway_settles_over_tls_and_refuses_a_certificate_that_does_not_check_out(
) {
    let cluster = TlsCluster::start();
    let verify_full = "sslmode=verify-full&sslrootcert={dir}/ca.pem";
    let app = spawn_app_on(
        &cluster.plain_url(),
        |db| cluster.gateway_url(db, "127.0.0.1", verify_full),
        &[],
    )
    .await;

    // A whole sale, every statement of it over TLS.
    let merchant = app.create_merchant().await;
    let wallet = app.create_wallet().await;
    let customer = app.funded_customer(&wallet, "50.00").await;
    let order = app.create_order(&merchant.cashier_key, "12.00").await;
    let paid = json_ok(app.pay(&wallet, &order, &customer).await, StatusCode::OK).await;
    assert_eq!(paid["status"], "succeeded");
    let (connections, encrypted) = cluster.gateway_connections().await;
    assert!(connections > 0);
    assert_eq!(encrypted, connections);

    // Another CA: the server is not who it says it is.
    let error = refused_start(cluster.gateway_url(
        &app.db_url,
        "127.0.0.1",
        "sslmode=verify-full&sslrootcert={dir}/other-ca.pem",
    ))
    .await;
    assert!(error.contains("TLS to the database"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");

    // The right CA, but a name the certificate does not carry.
    let error = refused_start(cluster.gateway_url(&app.db_url, "localhost", verify_full)).await;
    assert!(error.contains("TLS to the database"), "{error}");

    // `require` encrypts without checking: the same name is accepted.
    let encrypted_only = spawn_app_on(
        &cluster.plain_url(),
        |db| cluster.gateway_url(db, "localhost", "sslmode=require"),
        &[],
    )
    .await;
    encrypted_only.create_merchant().await;

    // Without TLS the server turns the gateway's role away (its hba), and the gateway says so.
    let error =
        refused_start(cluster.gateway_url(&app.db_url, "127.0.0.1", "sslmode=disable")).await;
    assert!(
        error.contains("no encryption") || error.contains("pg_hba"),
        "{error}"
    );
}
