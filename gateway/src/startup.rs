//! Building and running the application: the pool, the migrations, the HTTP server
//! on its listener (port 0 in tests), and the sweeper.

use crate::{
    api,
    config::Settings,
    db,
    http::request_id_middleware,
    openapi::{self, check::Checker},
    sealed,
    state::AppState,
    sweeper, webhooks,
};
use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::{
    dev::{AppConfig, Server},
    middleware::{from_fn, Condition},
    web, App,
};
use std::{net::TcpListener, sync::Arc, time::Duration};

/// Concurrent connections per worker before new ones wait in the backlog.
const CONNECTIONS_PER_WORKER_MAX: usize = 10_000;
/// Idle keep-alive connections are closed after this long.
const KEEP_ALIVE_SECONDS: u64 = 30;

pub struct Application {
    port: u16,
    server: Server,
    state: Arc<AppState>,
    openapi_checker: Option<Arc<Checker>>,
}

/// Secrets written before sealing existed are sealed now, and development mode says so.
async fn seal_what_is_not_sealed(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
) -> anyhow::Result<()> {
    if settings.development {
        let public_key = settings.secrets.current_id() == crate::config::development_key().id();
        tracing::warn!(
            secrets_key = settings.secrets.current_id(),
            public_key,
            "development mode (QRGATE_DEVELOPMENT=1): not for real money{}",
            if public_key {
                "; the secrets are sealed under the public development key (no QRGATE_SECRETS_KEY)"
            } else {
                ""
            }
        );
    }
    let sealed = sealed::reseal(pool, &settings.secrets, sealed::Reseal::Plaintext).await?;
    if sealed.resealed > 0 {
        tracing::info!(
            count = sealed.resealed,
            secrets_key = settings.secrets.current_id(),
            "secrets stored in plain text were sealed"
        );
    }
    Ok(())
}

impl Application {
    /// Connects, migrates and binds; the server runs once `run_until_stopped` is awaited.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::pool(&settings)?;
        let wait = Duration::from_secs(settings.limits.db_startup_wait_seconds);
        let applied = db::migrate_when_reachable(&pool, wait).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
        db::apply_settings(&pool, &settings.limits).await?;
        seal_what_is_not_sealed(&pool, &settings).await?;
        let listener = TcpListener::bind(settings.listen)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(AppState::new(pool, settings));
        let data = web::Data::from(state.clone());
        let limits = state.settings.limits.clone();
        if state.settings.openapi_check && !cfg!(feature = "openapi-check") {
            anyhow::bail!(
                "QRGATE_OPENAPI_CHECK=1 needs a gateway built with the openapi-check feature"
            );
        }
        let openapi_checker =
            (state.settings.openapi_check).then(|| Arc::new(Checker::new(openapi::document())));
        let checker_data = openapi_checker.clone().map(web::Data::from);
        let addr = listener.local_addr()?;
        let head_timeout = Duration::from_millis(limits.request_head_timeout_ms);
        let tls = match &state.settings.tls_files {
            Some((cert, key)) => Some(crate::connection::tls_acceptor(cert, key)?),
            None => None,
        };
        let builder = actix_server::Server::build()
            .max_concurrent_connections(CONNECTIONS_PER_WORKER_MAX)
            .shutdown_timeout(limits.shutdown_grace_seconds);
        let shutdown = builder.graceful_shutdown_signal();
        // actix-web's HttpServer, assembled by hand so that a connection first passes
        // `connection::first_head` (a slow first head gets 408 in the one error shape).
        let server =
            builder
                .listen("qrgate", listener, move || {
                    let mut app = App::new().app_data(data.clone());
                    if let Some(checker) = &checker_data {
                        app = app.app_data(checker.clone());
                    }
                    let app = app
                        .app_data(web::QueryConfig::default().error_handler(|e, _| {
                            crate::error::ApiError::invalid("query", e.to_string()).into()
                        }))
                        .app_data(web::PathConfig::default().error_handler(|_, _| {
                            crate::error::ApiError::not_found("resource").into()
                        }))
                        .wrap(from_fn(crate::http::refuse_nul))
                        .wrap(Condition::new(
                            checker_data.is_some(),
                            from_fn(openapi::check::check_middleware),
                        ))
                        .wrap(from_fn(crate::admission::admit))
                        .wrap(from_fn(request_id_middleware))
                        .configure(api::routes)
                        .default_service(web::to(crate::http::unrouted));
                    let shutdown = shutdown.clone();
                    let http = HttpService::build()
                        .graceful_shutdown_signal(move || {
                            let shutdown = shutdown.clone();
                            async move { shutdown.notified().await }
                        })
                        .keep_alive(Duration::from_secs(KEEP_ALIVE_SECONDS))
                        // Later heads on a kept-alive connection: actix-http's own timer.
                        .client_request_timeout(head_timeout)
                        .local_addr(addr)
                        .h1(map_config(
                            app.into_factory()
                                .map_err(|e: actix_web::Error| e.error_response()),
                            |_| AppConfig::default(),
                        ));
                    let tls = tls.clone();
                    fn_service(move |io| crate::connection::accept(io, tls.clone(), head_timeout))
                        .and_then(http)
                })?
                .run();
        Ok(Application {
            port,
            server,
            state,
            openapi_checker,
        })
    }

    /// With `openapi_check` on: the requests and responses that did not match the
    /// OpenAPI document so far.
    pub fn openapi_checker(&self) -> Option<Arc<Checker>> {
        self.openapi_checker.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM: stop accepting, let
    /// in-flight requests finish within the grace period).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweeper::run(self.state.clone()));
        let deliveries = tokio::spawn(webhooks::run(self.state.clone()));
        let credentials = tokio::spawn(crate::credentials::listen(self.state.clone()));
        let result = self.server.await;
        sweeper.abort();
        deliveries.abort();
        credentials.abort();
        result
    }
}
